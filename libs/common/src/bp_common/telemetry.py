"""Traces, metrics and JSON logs; exporters chosen by the standard OpenTelemetry variables.

`OTEL_TRACES_EXPORTER` and `OTEL_METRICS_EXPORTER` name the exporters (`otlp`, `console`,
`none`); `OTEL_EXPORTER_OTLP_PROTOCOL` (or its per-signal form) picks `grpc` or `http/protobuf`;
the OTLP exporters read `OTEL_EXPORTER_OTLP_ENDPOINT` themselves; `OTEL_SERVICE_NAME` and
`OTEL_RESOURCE_ATTRIBUTES` win over the service name and environment this module sets. One
deviation from the specification: with no exporter named and no endpoint set, nothing is
exported, since no collector listens by default on a laptop (decision 0040).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from bp_common.config import Settings
from bp_common.errors import PermanentError

TRACER_NAME = "blueprint-pipeline"
# Fields a log record may carry into its JSON line; the log-based metrics extract some of them.
LOG_FIELDS = (
    "run_id",
    "scene_id",
    "stage",
    "topic",
    "message_id",
    "attempt",
    "outcome",
    "error_type",
    "error_kind",
)

Signal = Literal["traces", "metrics"]
Protocol = Literal["grpc", "http/protobuf"]
PROTOCOLS: tuple[Protocol, ...] = ("grpc", "http/protobuf")
# The specification's default; the Python SDK's own auto-configuration defaults to grpc.
DEFAULT_PROTOCOL: Protocol = "http/protobuf"

# The standard variables this module and the SDK's exporters read: what a deployment may set.
STANDARD_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_METRIC_EXPORT_TIMEOUT",
    "OTEL_BSP_SCHEDULE_DELAY",
)


class TelemetrySettingError(PermanentError):
    """An OTEL_* variable names an exporter or protocol this process cannot provide."""


@dataclass(frozen=True)
class Exporter:
    """One exporter of one signal: `console`, or `otlp` over a protocol."""

    kind: Literal["otlp", "console"]
    protocol: Protocol | None = None


def _endpoint_set(environ: Mapping[str, str], signal: Signal) -> bool:
    names = ("OTEL_EXPORTER_OTLP_ENDPOINT", f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
    return any(environ.get(name, "").strip() for name in names)


def _protocol(environ: Mapping[str, str], signal: Signal) -> Protocol:
    value = (
        environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or DEFAULT_PROTOCOL
    ).strip()
    for protocol in PROTOCOLS:
        if value == protocol:
            return protocol
    raise TelemetrySettingError(
        f"OTLP protocol {value!r} for {signal} is not supported here: use one of {PROTOCOLS}"
    )


def exporters_for(environ: Mapping[str, str], signal: Signal) -> list[Exporter]:
    """What the standard variables ask this process to export `signal` through."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = environ.get(f"OTEL_{signal.upper()}_EXPORTER", "").strip()
    if not named:
        named = "otlp" if _endpoint_set(environ, signal) else "none"
    found: list[Exporter] = []
    for name in (n.strip() for n in named.split(",")):
        if name == "none":
            continue
        if name == "otlp":
            found.append(Exporter("otlp", _protocol(environ, signal)))
        elif name == "console":
            found.append(Exporter("console"))
        else:
            raise TelemetrySettingError(
                f"OTEL_{signal.upper()}_EXPORTER names {name!r}: use otlp, console or none"
            )
    return found


def _span_exporter(exporter: Exporter) -> SpanExporter:
    if exporter.kind == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    if exporter.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        grpc_exporter: SpanExporter = GrpcSpanExporter()
        return grpc_exporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HttpSpanExporter,
    )

    http_exporter: SpanExporter = HttpSpanExporter()
    return http_exporter


def _metric_exporter(exporter: Exporter) -> MetricExporter:
    if exporter.kind == "console":
        return ConsoleMetricExporter(out=sys.stderr)
    if exporter.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetricExporter,
        )

        grpc_exporter: MetricExporter = GrpcMetricExporter()
        return grpc_exporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetricExporter,
    )

    http_exporter: MetricExporter = HttpMetricExporter()
    return http_exporter


def resource_for(settings: Settings, service: str) -> Resource:
    """`bp-{service}` in the pipeline's environment, unless the OTEL_* variables say otherwise."""
    defaults = Resource.create(
        {"service.name": f"bp-{service}", "deployment.environment": settings.env.value}
    )
    return defaults.merge(OTELResourceDetector().detect())


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


_configured = False


def setup_telemetry(
    settings: Settings,
    service: str,
    *,
    span_exporter: SpanExporter | None = None,
    metric_reader: MetricReader | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Install providers once per process; explicit exporters or readers join the configured."""
    global _configured
    setup_logging(settings, service)
    if _configured:
        return
    environ = os.environ if environ is None else environ
    traces = exporters_for(environ, "traces")
    metric_exporters = exporters_for(environ, "metrics")
    _configured = True
    resource = resource_for(settings, service)
    provider = TracerProvider(resource=resource)
    if span_exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    for chosen in traces:
        provider.add_span_processor(BatchSpanProcessor(_span_exporter(chosen)))
    trace.set_tracer_provider(provider)
    readers: list[MetricReader] = [
        PeriodicExportingMetricReader(_metric_exporter(chosen)) for chosen in metric_exporters
    ]
    if metric_reader is not None:
        readers.append(metric_reader)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))


def flush_telemetry() -> None:
    """Export what is pending now; the providers also flush when the process exits."""
    tracer_provider = trace.get_tracer_provider()
    if isinstance(tracer_provider, TracerProvider):
        tracer_provider.force_flush()
    meter_provider = metrics.get_meter_provider()
    if isinstance(meter_provider, MeterProvider):
        meter_provider.force_flush()


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
        for key in LOG_FIELDS:
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
