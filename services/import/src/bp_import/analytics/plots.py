"""The analytics page's plots as PNG bytes, drawn with matplotlib's Agg canvas (no pyplot)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from bp_import.quality.report_plots import _png


def task_measures(per_task: Mapping[str, Mapping[str, Any]]) -> bytes:
    """Per task: success rate, carry optimality and time to success (means, min-max bars)."""
    tasks = list(per_task)
    figure = Figure(figsize=(9, 0.5 + 0.45 * max(1, len(tasks))))
    shown = (
        ("success_rate", "success rate"),
        ("carry_optimality", "carry optimality"),
        ("time_to_success_s", "time to success (s)"),
    )
    y = np.arange(len(tasks))
    for column, (key, label) in enumerate(shown, start=1):
        axes = figure.add_subplot(1, len(shown), column)
        if key == "success_rate":
            axes.barh(y, [per_task[t][key] for t in tasks], color="#2a7f62")
            axes.set_xlim(0, 1)
        else:
            stats = [per_task[t][key] for t in tasks]
            means = [s["mean"] if s["mean"] is not None else np.nan for s in stats]
            low = [s["mean"] - s["min"] if s["mean"] is not None else 0 for s in stats]
            high = [s["max"] - s["mean"] if s["mean"] is not None else 0 for s in stats]
            axes.barh(y, means, xerr=[low, high], color="#4a6fa5", capsize=2)
        axes.set_yticks(y, tasks if column == 1 else [""] * len(tasks), fontsize=7)
        axes.set_title(label, fontsize=9)
        axes.invert_yaxis()
    return _png(figure)


def start_poses(poses: Mapping[str, Mapping[str, Any]]) -> bytes:
    """Each object's start x-y points over its coverage grid (occupied cells shaded)."""
    names = list(poses)
    cols = min(4, max(1, len(names)))
    rows = (len(names) + cols - 1) // cols or 1
    figure = Figure(figsize=(3 * cols, 3 * rows))
    for index, name in enumerate(names):
        axes = figure.add_subplot(rows, cols, index + 1)
        grid = poses[name]["coverage_map"]
        x0, y0 = grid["origin_xy"]
        side = grid["side_m"]
        counts = np.asarray(grid["counts"], dtype=float)
        axes.imshow(
            counts, origin="lower", extent=(x0, x0 + side, y0, y0 + side), cmap="Greens", alpha=0.6
        )
        xy = np.asarray(poses[name]["xy"], dtype=float)
        axes.scatter(xy[:, 0], xy[:, 1], s=10, color="black")
        axes.set_title(f"{name}: coverage {grid['coverage']:.2f}", fontsize=8)
        axes.tick_params(labelsize=6)
    return _png(figure)


def factor_histograms(factors: Mapping[str, Mapping[str, Any]]) -> bytes:
    """A histogram per randomised factor (at most 12, the widest-ranging first)."""
    chosen = sorted(factors, key=lambda k: factors[k]["max"] - factors[k]["min"], reverse=True)[:12]
    cols = 4
    rows = max(1, (len(chosen) + cols - 1) // cols)
    figure = Figure(figsize=(11, 2.2 * rows))
    for index, name in enumerate(chosen):
        axes = figure.add_subplot(rows, cols, index + 1)
        axes.hist(
            factors[name]["values"], bins=min(10, max(1, factors[name]["n"])), color="#4a6fa5"
        )
        axes.set_title(name, fontsize=7)
        axes.tick_params(labelsize=6)
    return _png(figure)


def embodiment_heatmap(embodiment: Mapping[str, Any]) -> bytes:
    """Success rate per task and robot; blank where a robot has no episode of the task."""
    tasks, robots = embodiment["tasks"], embodiment["robots"]
    values = np.full((len(tasks), len(robots)), np.nan)
    for i, task in enumerate(tasks):
        for j, robot in enumerate(robots):
            cell = embodiment["matrix"][task][robot]
            if cell is not None:
                values[i, j] = cell["success_rate"]
    figure = Figure(figsize=(2 + 1.2 * len(robots), 0.6 + 0.4 * max(1, len(tasks))))
    axes = figure.add_subplot()
    image = axes.imshow(values, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
    axes.set_xticks(range(len(robots)), robots, fontsize=8)
    axes.set_yticks(range(len(tasks)), tasks, fontsize=7)
    for i in range(len(tasks)):
        for j in range(len(robots)):
            if not np.isnan(values[i, j]):
                axes.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7)
    figure.colorbar(image, ax=axes, label="success rate")
    return _png(figure)


def finger_forces(forces: np.ndarray, fps: int, title: str) -> bytes:
    """The force magnitude on each finger over one episode."""
    figure = Figure(figsize=(7, 2.5))
    axes = figure.add_subplot()
    t = np.arange(forces.shape[0]) / fps
    for finger in range(forces.shape[1]):
        axes.plot(t, np.linalg.norm(forces[:, finger], axis=1), label=f"finger {finger}")
    axes.set_xlabel("time (s)")
    axes.set_ylabel("contact force (N)")
    axes.set_title(title, fontsize=8)
    axes.legend(fontsize=7)
    return _png(figure)
