"""Export writes each scene's tasks in Genie Sim's own task-config format, validated, beside its
other outputs and named in its export manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from bp_export.export import export_manifest, export_scene
from bp_export.tasks.genie_sim import read_genie_sim_task
from pydantic import ValidationError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def exported(scene: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    result = export_scene(
        EXAMPLES / scene / "scene.usda", scene, environment="local", require_embeddings=False
    )
    manifest = json.loads(export_manifest(result, source={}, pipeline_version="test"))
    genie = result.files["genie_sim_tasks.json"]
    listed = manifest["files"]["genie_sim_tasks.json"]
    assert listed["sha256"] == hashlib.sha256(genie).hexdigest()
    return json.loads(genie), json.loads(result.files["task_config.json"]), manifest


def test_every_kept_pick_and_place_task_becomes_a_valid_genie_sim_task_config() -> None:
    genie, tasks, manifest = exported("kitchen_table")
    assert {"scene_graph.json", "task_config.json", "asset_index.json"} <= set(manifest["files"])
    kept = {(t, r["robot"]) for r in tasks["robots"] for t in r["tasks"]}
    assert {f"{t}_{r}" for t, r in kept} == set(genie["tasks"])
    specs = {t["task_id"]: t for t in tasks["tasks"]}
    bases = {r["robot"]: r["base_pose"] for r in tasks["robots"]}
    for task_id, robot in sorted(kept):
        config = read_genie_sim_task(genie["tasks"][f"{task_id}_{robot}"])
        spec = specs[task_id]
        assert [s.action for s in config.stages] == ["pick", "place", "reset"]
        assert config.stages[0].passive.object_id == spec["target"]
        assert config.robot.robot_cfg == f"{robot}.json"
        assert list(config.robot.robot_init_pose.position) == bases[robot]["position"]
        goal = config.scene.function_space_objects["goal_region"]
        assert list(goal.position) == pytest.approx(  # type: ignore[union-attr]
            [(lo + hi) / 2 for lo, hi in zip(*spec["goal_region"].values(), strict=True)]
        )
        assert config.task_metric.filter_rules[0].params.objects == (spec["target"],)
        assert config.task_description.english_task_name == spec["instructions"][0]


def test_open_and_close_tasks_are_named_as_not_expressible_with_the_reason() -> None:
    genie, tasks, _ = exported("cabinet")
    kinds = {t["task_id"]: t["kind"] for t in tasks["tasks"]}
    kept = [(t, r["robot"]) for r in tasks["robots"] for t in r["tasks"]]
    opened = [(t, r) for t, r in kept if kinds[t] == "open_close"]
    assert opened, "the cabinet scene affords open/close tasks"
    assert {(e["task_id"], e["robot"]) for e in genie["not_expressible"]} == set(opened)
    assert all("no open or close" in e["reason"] for e in genie["not_expressible"])


def test_a_config_that_breaks_the_guide_is_refused() -> None:
    genie, _, _ = exported("kitchen_table")
    document = next(iter(genie["tasks"].values()))
    for broken in (
        {**document, "stages": []},
        {**document, "stages": [{**document["stages"][0], "action": "open"}]},
        {**document, "robot": {**document["robot"], "arm": "both"}},
        {**document, "surprise": 1},
    ):
        with pytest.raises(ValidationError):
            read_genie_sim_task(broken)
