"""The quality report as one self-contained HTML page: gates, plots and frames inline (PNG)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bp_import.quality import report_plots

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f0f0f0; }
.pass { color: #1d6b3a; font-weight: bold; } .fail { color: #a3261b; font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.3em 0; }
"""


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _verdict(passed: bool) -> str:
    return '<span class="pass">pass</span>' if passed else '<span class="fail">fail</span>'


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return escape(str(value))


def report_html(
    document: dict[str, Any], paths: Sequence[tuple[str, NDArray[np.float64]]], contact_sheet: bytes
) -> str:
    """The page for one robot's `quality_report.json` document."""
    counts = document["counts"]
    settings = document["settings"]
    gates = _table(
        ["gate", "value", "threshold", "result"],
        [
            [escape(g["name"]), _fmt(g["value"]), _fmt(g["threshold"]), _verdict(g["passed"])]
            for g in document["gates"]
        ],
    )
    excluded = (
        _table(["reason", "episodes"], [[escape(k), v] for k, v in counts["excluded"].items()])
        if counts["excluded"]
        else "<p>none</p>"
    )
    episodes = _table(
        ["episode", "task", "frames", "success", "collisions", "score", "in dataset", "reason"],
        [
            [
                escape(str(e.get("episode_id") or e["source"])),
                _fmt(e.get("task_id")),
                _fmt(e.get("n_frames")),
                _fmt(e.get("success")),
                _fmt(e.get("collision_count")),
                _fmt((e.get("quality") or {}).get("score")),
                "yes" if e["included"] else "no",
                _fmt(e.get("message") or e.get("reason")),
            ]
            for e in document["episodes"]
        ],
    )
    dataset = document.get("dataset")
    written = (
        f"<p>LeRobot {escape(str(dataset['codebase_version']))}: "
        f"{dataset['episodes']} episodes, {dataset['frames']} frames.</p>"
        if dataset
        else "<p>No dataset was committed.</p>"
    )
    plots = [
        _img(
            report_plots.score_histogram(document["scores"]["histogram"], settings["min_score"]),
            "quality score histogram",
        ),
        _img(
            report_plots.success_bars(document["per_task"], "task", "success per task"),
            "success per task",
        ),
        _img(
            report_plots.success_bars(document["per_object"], "object", "success per object"),
            "success per object",
        ),
        _img(report_plots.trajectories(paths), "example end-effector trajectories"),
    ]
    title = f"Quality report: {document['scene_id']} / {document['robot']}"
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            f"<p>run {escape(document['run_id'])} · overall {_verdict(document['passed'])} · "
            f"{counts['episodes']} episodes found, {counts['valid']} valid, "
            f"{counts['succeeded']} succeeded, {counts['collision_free']} collision-free, "
            f"{counts['included']} in the dataset</p>",
            written,
            "<h2>Gates</h2>",
            gates,
            "<h2>Left out</h2>",
            excluded,
            "<h2>Scores</h2>",
            plots[0],
            "<h2>Success</h2>",
            plots[1],
            plots[2],
            "<h2>Example trajectories</h2>",
            plots[3],
            "<h2>Camera frames</h2>",
            _img(contact_sheet, "contact sheet"),
            "<h2>Episodes</h2>",
            episodes,
            "<h2>Settings</h2>",
            _table(["setting", "value"], [[escape(k), _fmt(v)] for k, v in settings.items()]),
            "</body></html>",
            "",
        ]
    )
