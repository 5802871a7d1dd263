"""`bp check-config` flags every endpoint reached without TLS outside `local`: the certificates
push tokens are verified with, OTLP to anything but the sidecar on loopback, the collector
channel, Secret Manager, Genie Sim, the emulators."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bp_common.config import PipelineEnv, Settings, is_loopback_host


def production(**fields: Any) -> Settings:
    """Settings production accepts, but for what `fields` change."""
    safe: dict[str, Any] = {
        "env": PipelineEnv.PRODUCTION,
        "stage": "export",
        "dead_letter_topic": "bp-export-dead-letter",
        "push_audience": "https://export",
        "push_service_account": "push@p.iam.gserviceaccount.com",
        "ledger_backend": "firestore",
    }
    return Settings(_env_file=None, **{**safe, **fields})  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("fields", "environ", "flagged"),
    [
        ({"oidc_certs_url": "http://www.googleapis.com/oauth2/v1/certs"}, {}, "BP_OIDC_CERTS_URL"),
        ({"oidc_certs_url": "http://127.0.0.1:9000/certs"}, {}, "BP_OIDC_CERTS_URL"),
        ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel.example:4318"}, "otel.example"),
        (
            {},
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://10.0.0.7:4318/v1/traces"},
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ),
        (
            {},
            {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "HTTP://otel.example:4318/v1/metrics"},
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        ),
        (
            {},
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "otel.example:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_INSECURE": "true",
            },
            "OTEL_EXPORTER_OTLP_INSECURE=true",
        ),
        (
            {},
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "otel.example:4317",
                "OTEL_EXPORTER_OTLP_METRICS_INSECURE": "True",
            },
            "OTEL_EXPORTER_OTLP_METRICS_INSECURE=true",
        ),
        ({"collector_insecure": True}, {}, "BP_COLLECTOR_INSECURE"),
        ({"secret_manager_endpoint": "sm.internal:443"}, {}, "BP_SECRET_MANAGER_ENDPOINT"),
        ({}, {"BP_GENIE_SIM_ADDRESS": "genie.internal:50051"}, "BP_GENIE_SIM_ADDRESS"),
        ({}, {"STORAGE_EMULATOR_HOST": "http://gcs:4443"}, "STORAGE_EMULATOR_HOST"),
    ],
)
def test_a_plaintext_endpoint_is_flagged_and_production_refuses_it(
    fields: dict[str, Any], environ: dict[str, str], flagged: str
) -> None:
    assert production().problems({}) == []
    problems = production(**fields).problems(environ)
    assert len(problems) == 1 and flagged in problems[0], problems


@pytest.mark.parametrize(
    "environ",
    [
        # the OpenTelemetry Collector sidecar, as Terraform configures it
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
        },
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "[::1]:4317", "OTEL_EXPORTER_OTLP_INSECURE": "true"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example:4318"},
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "otel.example:4317",
            "OTEL_EXPORTER_OTLP_INSECURE": "false",
        },
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "otel.example:4317",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://otel.example:4318/v1/traces",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://otel.example:4318/v1/metrics",
        },
        {"BP_GENIE_SIM_ADDRESS": "127.0.0.1:50051"},
    ],
)
def test_tls_and_loopback_sidecars_are_not_flagged(environ: dict[str, str]) -> None:
    assert production().problems(environ) == []


def test_loopback_means_the_machine_itself() -> None:
    assert all(map(is_loopback_host, ["localhost", "127.0.0.1", "127.3.4.5", "::1", "[::1]"]))
    assert not any(map(is_loopback_host, ["0.0.0.0", "10.0.0.1", "localhost.evil.com", ""]))


def test_check_config_lists_every_plaintext_endpoint_and_fails_in_production(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BP_", "OTEL_"))}
    env = {k: v for k, v in env.items() if not k.endswith("_EMULATOR_HOST")}
    env |= {
        "PIPELINE_ENV": "production",
        "BP_LEDGER_BACKEND": "firestore",
        "BP_OIDC_CERTS_URL": "http://certs.example/oauth2/v1/certs",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel.example:4318",
        "BP_COLLECTOR_INSECURE": "true",
    }
    done = subprocess.run(
        [sys.executable, "-m", "bp_common.cli", "check-config"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    for needle in ("BP_OIDC_CERTS_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "BP_COLLECTOR_INSECURE"):
        assert needle in done.stdout
    assert "otel.example" in done.stdout
