"""A run's import on local folders: every robot gated on its own, each passing one written.

Gates are checked for every robot before any dataset is written, so a failing robot costs no
encoding. A robot that fails its gates is held back: its folder holds only its quality report.
Every robot that passes has its dataset written and committed in turn, whatever the others did,
so one robot missing its episodes never holds back the others' datasets. `on_robot` is called
with each robot's folder and outcome (the stage uploads it there, and frees the disk).
"""

from __future__ import annotations

import tempfile
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

RobotDone = Callable[[str, Path, RobotImport], None]


@dataclass(frozen=True)
class RunImport:
    """Each robot's quality, and its import: committed, or held back with only its report."""

    qualities: dict[str, RobotQuality]
    imports: dict[str, RobotImport] = field(default_factory=dict)

    @property
    def committed(self) -> list[str]:
        """Robots whose dataset is committed: the publishable ones."""
        return [r for r in self.qualities if r in self.imports and self.imports[r].committed]

    @property
    def passed(self) -> bool:
        """Every robot's dataset is committed (none held back)."""
        return bool(self.qualities) and len(self.committed) == len(self.qualities)

    def failures(self) -> dict[str, list[str]]:
        """Failed gates per robot held back (whose dataset did not commit)."""
        out: dict[str, list[str]] = {}
        for robot, quality in self.qualities.items():
            done = self.imports.get(robot)
            if done is None or not done.committed:
                out[robot] = held_back_reasons(done.quality if done is not None else quality)
        return out

    def note(self) -> str:
        return "; ".join(f"{robot}: {', '.join(why)}" for robot, why in self.failures().items())


def held_back_reasons(quality: RobotQuality) -> list[str]:
    """Why a robot's dataset was held back: its failed gates."""
    return failed_gates(quality.gates) or ["no dataset written"]


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
    imports: dict[str, RobotImport] = {}
    for robot, robot_quality in qualities.items():
        if not robot_quality.passed:
            write_quality_report(robot_quality, out / robot)
            imports[robot] = RobotImport(robot_quality, out / robot, lerobot.format, None, None)
            if on_robot is not None:
                on_robot(robot, out / robot, imports[robot])
    passing = {robot: q for robot, q in qualities.items() if q.passed}
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bp-import-measures-", dir=out) as work:
        # Measured once for the passing robots, spooled to `work`: each robot's analytics
        # compare it with the others.
        measured = run_trajectories(passing, Path(work)) if passing else {}
        for robot, robot_quality in passing.items():
            done = write_robot_dataset(
                robot_quality, out / robot, lerobot, provenance(robot), measured
            )
            imports[robot] = done
            if on_robot is not None:
                on_robot(robot, out / robot, done)
    return RunImport(qualities, dict(sorted(imports.items())))
