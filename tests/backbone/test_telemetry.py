"""One trace per run across stages (through `traceparent`), metrics, and JSON logs with ids."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from bp_common.config import Settings
from bp_common.telemetry import JsonLogFormatter
from bp_common.wiring import deliverer
from bp_ops.embedded import EmbeddedPipeline
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.backbone.probe_stage import FOLLOW, PROBE


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
    assert sorted(s.attributes["bp.stage"] for s in handled) == ["export", "submit"]  # type: ignore[index]
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
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

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
    points = {}
    for rm in reader.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    points[(metric.name, tuple(sorted(point.attributes.items())))] = point
    handled = {k[1]: v.value for k, v in points.items() if k[0] == "bp.messages.handled"}
    assert handled[(("outcome", "ack"), ("stage", "export"))] == 1
    assert handled[(("outcome", "dead_letter"), ("stage", "export"))] == 1
    failed = [v.value for k, v in points.items() if k[0] == "bp.messages.failed"]
    assert failed == [1]
    [latency] = [v for k, v in points.items() if k[0] == "bp.stage.duration"]
    assert latency.count == 2


@pytest.mark.parametrize(
    ("choice", "exporter"),
    [("console", "ConsoleSpanExporter"), ("otlp", "OTLPSpanExporter"), ("none", None)],
)
def test_the_trace_exporter_is_chosen_by_configuration(choice: str, exporter: str | None) -> None:
    from bp_common.telemetry import _span_exporter

    chosen = _span_exporter(Settings(_env_file=None, telemetry_exporter=choice))  # type: ignore[call-arg]
    assert (type(chosen).__name__ if chosen else None) == exporter
