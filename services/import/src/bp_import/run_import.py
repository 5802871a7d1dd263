"""A run's import on local folders: every robot assessed first, datasets only if all pass.

Gates are checked for every robot before any dataset is written, so a failing robot costs no
encoding and a failed run commits nothing: each robot's folder then holds only its quality
report. When all robots pass, each robot's dataset is written and committed in turn, and
`on_robot` is called with its folder (the stage uploads it there, and frees the disk).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bp_import.analytics.document import run_trajectories
from bp_import.import_config import LeRobotSettings, QualitySettings
from bp_import.quality.gates import failed_gates
from bp_import.quality.report import RobotQuality
from bp_import.robot_import import (
    RobotImport,
    assess_robot,
    write_quality_report,
    write_robot_dataset,
)

RobotDone = Callable[[str, Path, RobotImport | None], None]


@dataclass(frozen=True)
class RunImport:
    """Each robot's quality, and its committed import when it got that far."""

    qualities: dict[str, RobotQuality]
    imports: dict[str, RobotImport] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.qualities) and all(
            robot in self.imports and self.imports[robot].committed for robot in self.qualities
        )

    def failures(self) -> dict[str, list[str]]:
        """Failed gates per robot that did not commit."""
        out: dict[str, list[str]] = {}
        for robot, quality in self.qualities.items():
            done = self.imports.get(robot)
            final = done.quality if done is not None else quality
            if done is None or not done.committed:
                out[robot] = failed_gates(final.gates) or ["no dataset written"]
        return out

    def note(self) -> str:
        return "; ".join(f"{robot}: {', '.join(why)}" for robot, why in self.failures().items())


def import_run(
    scene_id: str,
    run_id: str,
    episodes: Mapping[str, Sequence[Path]],
    out: Path,
    quality: QualitySettings,
    lerobot: LeRobotSettings,
    provenance: Callable[[str], Mapping[str, Any]],
    on_robot: RobotDone | None = None,
) -> RunImport:
    """Assess every robot's episode folders; write `out/<robot>/` for each (see module doc)."""
    qualities = {
        robot: assess_robot(scene_id, run_id, robot, folders, quality)
        for robot, folders in sorted(episodes.items())
    }
    if not all(q.passed for q in qualities.values()):
        for robot, robot_quality in qualities.items():
            write_quality_report(robot_quality, out / robot)
            if on_robot is not None:
                on_robot(robot, out / robot, None)
        return RunImport(qualities)
    imports: dict[str, RobotImport] = {}
    # Measured once for all robots: each robot's analytics compare it with the others.
    measured = run_trajectories(qualities)
    for robot, robot_quality in qualities.items():
        done = write_robot_dataset(robot_quality, out / robot, lerobot, provenance(robot), measured)
        imports[robot] = done
        if on_robot is not None:
            on_robot(robot, out / robot, done)
    return RunImport(qualities, imports)
