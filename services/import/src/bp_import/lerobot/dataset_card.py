"""The dataset card (README.md) of a LeRobot dataset: Hub front matter, summary, features."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def dataset_card(
    info: Mapping[str, Any],
    tasks: Sequence[str],
    *,
    license_id: str = "other",
    ground_truth_path: str | None = None,
    provenance: Mapping[str, str] | None = None,
    max_tasks_listed: int = 50,
) -> str:
    """Markdown with YAML front matter the Hugging Face Hub reads (licence, tags, data files)."""
    data_glob = "data/*/*.parquet"
    features: Mapping[str, Mapping[str, Any]] = info["features"]
    lines = [
        "---",
        f"license: {license_id}",
        "task_categories:",
        "- robotics",
        "tags:",
        "- LeRobot",
        "- simulation",
        f"- {info['robot_type']}",
        "configs:",
        "- config_name: default",
        "  data_files:",
        "  - split: train",
        f"    path: {data_glob}",
        "---",
        "",
        f"# {info['robot_type']} simulated episodes",
        "",
        "Episodes recorded in simulation by BlueprintPipeline and written as a LeRobot dataset "
        f"(codebase {info['codebase_version']}).",
        "",
        f"- Robot: `{info['robot_type']}`",
        f"- Episodes: {info['total_episodes']}, frames: {info['total_frames']}, fps: {info['fps']}",
        f"- Tasks: {info['total_tasks']}",
    ]
    videos = {k: f for k, f in features.items() if f["dtype"] == "video"}
    if videos:
        codec = next(iter(videos.values()))["info"]["video.codec"]
        lines.append(f"- Cameras: {', '.join(f'`{k}`' for k in videos)} ({codec}, yuv420p)")
    if ground_truth_path:
        lines.append(
            f"- Ground truth (depth, segmentation, 2D boxes, camera poses): "
            f"`{ground_truth_path}`, described by its `ground_truth.json`"
        )
    lines += ["", "## Features", "", "| feature | dtype | shape | names |", "|---|---|---|---|"]
    for key, feature in features.items():
        names = feature.get("names")
        shown = ", ".join(map(str, names)) if isinstance(names, list) else ""
        lines.append(f"| `{key}` | {feature['dtype']} | {feature['shape']} | {shown} |")
    lines += ["", "## Tasks", ""]
    lines += [f"{i}. {task}" for i, task in enumerate(tasks[:max_tasks_listed])]
    if len(tasks) > max_tasks_listed:
        lines.append(f"... and {len(tasks) - max_tasks_listed} more in `meta/tasks`.")
    if provenance:
        lines += ["", "## Provenance", ""]
        lines += [f"- {key}: {value}" for key, value in provenance.items()]
    lines += ["", "## meta/info.json", "", "```json", json.dumps(info, indent=2), "```", ""]
    return "\n".join(lines)
