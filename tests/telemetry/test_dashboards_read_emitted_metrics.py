"""Nothing on a dashboard that nothing emits.

The embedded pipeline runs the sample scene, and a scene export refuses, with an in-memory metric
reader on its stages (collection's included: its shards are worked in the pipeline's process).
Every metric, label and label value a Terraform dashboard widget, alert policy or SLO reads must
be among what it collected. (`bp up` gets the same check in tests/test_end_to_end.py, its
services exporting OTLP to a receiver.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bp_common import stages as stage_registry
from bp_common.config import Settings
from bp_common.metrics import CATALOGUE
from bp_ops.embedded import EmbeddedPipeline
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from tests.telemetry.dashboard_references import Emitted, Reference, references, unmet
from tests.telemetry.points import points

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "kitchen_table" / "scene.usda"
OWN = "${local.otel}/"


def emitted_by(reader: InMemoryMetricReader) -> dict[str, set[tuple[tuple[str, str], ...]]]:
    found: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    for point in points(reader):
        found.setdefault(point.name, set()).add(tuple(sorted(point.labels.items())))
    return found


def as_emitted(refs: list[Reference]) -> dict[str, set[tuple[tuple[str, str], ...]]]:
    """What a run would have to emit to answer exactly these references."""
    found: dict[str, set[tuple[tuple[str, str], ...]]] = {}
    for ref in refs:
        if ref.metric.startswith(OWN):
            base = {label: "x" for label in ref.labels}
            variants = [base, *({**base, key: value} for key, value in ref.values)]
            found.setdefault(ref.metric.removeprefix(OWN), set()).update(
                tuple(sorted(v.items())) for v in variants
            )
    return found


def test_the_queries_of_every_widget_alert_and_slo_are_read() -> None:
    refs = references()
    kinds = {r.where.split()[-1] for r in refs}
    assert kinds == {
        "timeSeriesFilter",
        "numerator",
        "denominator",
        "condition_threshold",
        "distribution_cut",
        "good_total_ratio",
    }
    own = {r.metric.removeprefix(OWN) for r in refs if r.metric.startswith(OWN)}
    # Every metric the code declares is on the dashboard, and nothing else of ours is.
    assert own == {spec.name for spec in CATALOGUE}
    messages = [r for r in refs if r.metric == OWN + "bp.stage.messages"]
    assert any(("outcome", "permanent") in r.values for r in messages)


def test_the_check_names_what_nothing_emitted() -> None:
    refs = references()
    complete = as_emitted(refs)
    assert unmet(refs, complete) == []
    missing: Emitted = {k: v for k, v in complete.items() if k != "bp.run.duration"}
    assert [p for p in unmet(refs, missing) if "nothing emitted bp.run.duration" in p]
    unlabelled: Emitted = {**complete, "bp.stage.messages": {(("stage", "export"),)}}
    assert [p for p in unmet(refs, unlabelled) if "without ['outcome']" in p]
    no_permanent: Emitted = {
        **complete,
        "bp.stage.messages": {(("outcome", "succeeded"), ("stage", "export"))},
    }
    assert [p for p in unmet(refs, no_permanent) if "outcome='permanent'" in p]


def test_an_embedded_run_emits_every_metric_the_dashboards_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = stage_registry.available()
    assert list(installed) == ["export", "submit", "collect", "import", "upload"]
    monkeypatch.setenv("BP_ROBOTS", "franka_panda")
    for key, value in (("BP_EPISODE_WIDTH", "64"), ("BP_EPISODE_HEIGHT", "64")):
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BP_EPISODE_FPS", "10")
    # Under test are the metrics, not the grasps: the run id (from the drop's time) seeds the
    # randomisation, and a seed whose grasps mostly fail would stop the run at the quality gates
    # before upload emits its part. Every valid episode passes them here.
    for gate in ("MIN_SCORE", "MIN_SUCCESS_RATE", "MIN_COLLISION_FREE_RATE", "MIN_PASS_RATE"):
        monkeypatch.setenv(f"BP_QUALITY_{gate}", "0")
    monkeypatch.setenv("BP_QUALITY_REQUIRE_SUCCESS", "false")
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("dashboards")
    pipeline = EmbeddedPipeline(tmp_path / "out", Settings(_env_file=None), installed, meter=meter)  # type: ignore[call-arg]
    broken = tmp_path / "broken" / "scene.usda"
    broken.parent.mkdir()
    broken.write_text("#usda 1.0\nthis is not a scene\n")
    refused = pipeline.drain(pipeline.drop_scene(broken))
    assert [v.outcome.value for _, v in refused.deliveries] == ["dead_letter"]
    run = pipeline.drain(pipeline.drop_scene(EXAMPLE))
    record = pipeline.ports.ledger.get(run.run_id)
    assert record is not None and record.state == "succeeded"
    problems = unmet(references(), emitted_by(reader))
    assert problems == [], "\n".join(problems)
