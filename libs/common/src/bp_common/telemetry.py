"""Traces, metrics and JSON logs, with exporters chosen by configuration."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from bp_common.config import Settings

TRACER_NAME = "blueprint-pipeline"
_LOG_EXTRAS = ("run_id", "scene_id", "stage", "topic", "message_id", "attempt", "outcome")


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER_NAME)


def meter() -> metrics.Meter:
    return metrics.get_meter(TRACER_NAME)


def inject_trace() -> dict[str, str]:
    """W3C `traceparent` (and `tracestate`) of the current span, for message attributes."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract_trace(attributes: dict[str, str]) -> Context:
    return propagate.extract(
        {k: v for k, v in attributes.items() if k in ("traceparent", "tracestate")}
    )


def _span_exporter(settings: Settings) -> SpanExporter | None:
    if settings.telemetry_exporter == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    if settings.telemetry_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        otlp: SpanExporter = (
            OTLPSpanExporter(endpoint=settings.otlp_endpoint)
            if settings.otlp_endpoint
            else OTLPSpanExporter()
        )
        return otlp
    if settings.telemetry_exporter == "gcp":
        from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

        cloud: SpanExporter = CloudTraceSpanExporter(project_id=settings.project_id)
        return cloud
    return None


def _metric_exporter(settings: Settings) -> MetricExporter | None:
    if settings.telemetry_exporter == "console":
        return ConsoleMetricExporter(out=sys.stderr)
    if settings.telemetry_exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        metric: MetricExporter = OTLPMetricExporter()
        return metric
    return None


_configured = False


def setup_telemetry(
    settings: Settings, service: str, *, span_exporter: SpanExporter | None = None
) -> None:
    """Install providers once per process; an explicit exporter wins over configuration."""
    global _configured
    setup_logging(settings, service)
    if _configured:
        return
    _configured = True
    resource = Resource.create(
        {"service.name": f"bp-{service}", "deployment.environment": settings.env.value}
    )
    provider = TracerProvider(resource=resource)
    exporter = span_exporter or _span_exporter(settings)
    if exporter is not None:
        processor = SimpleSpanProcessor(exporter) if span_exporter else BatchSpanProcessor(exporter)
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    metric_exporter = _metric_exporter(settings)
    readers = [PeriodicExportingMetricReader(metric_exporter)] if metric_exporter else []
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))


def shutdown_telemetry() -> None:
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, carrying the trace, span and run ids (Cloud Logging reads them)."""

    def __init__(self, service: str, project_id: str) -> None:
        super().__init__()
        self.service = service
        self.project_id = project_id

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "severity": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            trace_id = format(span.trace_id, "032x")
            entry["trace_id"] = trace_id
            entry["span_id"] = format(span.span_id, "016x")
            entry["logging.googleapis.com/trace"] = f"projects/{self.project_id}/traces/{trace_id}"
        for key in _LOG_EXTRAS:
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(settings: Settings, service: str, *, json_logs: bool = True) -> None:
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    handler = logging.StreamHandler(sys.stderr)
    if json_logs:
        handler.setFormatter(JsonLogFormatter(service, settings.project_id))
    root.handlers = [handler]
