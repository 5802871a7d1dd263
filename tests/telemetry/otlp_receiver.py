"""An OTLP receiver on 127.0.0.1 for tests: gRPC and HTTP/protobuf, built from opentelemetry-proto.

It keeps every metric data point (name and labels) and every span it is sent, so a test can ask
what a process really exported. Both servers run in this process and stop with `close()`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent import futures
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedPoint:
    service: str
    name: str
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    attributes: tuple[tuple[str, str], ...]


def _text(values: Iterable[KeyValue]) -> tuple[tuple[str, str], ...]:
    pairs = []
    for kv in values:
        value = kv.value
        kind = value.WhichOneof("value")
        pairs.append((kv.key, str(getattr(value, kind)) if kind else ""))
    return tuple(sorted(pairs))


def _data_points(metric: Metric) -> list[tuple[tuple[str, str], ...]]:
    kind = metric.WhichOneof("data")
    if kind is None:
        return []
    return [_text(point.attributes) for point in getattr(metric, kind).data_points]


@dataclass
class Received:
    """What arrived, over either protocol, and through which."""

    points: list[ReceivedPoint] = field(default_factory=list)
    spans: list[ReceivedSpan] = field(default_factory=list)
    protocols: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def metrics(self, request: metrics_service_pb2.ExportMetricsServiceRequest, via: str) -> None:
        found = []
        for resource in request.resource_metrics:
            service = dict(_text(resource.resource.attributes)).get("service.name", "")
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found += [
                        ReceivedPoint(service, metric.name, labels)
                        for labels in _data_points(metric)
                    ]
        with self.lock:
            self.points += found
            self.protocols.add(f"metrics/{via}")

    def traces(self, request: trace_service_pb2.ExportTraceServiceRequest, via: str) -> None:
        found = []
        for resource in request.resource_spans:
            service = dict(_text(resource.resource.attributes)).get("service.name", "")
            for scope in resource.scope_spans:
                found += [
                    ReceivedSpan(service, s.name, s.trace_id.hex(), _text(s.attributes))
                    for s in scope.spans
                ]
        with self.lock:
            self.spans += found
            self.protocols.add(f"traces/{via}")

    def metric_labels(self) -> dict[str, set[tuple[tuple[str, str], ...]]]:
        """Each metric name with every label set it was exported with."""
        with self.lock:
            out: dict[str, set[tuple[tuple[str, str], ...]]] = {}
            for point in self.points:
                out.setdefault(point.name, set()).add(point.labels)
            return out


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(
        self, request: metrics_service_pb2.ExportMetricsServiceRequest, context: object
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self.received.metrics(request, "grpc")
        return metrics_service_pb2.ExportMetricsServiceResponse()


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, received: Received) -> None:
        self.received = received

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: object
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.received.traces(request, "grpc")
        return trace_service_pb2.ExportTraceServiceResponse()


def _http_handler(received: Received) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.headers.get("content-type") != "application/x-protobuf":
                self.send_error(415, "OTLP/HTTP protobuf only")
                return
            if self.path == "/v1/metrics":
                received.metrics(
                    metrics_service_pb2.ExportMetricsServiceRequest.FromString(body), "http"
                )
                answer = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
            elif self.path == "/v1/traces":
                received.traces(
                    trace_service_pb2.ExportTraceServiceRequest.FromString(body), "http"
                )
                answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


class OtlpReceiver:
    """Listens on two free loopback ports: OTLP/gRPC and OTLP/HTTP."""

    def __init__(self) -> None:
        self.received = Received()
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        # The generated registration functions carry no annotations.
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _Metrics(self.received), self._grpc
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _Traces(self.received), self._grpc
        )
        self.grpc_port = self._grpc.add_insecure_port(f"{LOOPBACK}:0")
        self._grpc.start()
        self._http = ThreadingHTTPServer((LOOPBACK, 0), _http_handler(self.received))
        self.http_port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def environment(self, protocol: str) -> dict[str, str]:
        """The standard variables that point a process at this receiver."""
        port = self.grpc_port if protocol == "grpc" else self.http_port
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{LOOPBACK}:{port}",
            "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
            # Export every second rather than every minute, so a short test sees its metrics.
            "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._grpc.stop(grace=1).wait()
