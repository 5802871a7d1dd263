"""The analytics document as one self-contained HTML page, plots inline as PNG."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from bp_import.analytics import plots
from bp_import.analytics.document import ForceTrace
from bp_import.quality.report_page import _STYLE, _fmt, _img, _table


def _mean(stat: Mapping[str, Any]) -> str:
    return _fmt(stat["mean"])


def _scales(scales: str | Mapping[str, Any]) -> str:
    if isinstance(scales, str):
        return scales
    return "; ".join(f"{k}: {v['min']:g} .. {v['max']:g}" for k, v in scales.items())


def analytics_html(document: Mapping[str, Any], trace: ForceTrace | None) -> str:
    """The page for one robot's `analytics.json`, with `trace` plotted when there is one."""
    robot = escape(document["robot"])
    per_task = document["trajectory"]["per_task"]
    coverage = document["coverage"]
    embodiment = document["embodiment"]
    language = document["language"]
    sim = document["sim_to_real"]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Analytics: {robot}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Dataset analytics: {robot}</h1>",
        f"<p>Scene {escape(document['scene_id'])}, run {escape(document['run_id'])}: "
        f"{document['episodes']['valid']} valid episodes, {document['episodes']['in_dataset']} "
        "in the dataset. Every number is computed from the recorded episodes; definitions in "
        "docs/quality-metrics.md.</p>",
        "<h2>Trajectory quality per task</h2>",
        _table(
            [
                "task",
                "episodes",
                "success",
                "path (m)",
                "carry optimality",
                "time to success (s)",
                "idle (s)",
                "joint jerk (rad/s³)",
                "ee jerk (m/s³)",
                "min margin (rad)",
            ],
            [
                [
                    escape(task),
                    row["episodes"],
                    _fmt(row["success_rate"]),
                    _mean(row["path_length_m"]),
                    _mean(row["carry_optimality"]),
                    _mean(row["time_to_success_s"]),
                    _mean(row["idle_time_s"]),
                    _mean(row["joint_jerk_rms_rad_s3"]),
                    _mean(row["ee_jerk_rms_m_s3"]),
                    _mean(row["min_joint_margin_rad"]),
                ]
                for task, row in per_task.items()
            ],
        ),
        _img(plots.task_measures(per_task), "per-task measures") if per_task else "",
        "<h2>Embodiment transfer</h2>",
        _img(plots.embodiment_heatmap(embodiment), "success per task and robot")
        if embodiment["tasks"]
        else "",
        _table(
            ["task", "robots that attempt it", "robots that do it"],
            [
                [
                    escape(task),
                    escape(
                        ", ".join(
                            embodiment["attempted_by_only_some"].get(task, embodiment["robots"])
                        )
                    ),
                    escape(
                        ", ".join(embodiment["done_by_only_some"].get(task, []))
                        or "every robot that attempts it, or none"
                    ),
                ]
                for task in sorted(
                    {*embodiment["attempted_by_only_some"], *embodiment["done_by_only_some"]}
                )
            ],
        ),
        "<h2>Generalisation coverage</h2>",
        f"<p>Diversity score <b>{coverage['diversity']['score']:.3f}</b>: "
        f"{escape(coverage['diversity']['formula'])}.</p>",
        _img(plots.start_poses(coverage["object_start_poses"]), "object start poses")
        if coverage["object_start_poses"]
        else "",
        f"<p>Object scales: {escape(_scales(coverage['object_scales']))}</p>",
    ]
    factors = {**coverage["lighting"], **coverage["colours"], **coverage["camera_jitter"]}
    if factors:
        parts.append(_img(plots.factor_histograms(factors), "lighting, colour and camera jitter"))
    parts += [
        "<h2>Language annotations</h2>",
        _table(
            ["task", "instructions", "episodes per instruction"],
            [
                [
                    escape(task),
                    row["count"],
                    "<br>".join(
                        f"{escape(line)}: {n}"
                        for line, n in row["episodes_per_instruction"].items()
                    ),
                ]
                for task, row in language["tasks"].items()
            ],
        ),
        "<h2>Contact forces</h2>",
        f"<p>Feature: {escape(document['contact']['feature'] or 'not in this dataset')}; recorded "
        f"in {document['contact']['recorded']} of {document['contact']['of']} episodes.</p>",
    ]
    if trace is not None:
        parts.append(
            _img(plots.finger_forces(trace.forces, trace.fps, trace.episode_id), "finger forces")
        )
    parts += [
        "<h2>Sim-to-real</h2>",
        _table(
            ["variation", "simulated here", "real range", "basis"],
            [
                [
                    escape(row["variation"]),
                    escape(
                        f"{row['simulated']['min']:g} .. {row['simulated']['max']:g} {row['unit']}"
                    )
                    if "min" in row["simulated"]
                    else escape(row["simulated"]["note"]),
                    escape(row["real"]),
                    escape(row["basis"]),
                ]
                for row in sim["ranges"]
            ],
        ),
        "<p>Not modelled:</p><ul>"
        + "".join(f"<li>{escape(n)}</li>" for n in sim["not_modelled"])
        + "</ul>",
        "</body></html>",
    ]
    return "\n".join(parts)
