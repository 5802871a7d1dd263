"""Which of a robot's episodes go into its dataset, and why each other one stays out.

An episode enters the dataset when, in this order, it is
1. valid (`episodes.validation`; else its `DefectReason`),
2. the first of its `episode_id` among the robot's folders (else `duplicate_episode`: the
   collector rewrites an episode in place, so a second folder with the same id is a copy),
3. recorded like the dataset: the dataset's cameras (else `missing_camera`), and the same fps,
   camera sizes, joint and action names (else `inconsistent`); the dataset's layout is the one
   most of the robot's valid episodes share,
4. successful at its task, unless `require_success` is off (else `task_failed`): a failed
   attempt is not a demonstration to learn from, so it stays out of the training dataset but
   is counted in the report and in the gates' rates,
5. of a quality score of at least `min_score` (else `low_score`).
An episode the LeRobot writer still refuses while encoding is `rejected_by_writer`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from bp_episode_format import MANIFEST
from numpy.typing import NDArray

from bp_import.episodes.validation import EpisodeDefect, RawEpisodeManifest, validate_episode
from bp_import.import_config import QualitySettings
from bp_import.quality.metrics import CameraShape, EpisodeQuality, measure_episode

PREVIEW_POINTS = 120


class ExclusionReason(StrEnum):
    """Why a valid episode stays out of the dataset."""

    DUPLICATE_EPISODE = "duplicate_episode"
    MISSING_CAMERA = "missing_camera"
    INCONSISTENT = "inconsistent"
    TASK_FAILED = "task_failed"
    LOW_SCORE = "low_score"
    REJECTED_BY_WRITER = "rejected_by_writer"


@dataclass(frozen=True)
class DatasetLayout:
    """What every episode of one robot's dataset shares."""

    fps: int
    cameras: tuple[CameraShape, ...]
    joint_names: tuple[str, ...]
    action_names: tuple[str, ...]

    @classmethod
    def of(cls, manifest: RawEpisodeManifest) -> DatasetLayout:
        return cls(
            fps=manifest.fps,
            cameras=tuple((c.name, c.width, c.height) for c in manifest.cameras),
            joint_names=tuple(manifest.state.joint_names),
            action_names=tuple(manifest.state.action_names),
        )

    def record(self) -> dict[str, Any]:
        return {
            "fps": self.fps,
            "cameras": [{"name": n, "width": w, "height": h} for n, w, h in self.cameras],
            "joint_names": list(self.joint_names),
            "action_names": list(self.action_names),
        }


@dataclass(frozen=True)
class EpisodeFacts:
    """What an assessment keeps of an episode's manifest: what the report, the selection and the
    instructions read. The manifest itself (some tens of KiB as Python objects) is not kept:
    whatever needs it reopens the folder (`episodes.reopen`)."""

    episode_id: str
    task_id: str
    task_text: str
    target: str | None
    seed: int
    fps: int
    n_frames: int
    success: bool
    collision_count: int
    instructions: tuple[str, ...]
    failure: str
    """Why the task failed, as the collector judged it ("" when it did not say)."""
    layout_problem: tuple[ExclusionReason, str] | None
    """How the episode is recorded unlike the dataset's layout (None: like it, or no layout)."""

    @classmethod
    def of(cls, manifest: RawEpisodeManifest, layout: DatasetLayout | None) -> EpisodeFacts:
        reason = (manifest.model_extra or {}).get("outcome", {}).get("reason", "")
        return cls(
            episode_id=manifest.episode_id,
            task_id=manifest.task_id,
            task_text=manifest.task_text,
            target=manifest.target,
            seed=manifest.seed,
            fps=manifest.fps,
            n_frames=manifest.n_frames,
            success=manifest.success,
            collision_count=manifest.collisions.count,
            instructions=tuple(manifest.instructions),
            failure=str(reason) if reason else "",
            layout_problem=_layout_problem(manifest, layout) if layout is not None else None,
        )


@dataclass(frozen=True)
class EpisodeAssessment:
    """One episode folder: validated, measured (when valid), and whether it is in the dataset.

    Neither the arrays nor the manifest are kept (`facts` holds what the report reads), so a
    robot's assessments stay small however many episodes it has.
    """

    source: str
    path: Path
    episode_id: str | None
    facts: EpisodeFacts | None
    defect: EpisodeDefect | None
    quality: EpisodeQuality | None
    included: bool = False
    reason: str | None = None
    message: str | None = None
    dataset_index: int | None = None

    @property
    def is_valid(self) -> bool:
        return self.defect is None and self.facts is not None

    def excluded(self, reason: ExclusionReason, message: str) -> EpisodeAssessment:
        return replace(
            self, included=False, reason=reason.value, message=message, dataset_index=None
        )


def _manifest_layout(path: Path) -> DatasetLayout | None:
    try:
        return DatasetLayout.of(
            RawEpisodeManifest.model_validate(json.loads((path / MANIFEST).read_text()))
        )
    except Exception:  # a folder whose manifest does not parse has no say in the layout
        return None


def dataset_layout(paths: Iterable[Path]) -> DatasetLayout | None:
    """The layout most episode manifests share (ties: the one with more cameras, then first)."""
    found = [layout for layout in map(_manifest_layout, paths) if layout is not None]
    if not found:
        return None
    counts = Counter(found)
    return max(counts, key=lambda layout: (counts[layout], len(layout.cameras)))


def path_preview(states: Mapping[str, NDArray[Any]]) -> NDArray[np.float64]:
    """The end-effector path thinned to at most PREVIEW_POINTS points (and the last), for the
    report's plots."""
    points = states["ee_position"].astype(np.float64)
    step = max(1, int(np.ceil(len(points) / PREVIEW_POINTS)))
    return np.vstack([points[::step], points[-1:]])


def assess_episode(
    path: Path, settings: QualitySettings, robot: str | None, layout: DatasetLayout | None
) -> EpisodeAssessment:
    """Validate and measure one folder; the selection happens in `select_episodes`."""
    validation = validate_episode(path, settings, robot)
    if validation.valid is None:
        defect = validation.defect
        assert defect is not None
        return EpisodeAssessment(
            source=validation.source,
            path=path,
            episode_id=validation.episode_id,
            facts=None
            if validation.manifest is None
            else EpisodeFacts.of(validation.manifest, None),
            defect=defect,
            quality=None,
            reason=defect.reason.value,
            message=defect.message,
        )
    valid = validation.valid
    expected = layout.cameras if layout is not None else DatasetLayout.of(valid.manifest).cameras
    return EpisodeAssessment(
        source=validation.source,
        path=path,
        episode_id=valid.manifest.episode_id,
        facts=EpisodeFacts.of(valid.manifest, layout),
        defect=None,
        quality=measure_episode(valid, expected, settings),
    )


def _layout_problem(
    manifest: RawEpisodeManifest, layout: DatasetLayout
) -> tuple[ExclusionReason, str] | None:
    own = DatasetLayout.of(manifest)
    names = {name for name, _, _ in own.cameras}
    missing = [name for name, _, _ in layout.cameras if name not in names]
    if missing:
        return ExclusionReason.MISSING_CAMERA, f"episode lacks camera(s) {', '.join(missing)}"
    if own != layout:
        differs = [
            f
            for f in ("fps", "cameras", "joint_names", "action_names")
            if getattr(own, f) != getattr(layout, f)
        ]
        return (
            ExclusionReason.INCONSISTENT,
            f"episode differs from the dataset in {', '.join(differs)}",
        )
    return None


def select_episodes(
    assessments: Sequence[EpisodeAssessment], settings: QualitySettings
) -> list[EpisodeAssessment]:
    """Decide, in folder order, which episodes enter the dataset (rules in the docstring); the
    layout was compared when each episode was assessed."""
    seen: set[str] = set()
    out: list[EpisodeAssessment] = []
    for item in sorted(assessments, key=lambda a: a.source):
        if not item.is_valid or item.facts is None or item.quality is None:
            out.append(item)
            continue
        facts, quality = item.facts, item.quality
        if facts.episode_id in seen:
            out.append(
                item.excluded(
                    ExclusionReason.DUPLICATE_EPISODE, "another folder holds the same episode_id"
                )
            )
            continue
        seen.add(facts.episode_id)
        if facts.layout_problem is not None:
            out.append(item.excluded(*facts.layout_problem))
        elif settings.require_success and not facts.success:
            out.append(
                item.excluded(
                    ExclusionReason.TASK_FAILED,
                    f"task failed: {facts.failure}" if facts.failure else "task failed",
                )
            )
        elif quality.score < settings.min_score:
            out.append(
                item.excluded(
                    ExclusionReason.LOW_SCORE,
                    f"quality score {quality.score:.3f} below {settings.min_score}",
                )
            )
        else:
            out.append(replace(item, included=True, reason=None, message=None))
    return out
