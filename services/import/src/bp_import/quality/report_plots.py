"""The quality report's plots as PNG bytes, drawn with matplotlib's Agg canvas (no display).

Figures are built with the object API (`Figure` + `FigureCanvasAgg`), never `pyplot`, so no
global state is shared between threads or runs.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray

KEPT = "#2a7f62"
LEFT_OUT = "#c8553d"


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100, bbox_inches="tight")
    return out.getvalue()


def score_histogram(histogram: dict[str, Any], min_score: float) -> bytes:
    """Stacked histogram of quality scores, kept vs left out, with the threshold."""
    edges = np.asarray(histogram["edges"], dtype=float)
    kept = np.asarray(histogram["included"], dtype=float)
    left = np.asarray(histogram["excluded"], dtype=float)
    figure = Figure(figsize=(6, 3))
    axes = figure.add_subplot()
    widths = np.diff(edges)
    axes.bar(edges[:-1], kept, widths, align="edge", color=KEPT, label="in the dataset")
    axes.bar(edges[:-1], left, widths, bottom=kept, align="edge", color=LEFT_OUT, label="left out")
    axes.axvline(
        min_score, color="black", linestyle="--", linewidth=1, label=f"min score {min_score:g}"
    )
    axes.set_xlim(0, 1)
    axes.set_xlabel("quality score")
    axes.set_ylabel("episodes")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(loc="upper left", fontsize=8)
    return _png(figure)


def success_bars(rows: Sequence[dict[str, Any]], key: str, title: str) -> bytes:
    """Success rate per task or per object, with `succeeded/episodes` on each bar."""
    names = [str(r[key]) for r in rows] or ["(none)"]
    rates = [float(r["success_rate"]) for r in rows] or [0.0]
    figure = Figure(figsize=(6, 0.45 * len(names) + 1.2))
    axes = figure.add_subplot()
    positions = np.arange(len(names))
    axes.barh(positions, rates, color=KEPT)
    for y, row in zip(positions, rows, strict=False):
        axes.text(
            min(float(row["success_rate"]), 0.85) + 0.02,
            float(y),
            f"{row['succeeded']}/{row['episodes']}",
            va="center",
            fontsize=8,
        )
    axes.set_yticks(positions, [n if len(n) <= 32 else n[:30] + ".." for n in names], fontsize=8)
    axes.set_xlim(0, 1)
    axes.set_xlabel("success rate")
    axes.set_title(title, fontsize=10)
    axes.invert_yaxis()
    return _png(figure)


def trajectories(paths: Sequence[tuple[str, NDArray[np.float64]]]) -> bytes:
    """End-effector paths of a few episodes: seen from above, and height over time."""
    figure = Figure(figsize=(9, 3.4))
    top, side = figure.subplots(1, 2)
    for label, path in paths:
        line = top.plot(path[:, 0], path[:, 1], linewidth=1.2, label=label.lstrip("_")[-32:])[0]
        top.plot(path[0, 0], path[0, 1], "o", color=line.get_color(), markersize=3)
        side.plot(np.linspace(0, 1, len(path)), path[:, 2], color=line.get_color(), linewidth=1.2)
    top.set_xlabel("x (m)")
    top.set_ylabel("y (m)")
    top.set_aspect("equal", adjustable="datalim")
    top.set_title("end effector, from above (o: start)", fontsize=10)
    side.set_xlabel("fraction of the episode")
    side.set_ylabel("z (m)")
    side.set_title("end-effector height", fontsize=10)
    if paths:
        top.legend(fontsize=7, loc="best")
    return _png(figure)
