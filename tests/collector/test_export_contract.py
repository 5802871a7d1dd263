"""The collector reads what the export stage writes, and judges it by the scene contract's rule.

Tasks that export plans as feasible for the sample scenes are judged with the collector's own
world and observation: done with the object at rest at its goal (or the joint at its goal),
not done at the start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pytest
from bp_collector.backend import Capabilities
from bp_collector.demo_scenes import TABLE_TOP_Z, cabinet_scene
from bp_collector.jobs.runner import EpisodeDefaults
from bp_collector.mujoco.backend import MujocoBackend
from bp_collector.mujoco.episode import set_initial_joint, simulate_episode
from bp_collector.mujoco.observation import observe
from bp_collector.mujoco.randomization import RandomizationRanges, draw_randomization
from bp_collector.mujoco.recording import read_episode
from bp_collector.mujoco.world import DEFAULT_MASS_KG, World, WorldOptions, build_world
from bp_collector.service.servicer import InvalidRequest, Limits, plan_episodes
from bp_collector_api import collector_pb2 as pb
from bp_export.export import export_scene
from bp_scene_contract import (
    RobotAssignment,
    SceneGraph,
    TaskConfig,
    TaskSpec,
    judge,
    read_scene_graph,
    read_task_config,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DIFFICULTY = {
    "level": "easy",
    "score": 0.2,
    "clutter": 1,
    "distance_m": 0.3,
    "smallest_extent_m": 0.05,
}

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
            "difficulty": DIFFICULTY,
        }
    )
    config["robots"].append({"robot": "ur5e", "base_pose": None, "tasks": []})
    return graph, config


def _world(graph: SceneGraph, assignment: RobotAssignment, task: TaskSpec) -> World:
    rand = draw_randomization(0, [], [], [], RandomizationRanges.none())
    return build_world(graph, assignment, task, WorldOptions(cameras=()), rand)


def _offer() -> Capabilities:
    return MujocoBackend().capabilities()


def test_export_style_documents_are_read_and_a_robot_without_a_base_pose_is_refused(
    table_scene: Scene,
) -> None:
    graph, config = _with_bowl(table_scene)
    g, c = read_scene_graph(graph), read_task_config(config)
    assert g.node("bowl").properties.mass is None
    world = _world(g, c.assignment("franka_panda"), c.task("cube_in_bowl"))
    bowl = world.model.body("node/bowl").id
    assert float(world.model.body_mass[bowl]) == pytest.approx(DEFAULT_MASS_KG)
    request = pb.StartCollectionRequest(
        job_key="bowl",
        robot="ur5e",
        scene_graph_json=g.model_dump_json().encode(),
        task_config_json=c.model_dump_json().encode(),
        task_ids=["cube_in_bowl"],
        episodes_per_task=1,
    )
    with pytest.raises(InvalidRequest, match="no base pose"):
        plan_episodes(request, _offer(), Limits(), EpisodeDefaults())


def test_place_in_drops_the_cube_into_the_bowl_without_touching_the_bowl(
    table_scene: Scene, tmp_path: Path
) -> None:
    graph, config = _with_bowl(table_scene)
    result = simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        "franka_panda",
        "cube_in_bowl",
        2,
        tmp_path / "ep",
        render=False,
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
            "difficulty": DIFFICULTY,
        }
    )
    config["robots"][0]["tasks"].append("close_door")
    result = simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        "franka_panda",
        "close_door",
        0,
        tmp_path / "ep",
        render=False,
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
            "instructions": ["put the cube on the table"],
            "difficulty": DIFFICULTY,
        }
    )
    g, c = read_scene_graph(graph), read_task_config(config)
    task = c.task("cube_on_table")
    world = _world(g, c.assignment("franka_panda"), task)
    data = mujoco.MjData(world.model)
    mujoco.mj_resetDataKeyframe(world.model, data, 0)
    for _ in range(200):
        mujoco.mj_step(world.model, data)
    assert judge(task.success, observe(world, g, data)).success
    data.qpos[world.model.joint("node/cube/free").qposadr[0] + 2] += 0.2
    mujoco.mj_forward(world.model, data)
    outcome = judge(task.success, observe(world, g, data))
    assert not outcome.success and outcome.reason == "object not on table"


@pytest.fixture(scope="module", params=["kitchen_table", "cabinet"])
def sample_export(request: pytest.FixtureRequest) -> tuple[SceneGraph, TaskConfig]:
    """What export writes for a sample scene, read as the collector reads it."""
    scene: str = request.param
    export = export_scene(
        EXAMPLES / scene / "scene.usda", scene, environment="local", require_embeddings=False
    )
    return (
        read_scene_graph(export.files["scene_graph.json"]),
        read_task_config(export.files["task_config.json"]),
    )


def _at_goal(world: World, task: TaskSpec, data: mujoco.MjData) -> None:
    """The task done: its object at rest standing on the floor of its goal region, at the
    region's centre, or its joint at the goal value."""
    if task.moves_object:
        assert task.goal_region is not None
        obj = world.free_objects[task.target]
        x, y, _ = task.goal_region.centre
        z = task.goal_region.min[2] + obj.half_extents[2]
        adr = world.model.joint(f"{obj.body}/free").qposadr[0]
        data.qpos[adr : adr + 7] = [x, y, z, 1.0, 0.0, 0.0, 0.0]
    else:
        assert task.joint_goal is not None
        part = world.parts[(task.target, task.joint_goal.joint)]
        data.qpos[world.model.joint(part.mj_joint).qposadr[0]] = task.joint_goal.value
    data.qvel[:] = 0.0
    mujoco.mj_forward(world.model, data)


def test_every_task_export_plans_as_feasible_is_done_at_its_goal_and_not_at_its_start(
    sample_export: tuple[SceneGraph, TaskConfig],
) -> None:
    graph, config = sample_export
    kept = [(assignment, config.task(t)) for assignment in config.robots for t in assignment.tasks]
    assert kept, "export planned nothing feasible for a sample scene"
    for assignment, task in kept:
        world = _world(graph, assignment, task)
        data = mujoco.MjData(world.model)
        mujoco.mj_resetDataKeyframe(world.model, data, 0)
        set_initial_joint(world, task, data)
        mujoco.mj_forward(world.model, data)
        at_start = judge(task.success, observe(world, graph, data))
        assert not at_start.success, (assignment.robot, task.task_id, at_start)
        _at_goal(world, task, data)
        at_goal = judge(task.success, observe(world, graph, data))
        assert at_goal.success, (assignment.robot, task.task_id, at_goal)
