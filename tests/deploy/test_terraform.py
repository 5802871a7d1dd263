"""deploy/terraform wires the pipeline the way bp_common.topology and the services expect.

The HCL is parsed (python-hcl2), not planned: no provider or cloud account is needed.
"""

from __future__ import annotations

import inspect
import os
import re
from typing import Any

import pytest
from bp_common import stages
from bp_common.config import Settings
from bp_common.contracts.events import TOPICS
from bp_common.ledger.firestore import FirestoreLedgerStore
from bp_common.runtime.limits import Machine, work_slots_for
from bp_common.topology import ROUTE_BY_STAGE, ROUTES, STAGE_NAMES

from tests.deploy.terraform_model import (
    ENVIRONMENT,
    Folder,
    block,
    blocks,
    expression,
    folder,
    folders,
    module_folder,
    references,
    render,
    tfvars,
    walk_strings,
)

PRIMITIVE_ROLES = ("roles/owner", "roles/editor", "roles/viewer")
PROJECT = "bp-prod"


@pytest.fixture(scope="module")
def env() -> Folder:
    return folder(ENVIRONMENT)


@pytest.fixture(scope="module")
def stage_module(env: Folder) -> Folder:
    return folder(module_folder(env.modules["stage"]))


@pytest.fixture(scope="module")
def collector_module(env: Folder) -> Folder:
    return folder(module_folder(env.modules["collector"]))


@pytest.fixture(scope="module")
def monitoring_module(env: Folder) -> Folder:
    return folder(module_folder(env.modules["monitoring"]))


def container_named(template: dict[str, Any], name: str) -> dict[str, Any]:
    """One container of a Cloud Run template (the stage, or its OpenTelemetry Collector)."""
    found = [c for c in blocks(template, "containers") if c.get("name") == name]
    assert len(found) == 1, f"expected one container {name!r}"
    return found[0]


def stage_names(module: Folder, stage: str) -> dict[str, str]:
    """What the stage module's name templates become for one stage."""
    values = {"var.stage": stage, "var.project_id": PROJECT}
    return {
        "subscription": render(
            module.resource("google_pubsub_subscription", "stage")["name"], values
        ),
        "dead_letter_topic": render(
            module.resource("google_pubsub_topic", "dead_letter")["name"], values
        ),
        "dead_letter_subscription": render(
            module.resource("google_pubsub_subscription", "dead_letter")["name"], values
        ),
        "account": render(
            module.resource("google_service_account", "runtime")["account_id"], values
        ),
        "push_account": render(
            module.resource("google_service_account", "push")["account_id"], values
        ),
        "service": render(module.resource("google_cloud_run_v2_service", "push")["name"], values),
        "audience": render(module.locals["push_audience"], values),
    }


def test_the_environment_declares_every_event_topic(env: Folder) -> None:
    assert sorted(env.locals["topics"]) == sorted(TOPICS)
    assert (
        expression(env.resource("google_pubsub_topic", "pipeline")["for_each"])
        == "toset(local.topics)"
    )


def test_stages_consume_produce_and_deliver_as_the_topology_says(env: Folder) -> None:
    declared = env.locals["stages"]
    assert list(declared) == list(STAGE_NAMES)
    for route in ROUTES:
        stage = declared[route.stage]
        assert (stage["consumes"], stage["produces"], stage["delivery"]) == (
            route.consumes,
            route.produces,
            route.delivery,
        ), route.stage
        assert stage["service"] == route.service, route.stage
    call = env.modules["stage"]
    assert expression(call["for_each"]) == "local.stages"
    assert expression(call["delivery"]) == "each.value.delivery"
    # Each stage runs the image of the service that runs it (collect: bp-collector).
    assert call["image"].endswith("/bp-${each.value.service}:${var.image_tag}")
    assert (
        expression(call["consumes_topic"])
        == "google_pubsub_topic.pipeline[each.value.consumes].name"
    )
    assert (
        expression(call["produces_topic"])
        == "google_pubsub_topic.pipeline[each.value.produces].name"
    )


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_subscription_and_dead_letter_names_match_the_topology(
    stage: str, stage_module: Folder
) -> None:
    route = ROUTE_BY_STAGE[stage]
    names = stage_names(stage_module, stage)
    assert names["subscription"] == route.subscription
    assert names["dead_letter_topic"] == route.dead_letter_topic
    assert names["dead_letter_subscription"] == route.dead_letter_subscription
    # The service finds its dead-letter topic through BP_DEAD_LETTER_TOPIC.
    assert expression(stage_module.locals["base_env"]["BP_DEAD_LETTER_TOPIC"]) == (
        "google_pubsub_topic.dead_letter.name"
    )


def _topic_of(reference: str) -> str:
    match = re.fullmatch(r"google_pubsub_topic\.(\w+)\.(id|name)", reference)
    assert match, f"not a topic of this folder: {reference}"
    return match.group(1)


@pytest.mark.parametrize("relative", folders())
def test_every_subscription_dead_letters_into_a_topic_that_has_a_subscription(
    relative: str,
) -> None:
    tf = folder(relative)
    subscriptions = tf.of_type("google_pubsub_subscription")
    dead_letter_targets: set[str] = set()
    for sub in subscriptions.values():
        for policy in blocks(sub, "dead_letter_policy"):
            dead_letter_targets.add(_topic_of(expression(policy["dead_letter_topic"])))
    subscribed = {
        _topic_of(expression(sub["topic"]))
        for sub in subscriptions.values()
        if sub["topic"].startswith("${google_pubsub_topic.")
    }
    for name, sub in subscriptions.items():
        assert block(sub, "expiration_policy")["ttl"] == "", f"{name} would expire when idle"
        topic = sub["topic"]
        is_dead_letter_queue = (
            topic.startswith("${google_pubsub_topic.")
            and _topic_of(expression(topic)) in dead_letter_targets
        )
        if is_dead_letter_queue:
            continue
        policy = block(sub, "dead_letter_policy")
        target = _topic_of(expression(policy["dead_letter_topic"]))
        assert target in subscribed, (
            f"{relative}: dead letters of {name} go to {target}, which nobody reads"
        )
        retry = block(sub, "retry_policy")
        assert retry["minimum_backoff"] and retry["maximum_backoff"], name


def _in_delivery_range(value: Any) -> bool:
    return isinstance(value, int) and 5 <= value <= 100


def test_max_delivery_attempts_stays_within_pubsub_limits(
    env: Folder, stage_module: Folder
) -> None:
    policy = block(
        stage_module.resource("google_pubsub_subscription", "stage"), "dead_letter_policy"
    )
    assert expression(policy["max_delivery_attempts"]) == "var.max_delivery_attempts"
    assert expression(env.modules["stage"]["max_delivery_attempts"]) == "var.max_delivery_attempts"
    for tf in (stage_module, env):
        variable = tf.variables["max_delivery_attempts"]
        assert _in_delivery_range(variable["default"]), tf.path
        condition = block(variable, "validation")["condition"]
        assert ">= 5" in condition and "<= 100" in condition, f"{tf.path}: {condition}"
    assert _in_delivery_range(tfvars()["max_delivery_attempts"])


def test_push_subscriptions_sign_with_the_stage_push_account(stage_module: Folder) -> None:
    sub = stage_module.resource("google_pubsub_subscription", "stage")
    push = block(sub, "push_config")
    token = block(push, "oidc_token")
    assert expression(token["service_account_email"]) == "google_service_account.push[0].email"
    assert expression(token["audience"]) == "local.push_audience"
    assert push["push_endpoint"].endswith("/push")
    # The push config exists exactly when the push service does.
    dynamic = next(d["push_config"] for d in sub["dynamic"] if "push_config" in d)
    assert expression(dynamic["for_each"]) == "google_cloud_run_v2_service.push"

    # The service verifies the same identity and audience, and Cloud Run accepts that audience.
    assert expression(stage_module.locals["push_env"]["BP_PUSH_SERVICE_ACCOUNT"]) == (
        "one(google_service_account.push[*].email)"
    )
    assert expression(stage_module.locals["push_env"]["BP_PUSH_AUDIENCE"]) == "local.push_audience"
    service = stage_module.resource("google_cloud_run_v2_service", "push")
    assert [expression(a) for a in service["custom_audiences"]] == ["local.push_audience"]

    # The push identity may invoke this one service, and is granted nothing else.
    invoker = stage_module.resource("google_cloud_run_v2_service_iam_member", "push_invoker")
    assert invoker["role"] == "roles/run.invoker"
    assert references(invoker["member"]) == ["google_service_account.push[0].email"]
    grants_to_push = [
        (kind, name)
        for kind, resources in stage_module.resources.items()
        if kind.endswith("_iam_member")
        for name, body in resources.items()
        if any("google_service_account.push" in r for r in references(body.get("member")))
    ]
    assert grants_to_push == [("google_cloud_run_v2_service_iam_member", "push_invoker")]


def test_push_stages_are_services_and_the_pulling_stage_is_an_always_on_worker(
    stage_module: Folder,
) -> None:
    service = stage_module.resource("google_cloud_run_v2_service", "push")
    pool = stage_module.resource("google_cloud_run_v2_worker_pool", "pull")
    assert expression(service["count"]) == "local.push ? 1 : 0"
    assert expression(pool["count"]) == "local.pool ? 1 : 0"
    assert stage_module.locals["push"] == '${var.delivery == "push"}'
    # A pulling stage runs its pool here unless its workers run elsewhere (the collector VMs).
    assert stage_module.locals["pool"] == "${!local.push && !var.runs_elsewhere}"
    assert service["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"
    container = container_named(block(service, "template"), "stage")
    assert block(block(container, "startup_probe"), "http_get")["path"] == "/readyz"
    assert block(block(container, "liveness_probe"), "http_get")["path"] == "/healthz"
    # A pull worker must keep running between messages.
    scaling = block(pool, "scaling")
    assert scaling["scaling_mode"] == "MANUAL"
    assert expression(scaling["manual_instance_count"]) == "max(1, var.min_instances)"
    # Pub/Sub holds a push request at most 600 s; the request timeout never exceeds it.
    assert stage_module.default("ack_deadline_seconds") <= 600
    assert (
        "min(var.request_timeout_seconds, var.ack_deadline_seconds)"
        in block(service, "template")["timeout"]
    )


def deployment_accounts(env: Folder, stage_module: Folder) -> list[str]:
    """The account id of every service account the example environment makes."""
    accounts = []
    for stage, row in env.locals["stages"].items():
        names = stage_names(stage_module, stage)
        accounts.append(names["account"])
        if row["delivery"] == "push":
            accounts.append(names["push_account"])
    for name, call in env.modules.items():
        if name != "stage":
            made = folder(module_folder(call)).of_type("google_service_account")
            accounts += [a["account_id"] for a in made.values()]
    accounts += [a["account_id"] for a in env.of_type("google_service_account").values()]
    return accounts


def test_each_stages_workers_run_as_its_one_account_collector_vms_included(
    env: Folder,
    stage_module: Folder,
    collector_module: Folder,
) -> None:
    workloads = [
        block(stage_module.resource("google_cloud_run_v2_service", "push"), "template")[
            "service_account"
        ],
        block(stage_module.resource("google_cloud_run_v2_worker_pool", "pull"), "template")[
            "service_account"
        ],
    ]
    assert {expression(w) for w in workloads} == {"google_service_account.runtime.email"}
    assert expression(stage_module.outputs["service_account_email"]["value"]) == (
        "google_service_account.runtime.email"
    )
    for tf in (env, stage_module, collector_module):
        for kind in ("google_cloud_run_v2_service", "google_cloud_run_v2_worker_pool"):
            for name, body in tf.of_type(kind).items():
                assert block(body, "template").get("service_account"), (
                    f"{kind}.{name} uses the default account"
                )

    # The collect stage's workers are the collector VMs alone (no Cloud Run resource of its
    # own), and they run as its runtime account: the collector module makes none.
    assert expression(env.modules["stage"]["runs_elsewhere"]) == 'each.key == "collect"'
    vm_account = block(
        collector_module.resource("google_compute_instance_template", "collector"),
        "service_account",
    )
    assert expression(vm_account["email"]) == "var.service_account_email"
    assert expression(env.modules["collector"]["service_account_email"]) == (
        'module.stage["collect"].service_account_email'
    )
    assert not collector_module.of_type("google_service_account")

    # One account per stage and per push identity, none shared, and exactly one for the
    # collect workers.
    accounts = deployment_accounts(env, stage_module)
    assert len(set(accounts)) == len(accounts)
    assert [stage_names(stage_module, s)["account"] for s in env.locals["stages"]] == [
        f"bp-{s}" for s in STAGE_NAMES
    ]
    assert [a for a in accounts if a.startswith("bp-collect")] == ["bp-collect"]


@pytest.mark.parametrize("relative", folders())
def test_no_primitive_role_is_granted_anywhere(relative: str) -> None:
    tf = folder(relative)
    strings = walk_strings([tf.resources, tf.locals, tf.modules, tf.variables])
    assert not [s for s in strings if any(role in s for role in PRIMITIVE_ROLES)]
    roles = [
        body["role"]
        for kind, resources in tf.resources.items()
        if "_iam_" in kind
        for body in resources.values()
        if "role" in body
    ]
    roles += [r for r in walk_strings(tf.locals) if r.startswith("roles/")]
    assert roles or relative in ("modules/network", "modules/monitoring", "modules/telemetry")
    assert not [r for r in roles if r in PRIMITIVE_ROLES or r.endswith((".admin", "Admin"))]


def test_every_secret_has_an_accessor_and_only_its_consumers_get_one(
    env: Folder,
    stage_module: Folder,
    collector_module: Folder,
) -> None:
    consumers: dict[str, list[str]] = {}
    assert list(env.locals["stage_secrets"]) == list(STAGE_NAMES)
    for stage, secrets in env.locals["stage_secrets"].items():
        for secret in secrets:
            consumers.setdefault(secret, []).append(stage)
    assert expression(env.locals["secrets"]) == "toset(flatten(values(local.stage_secrets)))"
    assert (
        expression(env.resource("google_secret_manager_secret", "pipeline")["for_each"])
        == "local.secrets"
    )
    # Only upload holds a secret: nothing dials the gRPC collector in the cloud, so no collector
    # certificate is deployed at all, and collect's account (the collector VMs') holds none.
    assert consumers == {"firebase-service-account": ["upload"]}

    assert "local.stage_secrets[each.key]" in env.modules["stage"]["secrets"]
    accessor = stage_module.resource("google_secret_manager_secret_iam_member", "runtime")
    assert accessor["role"] == "roles/secretmanager.secretAccessor"
    assert expression(accessor["for_each"]) == "toset(var.secrets)"
    assert expression(accessor["member"]) == "local.runtime_member"

    # Collector workers get no credential of any kind: no secret, no key.
    assert "secrets" not in env.modules["collector"] and "secrets" not in collector_module.variables
    assert not [k for k in collector_module.resources if k.startswith("google_secret_manager")]
    assert not collector_module.of_type("google_service_account_key")

    # Nobody is granted secret access project-wide; the collector module grants nothing there.
    assert not [r for r in stage_module.locals["project_roles"] if "secretmanager" in r]
    assert not collector_module.of_type("google_project_iam_member")
    assert not env.of_type("google_project_iam_member") and not env.of_type(
        "google_project_iam_binding"
    )


def test_secrets_are_mounted_where_the_file_secret_store_reads_them(stage_module: Folder) -> None:
    for kind, name in (
        ("google_cloud_run_v2_service", "push"),
        ("google_cloud_run_v2_worker_pool", "pull"),
    ):
        template = block(stage_module.resource(kind, name), "template")
        volume = block(template, "volumes")
        item = block(block(volume, "secret"), "items")
        # FileSecretStore reads {BP_SECRETS_DIR}/{name}/latest.
        assert (item["path"], item["version"]) == ("latest", "latest")
        mount = block(container_named(template, "stage"), "volume_mounts")
        assert mount["mount_path"] == "${local.secrets_dir}/${volume_mounts.value}"
        assert (
            mount["name"] == "secret-${volume_mounts.value}"
            and volume["name"] == "secret-${volumes.value}"
        )
    # The services read secrets from files under Settings' default folder, which is where they are.
    assert Settings.model_fields["secrets_backend"].default == "files"
    assert stage_module.locals["secrets_dir"] == str(Settings.model_fields["secrets_dir"].default)


def _admitted(declared: dict[str, Any]) -> int:
    """Messages one instance admits: the stage's concurrency, else four per work slot."""
    return int(declared["concurrency"] or 4 * int(declared["work_slots"]))


def _resolve_service_env(stage: str, env: Folder, stage_module: Folder) -> dict[str, str]:
    """The environment Terraform gives one stage's container, with references filled in."""
    names = stage_names(stage_module, stage)
    account = f"{names['push_account']}@{PROJECT}.iam.gserviceaccount.com"
    values: dict[str, str] = {
        "var.pipeline_env": env.default("pipeline_env"),
        "var.stage": stage,
        "var.project_id": PROJECT,
        "google_pubsub_topic.dead_letter.name": names["dead_letter_topic"],
        "tostring(var.max_delivery_attempts)": str(env.default("max_delivery_attempts")),
        "tostring(var.ack_deadline_seconds)": str(env.locals["stages"][stage]["ack_deadline"]),
        "tostring(var.work_slots)": str(env.locals["stages"][stage]["work_slots"]),
        "tostring(local.concurrency)": str(_admitted(env.locals["stages"][stage])),
        "local.push_audience": names["audience"],
        "one(google_service_account.push[*].email)": account,
    }
    resolved = {k: render(v, values) for k, v in stage_module.locals["base_env"].items()}
    if env.locals["stages"][stage]["delivery"] == "push":
        resolved |= {k: render(v, values) for k, v in stage_module.locals["push_env"].items()}
    telemetry = folder(module_folder(env.modules["telemetry"]))
    ports = {f"var.{n}": str(telemetry.default(n)) for n in ("grpc_port", "http_port")}
    resolved |= {k: render(v, ports) for k, v in telemetry.locals["app_env"].items()}
    # Bucket names are placeholders; the retention setting resolves to its default.
    common = {"tostring(var.run_retention_days)": str(env.default("run_retention_days"))}
    resolved |= {
        k: render(v, common) if "var.run_retention_days" in v else "placeholder"
        for k, v in env.locals["common_env"].items()
    }
    resolved |= {k: "placeholder" for k in env.locals["stage_extra_env"][stage]}
    return resolved


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_the_deployed_environment_passes_the_production_safety_check(
    stage: str,
    env: Folder,
    stage_module: Folder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environ = _resolve_service_env(stage, env, stage_module)
    assert environ["PIPELINE_ENV"] == "production"
    for key in list(os.environ):
        if (
            key.startswith("BP_")
            or key in ("PIPELINE_ENV", "BP_ENV")
            or key.endswith("_EMULATOR_HOST")
        ):
            monkeypatch.delenv(key)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.stage == stage
    assert settings.ledger_backend == "firestore" and settings.secrets_backend == "files"
    assert str(settings.secrets_dir) == stage_module.locals["secrets_dir"]
    assert (
        settings.embeddings_required
        and settings.dead_letter_topic == ROUTE_BY_STAGE[stage].dead_letter_topic
    )
    assert settings.problems(environ) == []


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_each_stage_works_on_what_its_cpu_and_memory_hold_and_cloud_run_admits_as_much(
    stage: str, env: Folder, stage_module: Folder
) -> None:
    declared = env.locals["stages"][stage]
    memory_mb = int(str(declared["memory"]).removesuffix("Gi")) * 1024
    machine = Machine(cpus=float(declared["cpu"]), memory_mb=memory_mb)
    assert declared["work_slots"] == work_slots_for(stages.load(stage).footprint, machine)
    call = env.modules["stage"]
    assert expression(call["work_slots"]) == "each.value.work_slots"
    # Cloud Run sends an instance as many requests as the service admits (decision 0054).
    service = stage_module.resource("google_cloud_run_v2_service", "push")
    assert expression(block(service, "template")["max_instance_request_concurrency"]) == (
        "local.concurrency"
    )
    assert expression(call["concurrency"]) == "each.value.concurrency"
    # A shard worker admits only the shards it works on: one waiting in its buffer would be
    # counted in the backlog yet held from the workers the autoscaler starts for it.
    if ROUTE_BY_STAGE[stage].service == "collector":
        assert declared["concurrency"] == declared["work_slots"]
    else:
        assert declared["concurrency"] is None
    environ = _resolve_service_env(stage, env, stage_module)
    assert environ["BP_WORK_SLOTS"] == str(declared["work_slots"])
    assert environ["BP_FLOW_CONTROL_MAX_MESSAGES"] == str(_admitted(declared))
    assert stage_module.locals["concurrency"] == "${coalesce(var.concurrency, 4 * var.work_slots)}"


def test_scene_drops_notify_scene_uploads_through_the_storage_agent(env: Folder) -> None:
    notification = env.resource("google_storage_notification", "scene_uploads")
    assert notification["payload_format"] == "JSON_API_V1"
    assert notification["event_types"] == ["OBJECT_FINALIZE"]
    assert notification["object_name_prefix"] == "scenes/"
    assert expression(notification["topic"]) == 'google_pubsub_topic.pipeline["scene-uploads"].id'
    assert expression(notification["bucket"]) == "google_storage_bucket.scenes.name"
    grant = env.resource("google_pubsub_topic_iam_member", "gcs_publishes_scene_uploads")
    assert grant["role"] == "roles/pubsub.publisher"
    assert expression(grant["topic"]) == 'google_pubsub_topic.pipeline["scene-uploads"].name'
    assert references(grant["member"]) == [
        "data.google_storage_project_service_account.gcs.email_address"
    ]
    assert [expression(d) for d in notification["depends_on"]] == [
        "google_pubsub_topic_iam_member.gcs_publishes_scene_uploads"
    ]


def test_the_pubsub_agent_can_forward_dead_letters(env: Folder, stage_module: Folder) -> None:
    publish = stage_module.resource(
        "google_pubsub_topic_iam_member", "agent_publishes_dead_letters"
    )
    assert (publish["role"], expression(publish["topic"])) == (
        "roles/pubsub.publisher",
        "google_pubsub_topic.dead_letter.name",
    )
    ack = stage_module.resource("google_pubsub_subscription_iam_member", "agent_acks_source")
    assert (ack["role"], expression(ack["subscription"])) == (
        "roles/pubsub.subscriber",
        "google_pubsub_subscription.stage.name",
    )
    for grant in (publish, ack):
        assert references(grant["member"]) == ["var.pubsub_service_agent"]
    assert expression(env.modules["stage"]["pubsub_service_agent"]) == (
        "google_project_service_identity.pubsub.email"
    )
    assert (
        env.resource("google_project_service_identity", "pubsub")["service"]
        == "pubsub.googleapis.com"
    )


def test_firestore_has_the_index_the_ledger_scan_needs(env: Folder) -> None:
    database = env.resource("google_firestore_database", "ledger")
    assert (database["name"], database["type"]) == ("(default)", "FIRESTORE_NATIVE")
    index = env.resource("google_firestore_index", "runs_by_scene")
    assert (
        index["collection"]
        == inspect.signature(FirestoreLedgerStore).parameters["collection"].default
    )
    assert [(f["field_path"], f["order"]) for f in blocks(index, "fields")] == [
        ("scene_id", "ASCENDING"),
        ("updated_at", "DESCENDING"),
    ]


def test_buckets_are_private_and_versioned(env: Folder) -> None:
    buckets = env.of_type("google_storage_bucket")
    assert {"scenes", "datasets"} <= set(buckets)
    for name, bucket in buckets.items():
        assert bucket["uniform_bucket_level_access"] is True, name
        assert bucket["public_access_prevention"] == "enforced", name
        assert block(bucket, "versioning")["enabled"] is True, name
    firebase = env.resource("google_firebase_storage_bucket", "datasets")
    assert expression(firebase["bucket_id"]) == "google_storage_bucket.datasets.name"


def test_dashboard_and_alerts_cover_every_stage(env: Folder, monitoring_module: Folder) -> None:
    # Which metrics they read, and that something emits each one: tests/telemetry.
    dashboard = monitoring_module.resource("google_monitoring_dashboard", "pipeline")[
        "dashboard_json"
    ]
    assert "flatten(local.stage_rows)" in dashboard and "local.pipeline_rows" in dashboard
    assert expression(monitoring_module.locals["stage_rows"]).startswith(
        "[for name, s in var.stages :"
    )
    policies = monitoring_module.of_type("google_monitoring_alert_policy")
    assert set(policies) == {
        "dead_letters",
        "dead_letter_rate",
        "error_rate",
        "stuck_runs",
        "slo_burn",
    }
    assert "local.dead_letter_subscriptions" in str(policies["dead_letters"])
    # The shards' backlog, what the GPU workers scale on, is charted from the collect stage's own
    # subscription.
    assert expression(monitoring_module.locals["shards_subscription"]) == (
        'var.stages["collect"].subscription'
    )
    assert "${local.shards_subscription}" in str(monitoring_module.locals["pipeline_rows"])
    assert "denominator_filter" in block(
        block(policies["error_rate"], "conditions"), "condition_threshold"
    )
    stuck = next(d["conditions"] for d in policies["stuck_runs"]["dynamic"] if "conditions" in d)
    assert expression(stuck["for_each"]) == "var.stages"
    for policy in policies.values():
        assert block(policy, "documentation")["content"], "every alert says what to do"

    stages_arg = expression(env.modules["monitoring"]["stages"])
    assert (
        "for name, s in local.stages" in stages_arg
        and "module.stage[name].dead_letter_subscription" in stages_arg
    )
    assert set(env.default("stuck_after_seconds")) == set(STAGE_NAMES)
    assert expression(env.modules["monitoring"]["otel_metric_prefix"]) == (
        "module.telemetry.metric_prefix"
    )


def test_the_collector_vms_hold_the_collect_stages_grants_and_beside_them_only_image_reads(
    env: Folder, stage_module: Folder, collector_module: Folder
) -> None:
    # A pulling stage's account pulls its own subscription and publishes its result, its dead
    # letters and messages handed back, on the topics the environment gives it.
    assert env.locals["stages"]["collect"]["delivery"] == "pull"
    pulls = stage_module.resource("google_pubsub_subscription_iam_member", "runtime_pulls")
    assert expression(pulls["count"]) == "local.push ? 0 : 1"
    assert (pulls["role"], expression(pulls["subscription"])) == (
        "roles/pubsub.subscriber",
        "google_pubsub_subscription.stage.name",
    )
    published = {
        expression(grant["topic"])
        for grant in stage_module.of_type("google_pubsub_topic_iam_member").values()
        if grant["role"] == "roles/pubsub.publisher"
        and grant["member"] == "${local.runtime_member}"
    }
    assert published == {
        "var.produces_topic",
        "var.consumes_topic",
        "google_pubsub_topic.dead_letter.name",
    }
    # Its bucket grants are the conditioned ones (tests/deploy/test_collector_access_terraform),
    # and its project roles let the VMs' agents write logs and metrics.
    assert expression(env.modules["stage"]["bucket_roles"]) == "local.stage_bucket_roles[each.key]"
    assert expression(env.locals["stage_bucket_roles"]["collect"]) == (
        "local.collector_bucket_roles"
    )
    template = collector_module.resource("google_compute_instance_template", "collector")
    assert template["metadata"]["google-logging-enabled"] == "true"
    assert template["metadata"]["google-monitoring-enabled"] == "true"
    assert {"roles/logging.logWriter", "roles/monitoring.metricWriter"} <= set(
        stage_module.locals["project_roles"]
    )

    # Beside them the collector module grants the VMs' account one thing: reading its images.
    grants = {
        (kind, name): body
        for kind, resources in collector_module.resources.items()
        if "_iam_" in kind
        for name, body in resources.items()
    }
    assert list(grants) == [("google_artifact_registry_repository_iam_member", "collector_pulls")]
    [image_reads] = grants.values()
    assert image_reads["role"] == "roles/artifactregistry.reader"
    assert image_reads["member"] == "serviceAccount:${var.service_account_email}"


def test_the_example_tfvars_sets_every_required_variable(env: Folder) -> None:
    values = tfvars()
    required = {name for name, body in env.variables.items() if "default" not in body}
    assert required <= set(values), sorted(required - set(values))
    assert set(values) <= set(env.variables), sorted(set(values) - set(env.variables))


@pytest.mark.parametrize("relative", folders())
def test_every_variable_and_output_is_described(relative: str) -> None:
    tf = folder(relative)
    undescribed = [f"var.{n}" for n, b in tf.variables.items() if not b.get("description")]
    undescribed += [f"output.{n}" for n, b in tf.outputs.items() if not b.get("description")]
    assert not undescribed
