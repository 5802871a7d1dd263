"""The pipeline's metrics: each one's name, unit and labels, declared once, emitted as declared.

`CATALOGUE` is the table docs/observability.md prints and the dashboards read; a test holds the
three together. Instruments check their labels at every call, so nothing is emitted with a label
the table does not name. `PipelineMetrics(meter)` builds every instrument on one meter;
`pipeline_metrics()` is the process's own, on the global meter provider that
`bp_common.telemetry.setup_telemetry` installs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Literal

from opentelemetry import metrics
from opentelemetry.metrics import Meter

Kind = Literal["counter", "histogram", "up-down counter"]
METER_NAME = "blueprint-pipeline"

# Delivery outcomes as ops count them; `ignored` is a message the stage has nothing to do with.
OUTCOMES = ("succeeded", "duplicate", "ignored", "transient", "permanent")
DEAD_LETTER_REASONS = ("permanent", "exhausted")

# Bucket bounds (seconds) that an SLO's threshold can sit on exactly.
STAGE_SECONDS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400)
RUN_SECONDS = (60, 300, 600, 1800, 3600, 7200, 10800, 14400, 21600, 28800, 43200, 86400)
REALTIME_FACTORS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16)
FRAME_RATES = (10, 30, 100, 300, 1000, 3000, 10000)
BYTE_RATES = (1e5, 1e6, 5e6, 1e7, 5e7, 1e8, 5e8, 1e9)


@dataclass(frozen=True)
class MetricSpec:
    """One row of the table."""

    name: str
    kind: Kind
    unit: str
    labels: tuple[str, ...]
    description: str
    emitted_by: str
    buckets: tuple[float, ...] = ()


STAGE_MESSAGES = MetricSpec(
    "bp.stage.messages",
    "counter",
    "{message}",
    ("stage", "outcome"),
    "Messages a stage handled, by outcome: " + ", ".join(OUTCOMES) + ".",
    "every stage (delivery)",
)
STAGE_DURATION = MetricSpec(
    "bp.stage.duration",
    "histogram",
    "s",
    ("stage", "outcome"),
    "Time one delivery took, from receipt to verdict.",
    "every stage (delivery)",
    STAGE_SECONDS,
)
STAGE_IN_FLIGHT = MetricSpec(
    "bp.stage.in_flight",
    "up-down counter",
    "{message}",
    ("stage",),
    "Deliveries being handled right now.",
    "every stage (delivery)",
)
DEAD_LETTERS = MetricSpec(
    "bp.dead_letters",
    "counter",
    "{message}",
    ("stage", "subscription", "reason"),
    "Messages sent to a dead-letter subscription: at once for a permanent error, or after the "
    "last delivery attempt failed (exhausted).",
    "every stage (delivery)",
)
RUN_DURATION = MetricSpec(
    "bp.run.duration",
    "histogram",
    "s",
    (),
    "From the run's first record (export taking the scene upload's notification) to upload "
    "publishing its datasets.",
    "upload (delivery)",
    RUN_SECONDS,
)
COLLECTION_EPISODES = MetricSpec(
    "bp.collection.episodes",
    "counter",
    "{episode}",
    ("robot", "outcome"),
    "Episodes the collector finished: the task succeeded, failed, or the simulation raised.",
    "collector",
)
COLLECTION_REALTIME_FACTOR = MetricSpec(
    "bp.collection.realtime_factor",
    "histogram",
    "1",
    ("robot",),
    "Simulated seconds (frames / fps) per wall-clock second, per episode.",
    "collector",
    REALTIME_FACTORS,
)
IMPORT_FRAMES = MetricSpec(
    "bp.import.frames",
    "counter",
    "{frame}",
    ("robot",),
    "Frames written into committed LeRobot datasets; its rate is frames per second.",
    "import",
)
IMPORT_FRAME_RATE = MetricSpec(
    "bp.import.frame_rate",
    "histogram",
    "{frame}/s",
    ("robot",),
    "Frames per second of writing one robot's dataset.",
    "import",
    FRAME_RATES,
)
IMPORT_EPISODES = MetricSpec(
    "bp.import.episodes",
    "counter",
    "{episode}",
    ("robot", "verdict"),
    "Episodes assessed by import: included in the dataset or excluded (the pass rate).",
    "import",
)
IMPORT_EXCLUDED = MetricSpec(
    "bp.import.excluded_episodes",
    "counter",
    "{episode}",
    ("robot", "reason"),
    "Episodes left out of a dataset, by reason (invalid, task failed, low score...).",
    "import",
)
IMPORT_DATASETS = MetricSpec(
    "bp.import.datasets",
    "counter",
    "{dataset}",
    ("robot", "verdict"),
    "Robots' datasets by quality-gate verdict: passed or failed.",
    "import",
)
UPLOAD_BYTES = MetricSpec(
    "bp.upload.bytes",
    "counter",
    "By",
    ("robot",),
    "Bytes sent to the datasets bucket; its rate is the stage's throughput.",
    "upload",
)
UPLOAD_THROUGHPUT = MetricSpec(
    "bp.upload.throughput",
    "histogram",
    "By/s",
    ("robot",),
    "Bytes per second of publishing one dataset.",
    "upload",
    BYTE_RATES,
)
UPLOAD_VERIFICATION_FAILURES = MetricSpec(
    "bp.upload.verification_failures",
    "counter",
    "{file}",
    ("robot",),
    "Files that did not verify: failed for good on a checksum (md5, crc32c, sha256 of the "
    "source), or found missing or altered by the audit before commit and sent again.",
    "upload",
)

CATALOGUE: tuple[MetricSpec, ...] = (
    STAGE_MESSAGES,
    STAGE_DURATION,
    STAGE_IN_FLIGHT,
    DEAD_LETTERS,
    RUN_DURATION,
    COLLECTION_EPISODES,
    COLLECTION_REALTIME_FACTOR,
    IMPORT_FRAMES,
    IMPORT_FRAME_RATE,
    IMPORT_EPISODES,
    IMPORT_EXCLUDED,
    IMPORT_DATASETS,
    UPLOAD_BYTES,
    UPLOAD_THROUGHPUT,
    UPLOAD_VERIFICATION_FAILURES,
)


class UndeclaredLabels(ValueError):
    """An instrument was called with labels its row of the table does not name."""


def _labels(spec: MetricSpec, labels: Mapping[str, str]) -> dict[str, str]:
    if set(labels) != set(spec.labels):
        raise UndeclaredLabels(
            f"{spec.name} takes labels {list(spec.labels)}, was given {sorted(labels)}"
        )
    return dict(labels)


class Count:
    """A counter or an up-down counter of one row."""

    def __init__(self, meter: Meter, spec: MetricSpec) -> None:
        assert spec.kind in ("counter", "up-down counter"), spec
        self.spec = spec
        create = meter.create_counter if spec.kind == "counter" else meter.create_up_down_counter
        self._instrument = create(spec.name, unit=spec.unit, description=spec.description)

    def add(self, amount: float, **labels: str) -> None:
        self._instrument.add(amount, _labels(self.spec, labels))

    def zero(self, combinations: Iterable[Mapping[str, str]]) -> None:
        """Start these series at 0, so a dashboard reads 0 rather than no data."""
        for labels in combinations:
            self.add(0, **labels)


class Distribution:
    """A histogram of one row, with the row's bucket bounds."""

    def __init__(self, meter: Meter, spec: MetricSpec) -> None:
        assert spec.kind == "histogram", spec
        self.spec = spec
        self._instrument = meter.create_histogram(
            spec.name,
            unit=spec.unit,
            description=spec.description,
            explicit_bucket_boundaries_advisory=list(spec.buckets),
        )

    def record(self, value: float, **labels: str) -> None:
        self._instrument.record(value, _labels(self.spec, labels))


class PipelineMetrics:
    """Every instrument on one meter."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self.stage_messages = Count(meter, STAGE_MESSAGES)
        self.stage_duration = Distribution(meter, STAGE_DURATION)
        self.stage_in_flight = Count(meter, STAGE_IN_FLIGHT)
        self.dead_letters = Count(meter, DEAD_LETTERS)
        self.run_duration = Distribution(meter, RUN_DURATION)
        self.collection_episodes = Count(meter, COLLECTION_EPISODES)
        self.collection_realtime_factor = Distribution(meter, COLLECTION_REALTIME_FACTOR)
        self.import_frames = Count(meter, IMPORT_FRAMES)
        self.import_frame_rate = Distribution(meter, IMPORT_FRAME_RATE)
        self.import_episodes = Count(meter, IMPORT_EPISODES)
        self.import_excluded = Count(meter, IMPORT_EXCLUDED)
        self.import_datasets = Count(meter, IMPORT_DATASETS)
        self.upload_bytes = Count(meter, UPLOAD_BYTES)
        self.upload_throughput = Distribution(meter, UPLOAD_THROUGHPUT)
        self.upload_verification_failures = Count(meter, UPLOAD_VERIFICATION_FAILURES)


@cache
def pipeline_metrics() -> PipelineMetrics:
    """This process's instruments, on the global meter provider (set up or not yet)."""
    return PipelineMetrics(metrics.get_meter(METER_NAME))
