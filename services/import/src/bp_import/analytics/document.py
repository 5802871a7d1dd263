"""A robot's `analytics/analytics.json`: trajectory quality, embodiment transfer, coverage,
language, contact forces and sim-to-real notes, computed from the run's episodes.

`run_trajectories` measures every valid episode of every robot once (the embodiment matrix
needs them all); `robot_analytics` assembles one robot's document. Definitions:
docs/quality-metrics.md, section 7, and each module of this package.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bp_episode_format import FINGERTIP_FORCE
from numpy.typing import NDArray

from bp_import.analytics.coverage import (
    ObjectStarts,
    generalisation_coverage,
    object_starts,
    randomisation_factors,
)
from bp_import.analytics.embodiment import embodiment_matrix
from bp_import.analytics.language import language_annotations
from bp_import.analytics.sim_to_real import sim_to_real_notes
from bp_import.analytics.trajectory import EpisodeTrajectory, measure_trajectory, per_task
from bp_import.episodes.reopen import reopen
from bp_import.episodes.selection import EpisodeAssessment
from bp_import.import_config import QualitySettings
from bp_import.quality.report import RobotQuality
from bp_import.row_spool import RowSpool, SpoolView
from bp_import.streamed_json import StreamedList

ANALYTICS_DIR = "analytics"
ANALYTICS_JSON = "analytics.json"
ANALYTICS_HTML = "analytics.html"
FORMAT_VERSION = 1
TOUCH_N = 0.05


@dataclass(frozen=True)
class MeasuredEpisode:
    """One valid episode's trajectory measures and the few values the other analyses need.

    Measured episodes are spooled to disk as they are measured (`MeasuredEpisodes`) and read
    back one at a time whenever a document needs them, so a run's measures take no memory that
    grows with its episodes.
    """

    episode_id: str
    path: Path
    """The episode's folder (the page's force plot reopens it)."""
    fps: int
    trajectory: EpisodeTrajectory
    object_starts: ObjectStarts
    factors: dict[str, float]
    contact: dict[str, Any] | None
    """`contact_row` of the episode's fingertip forces (None: not recorded)."""
    touches: bool
    """Some finger force is not zero (the page plots the first such episode)."""

    def row(self) -> dict[str, Any]:
        return {
            "episode_id": self.episode_id,
            "path": str(self.path),
            "fps": self.fps,
            "trajectory": asdict(self.trajectory),
            "object_starts": self.object_starts,
            "factors": self.factors,
            "contact": self.contact,
            "touches": self.touches,
        }

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> MeasuredEpisode:
        return cls(
            episode_id=row["episode_id"],
            path=Path(row["path"]),
            fps=row["fps"],
            trajectory=EpisodeTrajectory(**row["trajectory"]),
            object_starts=[(asset, position) for asset, position in row["object_starts"]],
            factors=row["factors"],
            contact=row["contact"],
            touches=row["touches"],
        )


MeasuredEpisodes = RowSpool[MeasuredEpisode]


def measure_episode_analytics(
    item: EpisodeAssessment, settings: QualitySettings
) -> MeasuredEpisode:
    """One valid episode, its folder reopened and its arrays read once."""
    assert item.facts is not None
    raw, manifest = reopen(item.path)
    states = raw.states()
    forces = states[FINGERTIP_FORCE].astype(np.float64) if FINGERTIP_FORCE in states else None
    return MeasuredEpisode(
        episode_id=item.facts.episode_id,
        path=item.path,
        fps=item.facts.fps,
        trajectory=measure_trajectory(
            manifest,
            states,
            jerk_scale_rad_s3=settings.jerk_scale_rad_s3,
            path_efficiency=item.quality.path_efficiency if item.quality is not None else None,
        ),
        object_starts=object_starts(manifest, states),
        factors=randomisation_factors(manifest),
        contact=None if forces is None else contact_row(manifest.episode_id, forces),
        touches=forces is not None and bool(forces.any()),
    )


def measure_robot(quality: RobotQuality, spool: Path) -> MeasuredEpisodes:
    """Every valid episode of one robot, spooled to the file `spool`."""
    measured = RowSpool(spool, MeasuredEpisode.row, MeasuredEpisode.of_row)
    for item in quality.assessments:
        if item.is_valid and item.facts is not None:
            measured.append(measure_episode_analytics(item, quality.settings))
    return measured


def run_trajectories(
    qualities: Mapping[str, RobotQuality], work: Path
) -> dict[str, MeasuredEpisodes]:
    """Every robot's valid episodes, each robot's spooled in the folder `work`."""
    return {
        robot: measure_robot(quality, work / f"{robot}.measured.jsonl")
        for robot, quality in sorted(qualities.items())
    }


def contact_row(episode_id: str, forces: NDArray[np.float64]) -> dict[str, Any]:
    """The peak force on any finger and the mean total force over the frames in which some
    finger is touched (above 0.05 N); `forces` is (frames, fingers, 3)."""
    norms = np.linalg.norm(forces, axis=2)
    touched = norms.max(axis=1, initial=0.0) > TOUCH_N
    return {
        "episode_id": episode_id,
        "peak_finger_force_n": round(float(norms.max(initial=0.0)), 6),
        "mean_total_force_in_contact_n": (
            round(float(norms.sum(axis=1)[touched].mean()), 6) if touched.any() else None
        ),
        "frames_in_contact": int(touched.sum()),
    }


def contact_forces(episodes: Collection[MeasuredEpisode]) -> dict[str, Any]:
    """`contact_row` of each episode with recorded forces (made as the document is written)."""

    def rows() -> Iterator[dict[str, Any]]:
        return (episode.contact for episode in episodes if episode.contact is not None)

    return {
        "recorded": sum(1 for _ in rows()),
        "of": len(episodes),
        "episodes": StreamedList(rows),
    }


@dataclass(frozen=True)
class ForceTrace:
    """One episode's fingertip forces, (frames, fingers, 3) newtons, for the page's plot."""

    episode_id: str
    fps: int
    forces: NDArray[np.float64]


def force_trace(episodes: Iterable[MeasuredEpisode]) -> ForceTrace | None:
    """The forces of the first episode in which some finger force is not zero, read again."""
    first = next((m for m in episodes if m.touches), None)
    if first is None:
        return None
    raw, _ = reopen(first.path)
    forces = raw.states()[FINGERTIP_FORCE].astype(np.float64)
    return ForceTrace(first.episode_id, first.fps, forces)


def robot_analytics(
    quality: RobotQuality,
    measured: Mapping[str, Collection[MeasuredEpisode]],
    chosen: Mapping[str, str],
    *,
    contact_feature: str | None,
) -> dict[str, Any]:
    """One robot's document. `measured` holds every robot of the run, `chosen` the
    instruction each dataset episode carries, `contact_feature` the force feature's key.
    The per-episode rows are read back from `measured` as the document is written."""
    mine = measured.get(quality.robot, [])
    included = {a.episode_id for a in quality.assessments if a.included}
    trajectories = SpoolView(mine, lambda m: m.trajectory)
    in_dataset = [
        a.facts for a in quality.assessments if a.included and a.is_valid and a.facts is not None
    ]
    coverage = generalisation_coverage(
        SpoolView(mine, lambda m: m.object_starts), SpoolView(mine, lambda m: m.factors)
    )
    factors = {
        **coverage["lighting"],
        **coverage["colours"],
        **coverage["camera_jitter"],
        **coverage["object_offsets"],
        **(coverage["object_scales"] if isinstance(coverage["object_scales"], dict) else {}),
    }
    return {
        "format_version": FORMAT_VERSION,
        "scene_id": quality.scene_id,
        "run_id": quality.run_id,
        "robot": quality.robot,
        "episodes": {"valid": len(mine), "in_dataset": len(in_dataset)},
        "trajectory": {
            "episodes": StreamedList(
                lambda: (
                    {**t.record(), "in_dataset": t.episode_id in included} for t in trajectories
                )
            ),
            "per_task": per_task(trajectories),
            "per_task_in_dataset": per_task(t for t in trajectories if t.episode_id in included),
        },
        "embodiment": embodiment_matrix(
            {
                robot: SpoolView(episodes, lambda m: m.trajectory)
                for robot, episodes in measured.items()
            }
        ),
        "coverage": coverage,
        "language": language_annotations(in_dataset, dict(chosen)),
        "contact": {"feature": contact_feature, **contact_forces(mine)},
        "sim_to_real": sim_to_real_notes(factors),
    }


def summary_lines(document: Mapping[str, Any]) -> list[str]:
    """The dataset card's analytics section, in Markdown."""
    trajectory = document["trajectory"]["per_task_in_dataset"]
    embodiment = document["embodiment"]
    language = document["language"]
    coverage = document["coverage"]
    contact = document["contact"]
    lines = [
        "## Analytics",
        "",
        f"Computed from the episodes by the import stage: `{ANALYTICS_DIR}/{ANALYTICS_JSON}` "
        f"(definitions in BlueprintPipeline's docs/quality-metrics.md) and "
        f"`{ANALYTICS_DIR}/{ANALYTICS_HTML}` with plots.",
        "",
        "| task | episodes | carry optimality | time to success (s) | idle (s) | "
        "joint jerk (rad/s³) | min joint margin (rad) |",
        "|---|---|---|---|---|---|---|",
    ]

    def mean(stat: Mapping[str, Any]) -> str:
        return "-" if stat["mean"] is None else f"{stat['mean']:.3g}"

    for task, row in trajectory.items():
        lines.append(
            f"| {task} | {row['episodes']} | {mean(row['carry_optimality'])} | "
            f"{mean(row['time_to_success_s'])} | {mean(row['idle_time_s'])} | "
            f"{mean(row['joint_jerk_rms_rad_s3'])} | {mean(row['min_joint_margin_rad'])} |"
        )
    lines += [
        "",
        f"- Language: {language['instructions_total']} instructions over "
        f"{len(language['tasks'])} tasks, {language['instructions_in_dataset']} of them carried "
        "by episodes (`meta/tasks`).",
        f"- Diversity score: {coverage['diversity']['score']:.3f} over "
        f"{len(coverage['diversity']['per_factor'])} randomised factors.",
    ]
    if len(embodiment["robots"]) > 1:
        some = sorted(embodiment["done_by_only_some"]) + sorted(
            embodiment["attempted_by_only_some"]
        )
        lines.append(
            f"- Embodiment: {len(embodiment['tasks'])} tasks across "
            f"{', '.join(embodiment['robots'])}"
            + (f"; only some robots do {', '.join(sorted(set(some)))}." if some else ".")
        )
    if contact["feature"]:
        lines.append(
            f"- Contact forces: `{contact['feature']}` (newtons per finger, world frame; "
            "see its `description` in `meta/info.json`)."
        )
    lines.append(
        "- Sim-to-real: the randomisation ranges next to the real ranges they stand for, and "
        "what the simulator does not model, are in the analytics page."
    )
    return lines
