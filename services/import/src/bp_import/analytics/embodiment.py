"""Embodiment transfer: the same tasks across a run's robots, as a task x robot matrix.

Each cell (task, robot) over that robot's valid episodes of the task: episodes, success rate
(succeeded / episodes), mean path efficiency (the quality metric E) and mean episode time
(of the successful episodes; of all when none succeeded). A task is **attempted by only some
robots** when some robot of the run has no episode of it (export found it out of that robot's
reach), and **done by only some robots** when some robots succeed at it at least once and
others never do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from bp_import.analytics.trajectory import EpisodeTrajectory


def _mean(values: Sequence[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return round(float(np.mean(defined)), 6) if defined else None


def embodiment_matrix(robots: Mapping[str, Iterable[EpisodeTrajectory]]) -> dict[str, Any]:
    """The matrix, and the tasks only some robots attempt or do (see the module docstring).

    Each robot's trajectories are read once, keeping per task only what a cell needs."""
    names = sorted(robots)
    # robot -> task -> (success, path efficiency, duration) of each episode
    episodes: dict[str, dict[str, list[tuple[bool, float | None, float]]]] = {}
    for robot in names:
        by_task: dict[str, list[tuple[bool, float | None, float]]] = {}
        for t in robots[robot]:
            by_task.setdefault(t.task_id, []).append((t.success, t.path_efficiency, t.duration_s))
        episodes[robot] = by_task
    tasks = sorted({task for by_task in episodes.values() for task in by_task})
    cells: dict[str, dict[str, Any]] = {}
    attempted_by_some: dict[str, list[str]] = {}
    done_by_some: dict[str, list[str]] = {}
    for task in tasks:
        row: dict[str, Any] = {}
        for robot in names:
            mine = episodes[robot].get(task, [])
            if not mine:
                row[robot] = None
                continue
            won = [e for e in mine if e[0]]
            row[robot] = {
                "episodes": len(mine),
                "success_rate": round(len(won) / len(mine), 6),
                "path_efficiency": _mean([e[1] for e in mine]),
                "episode_time_s": _mean([e[2] for e in (won or mine)]),
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
