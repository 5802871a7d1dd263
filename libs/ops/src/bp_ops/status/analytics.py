"""Dataset analytics and the learnability leaderboard, as the status page reads them.

Import writes each robot's `analytics/analytics.json` (and `.html`) inside its dataset under
`runs/{scene}/{run}/lerobot/{robot}/`; the learnability check (`bp learnability`) writes one
result per robot and run under `learnability/{scene}/{run}/{robot}.json`, apart from the run's
files so that the leaderboard lists one small prefix rather than every episode file.
"""

from __future__ import annotations

import json
from typing import Any

from bp_common.blobstore.base import BlobStore
from bp_common.errors import NotFound
from bp_common.ledger import RunRecord

from bp_ops.status.overview import robots_of, validate_robot

LEARNABILITY_PREFIX = "learnability/"


def analytics_key(run: RunRecord, robot: str, name: str = "analytics.json") -> str:
    robot = validate_robot(robot)
    return f"runs/{run.scene_id}/{run.run_id}/lerobot/{robot}/analytics/{name}"


def learnability_key(scene_id: str, run_id: str, robot: str) -> str:
    return f"{LEARNABILITY_PREFIX}{scene_id}/{run_id}/{validate_robot(robot)}.json"


def _json(blobs: BlobStore, key: str) -> dict[str, Any] | None:
    try:
        document = json.loads(blobs.read_bytes(key))
    except (NotFound, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _mean(stat: Any) -> float | None:
    return stat.get("mean") if isinstance(stat, dict) else None


def dataset_panel(blobs: BlobStore, run: RunRecord, robot: str) -> dict[str, Any] | None:
    """One dataset's headline analytics, or None when import wrote none for it."""
    document = _json(blobs, analytics_key(run, robot))
    if document is None:
        return None
    tasks = document.get("trajectory", {}).get("per_task_in_dataset", {})
    rows = [
        {
            "task": task,
            "episodes": row.get("episodes"),
            "success_rate": row.get("success_rate"),
            "carry_optimality": _mean(row.get("carry_optimality")),
            "time_to_success_s": _mean(row.get("time_to_success_s")),
            "idle_time_s": _mean(row.get("idle_time_s")),
        }
        for task, row in sorted(tasks.items())
    ]
    coverage = document.get("coverage", {})
    language = document.get("language", {})
    return {
        "robot": robot,
        "episodes": document.get("episodes", {}),
        "tasks": rows,
        "diversity": coverage.get("diversity", {}).get("score"),
        "instructions": language.get("instructions_total"),
        "contact_feature": document.get("contact", {}).get("feature"),
        "only_some_robots": sorted(
            {
                *document.get("embodiment", {}).get("done_by_only_some", {}),
                *document.get("embodiment", {}).get("attempted_by_only_some", {}),
            }
        ),
        "learnability": _json(blobs, learnability_key(run.scene_id, run.run_id, robot)),
        "page": f"/runs/{run.run_id}/analytics/{robot}",
    }


def dataset_panels(blobs: BlobStore, run: RunRecord) -> list[dict[str, Any]]:
    return [p for robot in robots_of(run) if (p := dataset_panel(blobs, run, robot)) is not None]


def leaderboard(blobs: BlobStore, limit: int = 200) -> list[dict[str, Any]]:
    """Every learnability result, best first: success rate, then fewer training episodes."""
    rows: list[dict[str, Any]] = []
    for blob in blobs.list(LEARNABILITY_PREFIX):
        parts = blob.key[len(LEARNABILITY_PREFIX) :].split("/")
        if len(parts) != 3 or not parts[2].endswith(".json"):
            continue
        result = _json(blobs, blob.key)
        if result is None or result.get("shuffled_actions"):
            continue
        rows.append(
            {
                "scene_id": parts[0],
                "run_id": parts[1],
                "robot": parts[2][: -len(".json")],
                "success_rate": float(result.get("success_rate", 0.0)),
                "successes": result.get("successes"),
                "evaluations": result.get("evaluations"),
                "training_episodes": result.get("training_episodes"),
                "tasks": [t.get("task_id") for t in result.get("tasks", [])],
                "policy": result.get("policy"),
            }
        )
    rows.sort(
        key=lambda r: (-float(r["success_rate"]), int(r["training_episodes"] or 0), r["run_id"])
    )
    return rows[:limit]
