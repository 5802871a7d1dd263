"""Embodiment transfer: the same tasks across a run's robots, as a task x robot matrix.

Each cell (task, robot) over that robot's valid episodes of the task: episodes, success rate
(succeeded / episodes), mean path efficiency (the quality metric E) and mean episode time
(of the successful episodes; of all when none succeeded). A task is **attempted by only some
robots** when some robot of the run has no episode of it (export found it out of that robot's
reach), and **done by only some robots** when some robots succeed at it at least once and
others never do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bp_import.analytics.trajectory import EpisodeTrajectory


def _mean(values: Sequence[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return round(float(np.mean(defined)), 6) if defined else None


def embodiment_matrix(robots: Mapping[str, Sequence[EpisodeTrajectory]]) -> dict[str, Any]:
    """The matrix, and the tasks only some robots attempt or do (see the module docstring)."""
    names = sorted(robots)
    tasks = sorted({t.task_id for episodes in robots.values() for t in episodes})
    cells: dict[str, dict[str, Any]] = {}
    attempted_by_some: dict[str, list[str]] = {}
    done_by_some: dict[str, list[str]] = {}
    for task in tasks:
        row: dict[str, Any] = {}
        for robot in names:
            mine = [t for t in robots[robot] if t.task_id == task]
            if not mine:
                row[robot] = None
                continue
            won = [t for t in mine if t.success]
            row[robot] = {
                "episodes": len(mine),
                "success_rate": round(len(won) / len(mine), 6),
                "path_efficiency": _mean([t.path_efficiency for t in mine]),
                "episode_time_s": _mean([t.duration_s for t in (won or mine)]),
            }
        cells[task] = row
        attempted = [r for r in names if row[r] is not None]
        if len(attempted) < len(names):
            attempted_by_some[task] = attempted
        done = [r for r in attempted if row[r]["success_rate"] > 0]
        if done and len(done) < len(attempted):
            done_by_some[task] = done
    return {
        "robots": names,
        "tasks": tasks,
        "matrix": cells,
        "attempted_by_only_some": attempted_by_some,
        "done_by_only_some": done_by_some,
    }
