"""One trace per run across stages (through `traceparent`), metrics, and JSON logs with ids."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from bp_common.config import Settings
from bp_common.contracts.envelope import Envelope
from bp_common.telemetry import (
    Exporter,
    JsonLogFormatter,
    TelemetrySettingError,
    exporters_for,
    resource_for,
)
from bp_common.wiring import deliverer
from bp_ops.embedded import EmbeddedPipeline
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.backbone.probe_stage import FOLLOW, PROBE
from tests.telemetry.points import by_label, points


@pytest.fixture
def spans() -> InMemorySpanExporter:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def test_one_trace_spans_every_stage_of_a_run(tmp_path: Path, spans: InMemorySpanExporter) -> None:
    p = EmbeddedPipeline(tmp_path, Settings(_env_file=None), {"export": PROBE, "submit": FOLLOW})  # type: ignore[call-arg]
    scene = tmp_path / "k" / "scene.usda"
    scene.parent.mkdir()
    scene.write_text("ok")
    run = p.drain(p.drop_scene(scene))
    [exported] = p.bus.published("scenes-exported")
    [collected] = p.bus.published("episodes-collected")
    handled = [
        s
        for s in spans.get_finished_spans()
        if s.attributes and s.attributes.get("bp.run_id") == run.run_id
    ]
    assert sorted(str((s.attributes or {})["bp.stage"]) for s in handled) == ["export", "submit"]
    assert len({s.context.trace_id for s in handled}) == 1
    trace_id = format(handled[0].context.trace_id, "032x")
    assert exported.attributes["traceparent"].split("-")[1] == trace_id
    assert collected.attributes["traceparent"].split("-")[1] == trace_id


def test_json_logs_carry_trace_and_run_ids(spans: InMemorySpanExporter) -> None:
    formatter = JsonLogFormatter("export", "proj")
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        record = logging.LogRecord(
            "bp.export", logging.INFO, __file__, 1, "hello %s", ("world",), None
        )
        record.run_id = "run-0123456789abcdef0123"
        entry = json.loads(formatter.format(record))
    assert entry["message"] == "hello world" and entry["run_id"] == "run-0123456789abcdef0123"
    assert entry["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert entry["logging.googleapis.com/trace"].startswith("projects/proj/traces/")


def test_metrics_count_messages_per_stage_and_outcome_and_time_stages(tmp_path: Path) -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    p = EmbeddedPipeline(tmp_path, settings, {"export": PROBE})
    p.deliverers["export"] = deliverer(PROBE, p.ports, settings, meter=meter)
    for name, body in (("good", "ok"), ("bad", "permanent")):
        scene = tmp_path / name / "scene.usda"
        scene.parent.mkdir()
        scene.write_text(body)
        p.drain(p.drop_scene(scene))
    # Every outcome's series exists from the start; these two deliveries moved two of them.
    assert by_label(reader, "bp.stage.messages", "outcome") == {
        "succeeded": 1,
        "permanent": 1,
        "duplicate": 0,
        "ignored": 0,
        "transient": 0,
    }
    assert by_label(reader, "bp.dead_letters", "reason") == {"permanent": 1, "exhausted": 0}
    assert {p.labels["subscription"] for p in points(reader, "bp.dead_letters")} == {
        "bp-export-dead-letter"
    }
    latency = {p.labels["outcome"]: p.count for p in points(reader, "bp.stage.duration")}
    assert latency == {"succeeded": 1, "permanent": 1}
    assert [p.value for p in points(reader, "bp.stage.in_flight")] == [0]


def test_a_message_the_stage_ignores_and_a_repeat_are_counted_apart(tmp_path: Path) -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    p = EmbeddedPipeline(tmp_path, settings, {"export": PROBE}, meter=meter)
    scene = tmp_path / "k" / "scene.usda"
    scene.parent.mkdir()
    scene.write_text("ok")
    run = p.drop_scene(scene)
    [upload] = p.bus.published("scene-uploads")
    p.drain(run)
    p.bus.publish(Envelope(upload.topic, upload.data, upload.attributes))  # a redelivery
    name = "scenes/k/scene_manifest.json"  # a companion's notification: no scene, ignored
    manifest = {**json.loads(upload.data), "name": name}
    attributes = {**upload.attributes, "objectId": name}
    p.bus.publish(Envelope(upload.topic, json.dumps(manifest).encode(), attributes))
    p.drain(run)
    counted = by_label(reader, "bp.stage.messages", "outcome")
    assert (counted["succeeded"], counted["duplicate"], counted["ignored"]) == (1, 1, 1)


@pytest.mark.parametrize(
    ("environ", "traces", "metrics"),
    [
        ({}, [], []),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
            [Exporter("otlp", "http/protobuf")],
            [Exporter("otlp", "http/protobuf")],
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_METRICS_EXPORTER": "otlp,console",
                "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
            },
            [Exporter("otlp", "grpc")],
            [Exporter("otlp", "http/protobuf"), Exporter("console")],
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"},
            [Exporter("otlp", "http/protobuf")],
            [],
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:4318", "OTEL_TRACES_EXPORTER": "none"},
            [],
            [Exporter("otlp", "http/protobuf")],
        ),
        ({"OTEL_TRACES_EXPORTER": "console"}, [Exporter("console")], []),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"},
            [],
            [],
        ),
    ],
)
def test_the_standard_variables_choose_the_exporters(
    environ: dict[str, str], traces: list[Exporter], metrics: list[Exporter]
) -> None:
    assert exporters_for(environ, "traces") == traces
    assert exporters_for(environ, "metrics") == metrics


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_EXPORTER": "zipkin"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
    ],
)
def test_an_exporter_or_protocol_this_process_lacks_is_refused(environ: dict[str, str]) -> None:
    with pytest.raises(TelemetrySettingError):
        exporters_for(environ, "traces")


def test_the_service_name_and_resource_attributes_variables_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert resource_for(settings, "export").attributes["service.name"] == "bp-export"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "export-canary")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging,team=robots")
    attributes = resource_for(settings, "export").attributes
    assert attributes["service.name"] == "export-canary"
    assert attributes["deployment.environment"] == "staging" and attributes["team"] == "robots"
