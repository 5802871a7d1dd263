"""Metric points read back from an in-memory reader, typed for assertions."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)


@dataclass(frozen=True)
class Point:
    """One series: its labels, its value (a sum or gauge) or count (a histogram)."""

    name: str
    labels: dict[str, str]
    value: float
    count: int = 0


def points(reader: InMemoryMetricReader, name: str | None = None) -> list[Point]:
    data = reader.get_metrics_data()
    found = []
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if name is not None and metric.name != name:
                    continue
                for point in metric.data.data_points:
                    labels = {k: str(v) for k, v in (point.attributes or {}).items()}
                    if isinstance(point, NumberDataPoint):
                        found.append(Point(metric.name, labels, float(point.value)))
                    elif isinstance(point, HistogramDataPoint):
                        found.append(Point(metric.name, labels, point.sum, point.count))
    return found


def by_label(reader: InMemoryMetricReader, name: str, label: str) -> dict[str, float]:
    """name's values keyed by one label's value (series that differ elsewhere are summed)."""
    out: dict[str, float] = {}
    for point in points(reader, name):
        out[point.labels[label]] = out.get(point.labels[label], 0.0) + point.value
    return out
