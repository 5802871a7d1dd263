"""One trace per run across stages (through `traceparent`), metrics, and JSON logs with ids."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bp_common.config import Settings
from bp_common.embedded import EmbeddedPipeline
from bp_common.telemetry import JsonLogFormatter
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
    handled = [s for s in spans.get_finished_spans() if s.attributes and s.attributes.get("bp.run_id") == run.run_id]
    assert sorted(s.attributes["bp.stage"] for s in handled) == ["export", "submit"]  # type: ignore[index]
    assert len({s.context.trace_id for s in handled}) == 1
    trace_id = format(handled[0].context.trace_id, "032x")
    assert exported.attributes["traceparent"].split("-")[1] == trace_id
    assert collected.attributes["traceparent"].split("-")[1] == trace_id


def test_json_logs_carry_trace_and_run_ids(spans: InMemorySpanExporter) -> None:
    formatter = JsonLogFormatter("export", "proj")
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        record = logging.LogRecord("bp.export", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        record.run_id = "run-0123456789abcdef0123"
        entry = json.loads(formatter.format(record))
    assert entry["message"] == "hello world" and entry["run_id"] == "run-0123456789abcdef0123"
    assert entry["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert entry["logging.googleapis.com/trace"].startswith("projects/proj/traces/")
