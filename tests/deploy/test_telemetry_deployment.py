"""Deployment sends telemetry the way decision 0040 says, and puts the status page behind IAP.

Every stage and collector VM runs an OpenTelemetry Collector beside it that our processes reach
on loopback with the standard OTEL_* variables only; compose runs one too. The status page is a
Cloud Run service with IAP in front. SLOs and their burn-rate alerts read what the code records.
The HCL is parsed, not planned (tests/deploy/terraform_model.py).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from bp_common.config import Settings
from bp_common.errors import InvalidInput
from bp_common.metrics import RUN_SECONDS
from bp_common.runtime.delivery import error_log_fields
from bp_common.telemetry import LOG_FIELDS, PROTOCOLS, STANDARD_VARIABLES
from bp_common.topology import STAGE_NAMES
from bp_ops.cli.status import PLATFORM_AUTH_VARIABLE

from tests.deploy.terraform_model import (
    ENVIRONMENT,
    Folder,
    block,
    blocks,
    expression,
    folder,
    module_folder,
    references,
    render,
)
from tests.deploy.test_terraform import container_named

REPO = Path(__file__).resolve().parents[2]
_OTEL_VARIABLE = re.compile(r"\bOTEL_[A-Z0-9_]*[A-Z0-9]\b")


@pytest.fixture(scope="module")
def env() -> Folder:
    return folder(ENVIRONMENT)


def module(env: Folder, name: str) -> Folder:
    return folder(module_folder(env.modules[name]))


def _defaults(tf: Folder, *names: str) -> dict[str, str]:
    return {f"var.{n}": str(tf.default(n)) for n in names}


def test_deployments_configure_telemetry_with_the_standard_variables_only() -> None:
    files = [REPO / "docker-compose.yml"]
    for pattern in ("*.tf", "*.tftpl"):
        files.extend(sorted((REPO / "deploy").rglob(pattern)))
    used = {name for path in files for name in _OTEL_VARIABLE.findall(path.read_text())}
    assert used, "no deployment sets an OTEL_* variable"
    assert used <= set(STANDARD_VARIABLES), sorted(used - set(STANDARD_VARIABLES))
    no_longer = re.compile(r"BP_TELEMETRY_EXPORTER|BP_OTLP_ENDPOINT")
    assert not [p for p in files if no_longer.search(p.read_text())]


def test_the_collector_receives_on_loopback_and_writes_to_cloud_trace_and_monitoring(
    env: Folder,
) -> None:
    telemetry = module(env, "telemetry")
    config = telemetry.locals["config"]
    ports = _defaults(telemetry, "grpc_port", "http_port", "health_port")
    protocols = config["receivers"]["otlp"]["protocols"]
    assert render(protocols["grpc"]["endpoint"], ports) == "127.0.0.1:4317"
    assert render(protocols["http"]["endpoint"], ports) == "127.0.0.1:4318"
    for signal in ("traces", "metrics"):
        pipeline = config["service"]["pipelines"][signal]
        assert pipeline["receivers"] == ["otlp"] and pipeline["exporters"] == ["googlecloud"]
        assert expression(pipeline["processors"]) == "local.pipeline"
    assert telemetry.locals["pipeline"] == ["memory_limiter", "resourcedetection", "batch"]
    assert "gcp" in config["processors"]["resourcedetection"]["detectors"]
    exporter = config["exporters"]["googlecloud"]
    assert expression(exporter["metric"]["prefix"]) == "var.metric_prefix"
    assert render(config["extensions"]["health_check"]["endpoint"], ports) == "0.0.0.0:13133"
    # What our processes are told, in the variables telemetry.py reads.
    app_env = {k: render(v, ports) for k, v in telemetry.locals["app_env"].items()}
    assert app_env == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }
    assert app_env["OTEL_EXPORTER_OTLP_PROTOCOL"] in PROTOCOLS
    # The dashboards look where the exporter writes.
    monitoring = module(env, "monitoring")
    assert telemetry.default("metric_prefix") == monitoring.default("otel_metric_prefix")


def test_every_stage_runs_the_collector_as_a_sidecar_it_starts_after(env: Folder) -> None:
    stage = module(env, "stage")
    assert "var.telemetry.env" in stage.locals["environment"]
    for kind, name in (
        ("google_cloud_run_v2_service", "push"),
        ("google_cloud_run_v2_worker_pool", "pull"),
    ):
        template = block(stage.resource(kind, name), "template")
        assert len(blocks(template, "containers")) == 2, kind
        main = container_named(template, "stage")
        sidecar = container_named(template, "${local.collector_name}")
        assert stage.locals["collector_name"] == "otel-collector"
        assert [expression(d) for d in main["depends_on"]] == ["local.collector_name"]
        assert expression(sidecar["image"]) == "var.telemetry.image"
        assert sidecar["args"] == ["--config=env:OTELCOL_CONFIG"]
        variable = block(sidecar, "env")
        assert variable["name"] == "OTELCOL_CONFIG"
        assert expression(variable["value"]) == "var.telemetry.config"
        probe = block(block(sidecar, "startup_probe"), "http_get")
        assert expression(probe["port"]) == "var.telemetry.health_port"
    # Push services keep CPU between requests, so the sidecar's periodic exports happen.
    service = block(stage.resource("google_cloud_run_v2_service", "push"), "template")
    assert block(container_named(service, "stage"), "resources")["cpu_idle"] is False
    call = env.modules["stage"]["telemetry"]
    assert {k: expression(v) for k, v in call.items()} == {
        "image": "module.telemetry.image",
        "config": "module.telemetry.config",
        "health_port": "module.telemetry.health_port",
        "env": "module.telemetry.app_env",
    }
    # GPU collector workers get the collect stage's environment, the telemetry's included.
    assert expression(env.modules["collector"]["env"]) == 'module.stage["collect"].environment'
    assert "var.telemetry.env" in stage.locals["environment"]
    assert stage.outputs["environment"]["value"] == "${local.environment}"
    vm = module(env, "collector")
    user_data = vm.resource("google_compute_instance_template", "collector")["metadata"]
    assert "var.env" in user_data["user-data"]
    assert "base64encode(var.telemetry.config)" in user_data["user-data"]


def test_compose_runs_the_collector_the_services_export_to(env: Folder) -> None:
    compose: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = compose["services"]
    otel = services["otel-collector"]
    assert otel["image"] == module(env, "telemetry").default("image")
    host_path = otel["volumes"][0].split(":")[0]
    config = yaml.safe_load((REPO / host_path).read_text())
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    for name in STAGE_NAMES:
        environment = {k: str(v) for k, v in services[name]["environment"].items()}
        assert (
            environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
            == f"http://otel-collector:{http.split(':')[1]}"
        )
        assert environment["OTEL_EXPORTER_OTLP_PROTOCOL"] in PROTOCOLS
    assert set(config["service"]["pipelines"]) == {"traces", "metrics"}


def test_the_status_page_is_deployed_behind_iap(
    env: Folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = module(env, "status")
    service = status.resource("google_cloud_run_v2_service", "status")
    assert service["iap_enabled"] is True
    template = block(service, "template")
    # One instance holds the CSRF key its forms are signed with.
    assert block(template, "scaling")["max_instance_count"] == 1
    assert expression(template["service_account"]) == "google_service_account.status.email"
    invoker = status.resource("google_cloud_run_v2_service_iam_member", "iap_invokes")
    assert invoker["role"] == "roles/run.invoker"
    assert references(invoker["member"]) == ["var.iap_service_agent"]
    accessors = status.resource("google_iap_web_cloud_run_service_iam_member", "operators")
    assert accessors["role"] == "roles/iap.httpsResourceAccessor"
    assert expression(accessors["for_each"]) == "toset(var.members)"
    assert status.resource("google_pubsub_subscription_iam_member", "dead_letters")["role"] == (
        "roles/pubsub.subscriber"
    )
    assert status.resource("google_pubsub_topic_iam_member", "replays")["role"] == (
        "roles/pubsub.publisher"
    )

    call = env.modules["status"]
    assert call["image"] == "${local.registry}/bp-ops:${var.image_tag}"
    assert expression(call["iap_service_agent"]) == "google_project_service_identity.iap.email"
    assert "module.stage[name].dead_letter_subscription" in expression(
        call["dead_letter_subscriptions"]
    )
    assert "s.consumes" in expression(call["replay_topics"])
    assert "iap.googleapis.com" in env.locals["apis"]

    # The page's environment is what `bp status serve` reads, and production accepts it.
    environment = {
        k: render(
            v,
            {"var.pipeline_env": "production", "var.project_id": "bp-prod", "var.bucket": "scenes"},
        )
        for k, v in status.locals["environment"].items()
    }
    assert environment[PLATFORM_AUTH_VARIABLE] == "true"
    for key in list(os.environ):
        if key.startswith("BP_") or key == "PIPELINE_ENV" or key.endswith("_EMULATOR_HOST"):
            monkeypatch.delenv(key)
    for key, value in environment.items():
        monkeypatch.setenv(key, value)
    assert Settings().problems(environment) == []


def test_slos_and_burn_rate_alerts_read_the_runs_and_the_deliveries(env: Folder) -> None:
    monitoring = module(env, "monitoring")
    latency = monitoring.resource("google_monitoring_slo", "run_latency")
    cut = block(block(latency, "request_based_sli"), "distribution_cut")
    assert "/bp.run.duration" in cut["distribution_filter"]
    assert expression(block(cut, "range")["max"]) == "var.run_latency_objective_seconds"
    # The SLO's bound is a bucket bound of the histogram, so good and total are counted exactly.
    assert monitoring.default("run_latency_objective_seconds") in RUN_SECONDS
    validation = block(monitoring.variables["run_latency_objective_seconds"], "validation")
    listed = [int(n) for n in re.findall(r"\d+", validation["condition"].split("]")[0])]
    assert listed == list(RUN_SECONDS)
    assert monitoring.default("run_latency_goal") == 0.99

    deliveries = monitoring.resource("google_monitoring_slo", "deliveries")
    ratio = block(block(deliveries, "request_based_sli"), "good_total_ratio")
    assert "/bp.dead_letters" in ratio["bad_service_filter"]
    assert "/bp.stage.messages" in ratio["total_service_filter"]

    burn = monitoring.resource("google_monitoring_alert_policy", "slo_burn")
    condition = block(block(burn, "conditions"), "condition_threshold")
    assert condition["filter"].startswith("select_slo_burn_rate(")
    assert set(monitoring.locals["slo_alerts"]) == {"run_latency", "deliveries"}
    windows = monitoring.locals["burn_windows"]
    assert {w["lookback"] for w in windows.values()} == {"3600s", "21600s"}
    assert sorted(w["rate"] for w in windows.values()) == [6, 14.4]


def test_log_based_metrics_count_the_typed_errors_the_delivery_logs_carry(env: Folder) -> None:
    monitoring = module(env, "monitoring")
    metric = monitoring.resource("google_logging_metric", "permanent_errors")
    assert 'jsonPayload.error_kind="permanent"' in metric["filter"]
    extracted = {
        v.removeprefix("EXTRACT(jsonPayload.").rstrip(")")
        for v in metric["label_extractors"].values()
    }
    assert extracted == {"stage", "error_type"}
    assert extracted <= set(LOG_FIELDS)
    assert error_log_fields(InvalidInput("bad scene")) == {
        "error_type": "InvalidInput",
        "error_kind": "permanent",
    }
