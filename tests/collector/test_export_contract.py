"""The collector reads what the export stage writes: its task kinds, predicates and nulls."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pytest
from bp_collector.demo_scenes import TABLE_TOP_Z, cabinet_scene
from bp_collector.episode import simulate_episode
from bp_collector.outcome import judge
from bp_collector.randomization import RandomizationRanges, draw_randomization
from bp_collector.recording import read_episode
from bp_collector.scene import SceneInputError, parse_scene_graph, parse_task_config
from bp_collector.world import WorldOptions, build_world

Scene = tuple[dict[str, Any], dict[str, Any]]


def _with_bowl(scene: Scene) -> Scene:
    graph, config = scene
    z = TABLE_TOP_Z
    lo, hi = [0.5, 0.02, z], [0.62, 0.14, z + 0.05]
    graph["nodes"].append(
        {
            "asset_id": "bowl",
            "semantic": "bowl",
            "size": [0.12, 0.12, 0.05],
            "pose": {"position": [0.56, 0.08, z + 0.025], "orientation": [1.0, 0.0, 0.0, 0.0]},
            "bbox": {"min": lo, "max": hi},
            "sim_role": "manipulable_object",
            "affordances": ["Graspable", "Containable"],
            "properties": {"mass": None, "friction": None},
            "is_static": False,
            "usd_path": "/World/Objects/obj_bowl",
            "articulation": None,
        }
    )
    config["tasks"].append(
        {
            "task_id": "cube_in_bowl",
            "kind": "place_in",
            "target": "cube",
            "destination": "bowl",
            "action": None,
            "goal_region": {"min": lo, "max": hi},
            "joint_goal": None,
            "success": {
                "predicate": "object_inside",
                "object": "cube",
                "container": "bowl",
                "tolerance": 0.02,
                "max_speed": 0.05,
            },
            "instructions": ["put the cube in the bowl"],
            "difficulty": {
                "level": "easy",
                "score": 0.2,
                "clutter": 1,
                "distance_m": 0.3,
                "smallest_extent_m": 0.05,
            },
        }
    )
    config["robots"].append({"robot": "ur5e", "base_pose": None, "tasks": []})
    return graph, config


def test_export_style_documents_parse_and_a_robot_without_a_base_pose_is_refused(
    table_scene: Scene,
) -> None:
    graph, config = _with_bowl(table_scene)
    parsed = parse_scene_graph(json.loads(json.dumps(graph)))
    assert parsed.node("bowl").properties.mass is None
    assert parsed.node("bowl").properties.mass_kg > 0
    tasks = parse_task_config(config)
    assert tasks.task("cube_in_bowl").moves_object
    with pytest.raises(SceneInputError, match="no base pose"):
        tasks.assignment("ur5e")


def test_place_in_drops_the_cube_into_the_bowl_without_touching_the_bowl(
    table_scene: Scene, tmp_path: Path
) -> None:
    graph, config = _with_bowl(table_scene)
    result = simulate_episode(
        graph, config, "franka_panda", "cube_in_bowl", 2, tmp_path / "ep", render=False
    )
    episode = read_episode(result.out_dir)
    states = episode.states()
    ids = episode.manifest["state"]["object_ids"]
    cube = states["object_position"][-1, ids.index("cube")]
    bowl = states["object_position"][-1, ids.index("bowl")]
    assert result.success, result.reason
    assert np.all(np.abs(cube[:2] - bowl[:2]) < 0.06 - 0.025)
    assert cube[2] < bowl[2] + 0.025 + 0.01  # Resting on the bowl's floor, not on its rim.
    assert result.collision_count == 0


def test_a_door_to_close_starts_open_and_is_closed(tmp_path: Path) -> None:
    graph, config = cabinet_scene()
    config["tasks"].append(
        {
            "task_id": "close_door",
            "kind": "open_close",
            "target": "cabinet",
            "action": "close",
            "joint_goal": {"joint": "door", "initial_value": 1.2, "value": 0.1},
            "success": {
                "predicate": "joint_at_most",
                "object": "cabinet",
                "joint": "door",
                "value": 0.1,
            },
            "instructions": ["close the cabinet door"],
            "difficulty": None,
        }
    )
    config["robots"][0]["tasks"].append("close_door")
    result = simulate_episode(
        graph, config, "franka_panda", "close_door", 0, tmp_path / "ep", render=False
    )
    episode = read_episode(result.out_dir)
    column = episode.manifest["state"]["articulation_joints"].index("cabinet/door")
    door = episode.states()["articulation_position"][:, column]
    assert door[0] == pytest.approx(1.2, abs=1e-6)
    assert result.success, result.reason
    assert door[-1] <= 0.1


def test_object_on_holds_for_a_cube_resting_on_the_table(table_scene: Scene) -> None:
    graph, config = table_scene
    config["tasks"].append(
        {
            "task_id": "cube_on_table",
            "kind": "stack",
            "target": "cube",
            "destination": "table",
            "goal_region": {"min": [0.3, -0.4, 0.75], "max": [1.0, 0.4, 0.9]},
            "success": {"predicate": "object_on", "object": "cube", "support": "table"},
        }
    )
    g, c = parse_scene_graph(graph), parse_task_config(config)
    task = c.task("cube_on_table")
    rand = draw_randomization(0, [], [], [], RandomizationRanges.none())
    world = build_world(g, c.assignment("franka_panda"), task, WorldOptions(cameras=()), rand)
    data = mujoco.MjData(world.model)
    mujoco.mj_resetDataKeyframe(world.model, data, 0)
    for _ in range(200):
        mujoco.mj_step(world.model, data)
    assert judge(world, g, data, task).success
    data.qpos[world.model.joint("node/cube/free").qposadr[0] + 2] += 0.2
    mujoco.mj_forward(world.model, data)
    outcome = judge(world, g, data, task)
    assert not outcome.success and outcome.reason == "object not on table"
