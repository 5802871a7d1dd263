"""Collector workers reach exactly what a shard needs, and the reconciler runs on a schedule.

The IAM conditions on the pipeline bucket are evaluated here the way IAM evaluates them on an
object's resource name (`projects/_/buckets/{bucket}/objects/{name}`), for the keys the collect
stage really reads and writes, and for the ones it must never touch.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from bp_collector.shards.fan_in import COLLECTION_MANIFEST, ROBOT_MANIFEST
from bp_collector.shards.work import robot_prefix, shard_manifest_key
from bp_common.contracts.events import CameraSettings, CollectionShard
from bp_common.topology import ROUTE_BY_STAGE

from tests.deploy.terraform_model import (
    ENVIRONMENT,
    Folder,
    block,
    expression,
    folder,
    module_folder,
    render,
)

BUCKET = "bp-prod-scenes"
RUN = "run-" + "0" * 19 + "7"
CREATING_ROLES = ("roles/storage.objectCreator",)
DELETING_ROLES = ("roles/storage.objectUser", "roles/storage.objectAdmin", "roles/storage.admin")


@pytest.fixture(scope="module")
def env() -> Folder:
    return folder(ENVIRONMENT)


@pytest.fixture(scope="module")
def reconciler(env: Folder) -> Folder:
    return folder(module_folder(env.modules["reconciler"]))


def _extract(name: str, template: str) -> str:
    """IAM's resource.name.extract: the text between the template's prefix (its first
    occurrence) and the next occurrence of its suffix; empty when either is missing."""
    prefix, suffix = re.fullmatch(r"(.*)\{\w+\}(.*)", template, re.DOTALL).groups()  # type: ignore[union-attr]
    start = name.find(prefix)
    if start < 0:
        return ""
    rest = name[start + len(prefix) :]
    if not suffix:
        return rest
    end = rest.find(suffix)
    return rest[:end] if end >= 0 else ""


_CALL = re.compile(r'resource\.name\.(startsWith|extract)\("((?:[^"\\]|\\.)*)"\)')


def allows(expression_text: str, object_name: str) -> bool:
    """Evaluate a condition built from startsWith, extract(...) != "", &&, || and parentheses."""
    name = f"projects/_/buckets/{BUCKET}/objects/{object_name}"
    values: list[object] = []

    def call(match: re.Match[str]) -> str:
        function, argument = match.groups()
        values.append(
            name.startswith(argument) if function == "startsWith" else _extract(name, argument)
        )
        return f"v[{len(values) - 1}]"

    python = _CALL.sub(call, expression_text)
    python = python.replace("&&", " and ").replace("||", " or ")
    assert re.fullmatch(r'[v\[\]0-9 ()!="andor]*', python), f"unsupported CEL: {python}"
    return bool(eval(python, {"__builtins__": {}}, {"v": values}))


def _grants(env: Folder) -> dict[str, dict[str, Any]]:
    """The workers' bucket grants, their references to this bucket filled in."""
    objects = render(env.locals["scenes_objects"], {"google_storage_bucket.scenes.name": BUCKET})
    rendered = {}
    for label, grant in env.locals["collector_bucket_roles"].items():
        condition = grant["condition"]
        text = condition["expression"].replace("${local.scenes_objects}", objects)
        rendered[label] = {"role": grant["role"], "expression": text.replace('\\"', '"')}
    return rendered


def shard() -> CollectionShard:
    return CollectionShard(
        scene_id="kitchen",
        run_id=RUN,
        bucket=BUCKET,
        shard_id="franka_panda.000-pick_place_cube.00000",
        export_manifest=f"runs/kitchen/{RUN}/export/export_manifest.json",
        export_manifest_sha256="0" * 64,
        robot="franka_panda",
        task_id="pick_place_cube",
        first_episode=0,
        episodes=5,
        run_seed=40,
        backend="mujoco",
        camera=CameraSettings(),
        max_episode_seconds=10.0,
    )


def test_collector_workers_read_exports_and_create_episodes_and_nothing_else(env: Folder) -> None:
    grants = _grants(env)
    assert {g["role"] for g in grants.values()} == {
        "roles/storage.objectViewer",
        "roles/storage.objectCreator",
    }
    assert not [g for g in grants.values() if g["role"] in DELETING_ROLES], "create, never delete"
    read = next(g["expression"] for g in grants.values() if g["role"].endswith("objectViewer"))
    create = next(g["expression"] for g in grants.values() if g["role"] in CREATING_ROLES)

    work = shard()
    episodes = robot_prefix(work)
    written = [
        f"{episodes}{work.shard_id}.0.attempt-1/rgb.mp4",
        f"{episodes}{work.shard_id}.0.attempt-1/episode.json",
        f"{episodes}{work.shard_id}.0.json",
        shard_manifest_key(work),
        f"{episodes}{ROBOT_MANIFEST}",
        f"runs/kitchen/{RUN}/episodes/{COLLECTION_MANIFEST}",
    ]
    for key in written:
        assert allows(create, key), key
        assert allows(read, key), key  # a redelivery reads the markers it finds
    assert allows(read, work.export_manifest)
    assert allows(read, f"runs/kitchen/{RUN}/export/attempt-1/scene_graph.json")
    assert not allows(create, work.export_manifest), "an export is never written by a worker"

    for key in (
        "scenes/kitchen/scene.usda",
        f"runs/kitchen/{RUN}/import/dataset/meta/info.json",
        f"runs/kitchen/{RUN}/quality_report.json",
        f"runs/kitchen/{RUN}/export_manifest.json",
        f"elsewhere/runs/kitchen/{RUN}/episodes/x.json",
    ):
        assert not allows(read, key), key
        assert not allows(create, key), key


def test_the_conditions_are_attached_to_the_one_account_the_workers_run_as(env: Folder) -> None:
    # The collect stage's runtime account is given the conditioned grants, and each carries its
    # condition; the collector VMs run as that account, and no other holds a bucket grant for them.
    assert expression(env.locals["stage_bucket_roles"]["collect"]) == (
        "local.collector_bucket_roles"
    )
    assert expression(env.modules["stage"]["bucket_roles"]) == "local.stage_bucket_roles[each.key]"
    assert all(grant["condition"] for grant in env.locals["collector_bucket_roles"].values())
    stage = folder(module_folder(env.modules["stage"]))
    grant = stage.resource("google_storage_bucket_iam_member", "runtime")
    assert expression(grant["member"]) == "local.runtime_member"
    condition = block(grant, "condition")
    assert expression(condition["expression"]) == "condition.value.expression"
    assert expression(condition["title"]) == "condition.value.title"
    assert expression(env.modules["collector"]["service_account_email"]) == (
        'module.stage["collect"].service_account_email'
    )
    collector = folder(module_folder(env.modules["collector"]))
    assert not collector.of_type("google_storage_bucket_iam_member")


def test_every_stage_may_hand_a_message_back_on_the_topic_it_consumes(env: Folder) -> None:
    stage = folder(module_folder(env.modules["stage"]))
    grant = stage.resource("google_pubsub_topic_iam_member", "runtime_hands_back")
    assert (grant["role"], expression(grant["topic"])) == (
        "roles/pubsub.publisher",
        "var.consumes_topic",
    )
    assert expression(grant["member"]) == "local.runtime_member"


def test_the_reconciler_runs_every_few_minutes_as_a_job_that_only_publishes_shards(
    env: Folder, reconciler: Folder
) -> None:
    job = reconciler.resource("google_cloud_run_v2_job", "reconciler")
    task = block(block(job, "template"), "template")
    assert expression(task["service_account"]) == "google_service_account.reconciler.email"
    container = block(task, "containers")
    assert container["command"] == ["bp"]
    assert container["args"][:3] == ["collector", "reconcile", "--stuck-after"]
    assert expression(container["args"][3]) == "tostring(var.stuck_after_seconds)"
    assert env.modules["reconciler"]["image"].endswith("/bp-collector:${var.image_tag}")

    schedule = reconciler.resource("google_cloud_scheduler_job", "reconciler")
    every = re.fullmatch(r"\*/(\d+) \* \* \* \*", reconciler.default("schedule"))
    assert every and 1 <= int(every.group(1)) <= 15, "every few minutes"
    target = block(schedule, "http_target")
    assert target["http_method"] == "POST"
    assert (
        target["uri"]
        == "https://run.googleapis.com/v2/${google_cloud_run_v2_job.reconciler.id}:run"
    )
    token = block(target, "oauth_token")
    assert expression(token["service_account_email"]) == "google_service_account.trigger.email"

    # The schedule's account may start this one job; the job's account reads the ledger and
    # publishes on the shards' topic, nothing more.
    invoker = reconciler.resource("google_cloud_run_v2_job_iam_member", "trigger_runs_job")
    assert invoker["role"] == "roles/run.invoker"
    assert invoker["member"] == "serviceAccount:${google_service_account.trigger.email}"
    assert reconciler.locals["project_roles"] == [
        "roles/datastore.viewer",
        "roles/logging.logWriter",
    ]
    publishes = reconciler.resource("google_pubsub_topic_iam_member", "reconciler_publishes_shards")
    assert expression(publishes["topic"]) == "var.shards_topic"
    assert expression(env.modules["reconciler"]["shards_topic"]) == (
        f'google_pubsub_topic.pipeline["{ROUTE_BY_STAGE["collect"].consumes}"].name'
    )
    accounts = reconciler.of_type("google_service_account")
    assert {a["account_id"] for a in accounts.values()} == {
        "bp-reconciler",
        "bp-reconciler-trigger",
    }
