"""The quality report of one robot's import, as a JSON document (the HTML page renders it).

Per episode: validation outcome, metrics, score, whether it is in the dataset and why not;
per task and per object (the task's target): success counts; the score distribution; the
gates; the settings in force and the metric weights.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bp_import.episodes.selection import DatasetLayout, EpisodeAssessment
from bp_import.import_config import QualitySettings
from bp_import.quality.gates import EpisodeCounts, GateResult
from bp_import.quality.metrics import WEIGHTS
from bp_import.streamed_json import StreamedList

REPORT_FORMAT = "bp-quality-report"
REPORT_DIR = "quality"
REPORT_JSON = "quality_report.json"
REPORT_HTML = "quality_report.html"
CONTACT_SHEET = "contact_sheet.png"
HISTOGRAM_BINS = 20


@dataclass(frozen=True)
class RobotQuality:
    """Everything the report says about one robot, before it is rendered."""

    scene_id: str
    run_id: str
    robot: str
    layout: DatasetLayout | None
    assessments: list[EpisodeAssessment]
    counts: EpisodeCounts
    gates: list[GateResult]
    settings: QualitySettings

    @property
    def passed(self) -> bool:
        return bool(self.gates) and all(g.passed for g in self.gates)

    @property
    def included(self) -> list[EpisodeAssessment]:
        return [a for a in self.assessments if a.included]


def episode_record(item: EpisodeAssessment) -> dict[str, Any]:
    facts = item.facts
    record: dict[str, Any] = {
        "source": item.source,
        "episode_id": item.episode_id,
        "valid": item.is_valid,
        "included": item.included,
        "reason": item.reason,
        "message": item.message,
        "dataset_index": item.dataset_index,
    }
    if facts is not None:
        record.update(
            task_id=facts.task_id,
            task=facts.task_text,
            target=facts.target,
            seed=facts.seed,
            n_frames=facts.n_frames,
            fps=facts.fps,
            success=facts.success,
            collision_count=facts.collision_count,
        )
    if item.defect is not None:
        record["defect"] = item.defect.record()
    if item.quality is not None:
        record["quality"] = item.quality.record()
    return record


def _success_table(items: Sequence[EpisodeAssessment], key: str) -> list[dict[str, Any]]:
    groups: dict[str, list[EpisodeAssessment]] = defaultdict(list)
    for item in items:
        if item.facts is not None:
            name = item.facts.task_id if key == "task" else (item.facts.target or "-")
            groups[name].append(item)
    rows = []
    for name, group in sorted(groups.items()):
        valid = [g for g in group if g.is_valid]
        succeeded = sum(1 for g in valid if g.facts and g.facts.success)
        row: dict[str, Any] = {
            key: name,
            "episodes": len(group),
            "valid": len(valid),
            "succeeded": succeeded,
            "success_rate": round(succeeded / len(group), 6),
            "included": sum(1 for g in group if g.included),
        }
        if key == "task" and group[0].facts is not None:
            row["instruction"] = group[0].facts.task_text
        rows.append(row)
    return rows


def score_summary(items: Sequence[EpisodeAssessment]) -> dict[str, Any]:
    scores = np.array([a.quality.score for a in items if a.quality is not None])
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    kept = np.array([a.quality.score for a in items if a.quality is not None and a.included])
    left = np.array([a.quality.score for a in items if a.quality is not None and not a.included])
    summary: dict[str, Any] = {
        "count": int(scores.size),
        "histogram": {
            "edges": [round(float(e), 4) for e in edges],
            "included": np.histogram(kept, edges)[0].tolist(),
            "excluded": np.histogram(left, edges)[0].tolist(),
        },
    }
    if scores.size:
        summary.update(
            mean=round(float(scores.mean()), 6),
            median=round(float(np.median(scores)), 6),
            min=round(float(scores.min()), 6),
            max=round(float(scores.max()), 6),
        )
    return summary


def quality_document(quality: RobotQuality, dataset: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON report; `dataset` says what was written (None when nothing was)."""
    return {
        "format": REPORT_FORMAT,
        "format_version": 1,
        "scene_id": quality.scene_id,
        "run_id": quality.run_id,
        "robot": quality.robot,
        "passed": quality.passed,
        "gates": [g.record() for g in quality.gates],
        "counts": quality.counts.record(),
        "scores": score_summary(quality.assessments),
        "per_task": _success_table(quality.assessments, "task"),
        "per_object": _success_table(quality.assessments, "object"),
        "layout": quality.layout.record() if quality.layout is not None else None,
        "dataset": dataset,
        "settings": quality.settings.record(),
        "weights": dict(WEIGHTS),
        "files": {"html": REPORT_HTML, "contact_sheet": CONTACT_SHEET},
        # A row per episode: made as the document is written, never held as a list.
        "episodes": StreamedList(lambda: map(episode_record, quality.assessments)),
    }


def quality_summary(quality: RobotQuality) -> dict[str, Any]:
    """The short form the import manifest carries."""
    scores = score_summary(quality.assessments)
    return {
        "passed": quality.passed,
        "gates": [g.record() for g in quality.gates],
        "success_rate": round(quality.counts.success_rate, 6),
        "collision_free_rate": round(quality.counts.collision_free_rate, 6),
        "pass_rate": round(quality.counts.pass_rate, 6),
        "score_mean": scores.get("mean"),
        "score_min": scores.get("min"),
        "report": f"{REPORT_DIR}/{REPORT_JSON}",
    }
