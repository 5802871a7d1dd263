"""Robot placement: base poses clear of the scene, facing the work, reaching every kept task."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from bp_export.tasks.kinematics import forward_kinematics, solve_ik
from bp_export.tasks.layout import SceneLayout, build_layout
from bp_export.tasks.planning import PlannedTask, generate_tasks, plan_tasks
from bp_export.tasks.reach import (
    BasePose,
    ReachTarget,
    RobotPlacement,
    place_robot,
    target_in_base_frame,
)
from bp_export.tasks.robots import ROBOT_NAMES, get_robot
from bp_scene_contract import read_scene_graph

from tests.export import task_scenes as scenes


def _plan(scene: dict[str, Any]) -> tuple[SceneLayout, list[PlannedTask]]:
    layout = build_layout(read_scene_graph(scene))
    return layout, plan_tasks(layout)


@pytest.fixture(scope="module")
def kitchen_plan() -> tuple[SceneLayout, list[PlannedTask]]:
    return _plan(scenes.kitchen_table())


@pytest.fixture(scope="module")
def placements(kitchen_plan: tuple[SceneLayout, list[PlannedTask]]) -> dict[str, RobotPlacement]:
    layout, planned = kitchen_plan
    return {
        name: place_robot(get_robot(name), layout, [p.requirements for p in planned])
        for name in ROBOT_NAMES
    }


def _world_tcp(pose: BasePose, q: tuple[float, ...], name: str) -> np.ndarray:
    return np.asarray(pose.transform() @ forward_kinematics(get_robot(name).chain, q))


@pytest.mark.parametrize("name", ROBOT_NAMES)
def test_every_kept_target_is_reached_top_down_from_the_base_pose(
    name: str,
    kitchen_plan: tuple[SceneLayout, list[PlannedTask]],
    placements: dict[str, RobotPlacement],
) -> None:
    _, planned = kitchen_plan
    placement = placements[name]
    assert placement.kept, f"{name} keeps no kitchen task"
    assert placement.base_pose is not None
    robot = get_robot(name)
    by_id = {p.spec.task_id: p for p in planned}
    for task_id in placement.kept:
        for target in by_id[task_id].requirements.targets:
            solution = solve_ik(
                robot.chain, target_in_base_frame(placement.base_pose, target), seeds=[robot.home]
            )
            assert solution.success, (task_id, target.label)
            assert robot.chain.within_limits(solution.q)
            tcp = _world_tcp(placement.base_pose, solution.q, name)
            np.testing.assert_allclose(tcp[:3, 3], target.position, atol=0.006)
            assert tcp[:3, 2] @ np.array([0.0, 0.0, -1.0]) > math.cos(0.035)


@pytest.mark.parametrize("name", ROBOT_NAMES)
def test_base_stands_clear_of_every_object_and_faces_the_table(
    name: str,
    kitchen_plan: tuple[SceneLayout, list[PlannedTask]],
    placements: dict[str, RobotPlacement],
) -> None:
    layout, _ = kitchen_plan
    pose = placements[name].base_pose
    assert pose is not None
    robot = get_robot(name)
    x, y, z = pose.position
    assert z >= layout.floor_z
    for node in layout.graph.nodes:
        if node.asset_id == "floor":
            continue
        assert node.bbox.distance_xy_to_point(x, y) >= robot.footprint_radius, node.asset_id
    table = layout.node("table_01").bbox.centre
    facing = np.array([math.cos(pose.yaw), math.sin(pose.yaw)])
    to_table = np.array([table[0] - x, table[1] - y])
    assert facing @ to_table / np.linalg.norm(to_table) > math.cos(math.radians(45))
    w, qx, qy, qz = pose.orientation
    assert qx == qy == 0.0 and math.isclose(w * w + qz * qz, 1.0)


def test_pedestal_arms_stand_near_table_height_and_fetch_on_the_floor(
    placements: dict[str, RobotPlacement],
) -> None:
    panda, fetch = placements["franka_panda"].base_pose, placements["fetch"].base_pose
    assert panda is not None and fetch is not None
    assert scenes.TABLE_TOP - 0.1 < panda.position[2] <= scenes.TABLE_TOP
    assert fetch.position[2] == 0.0


def test_an_object_on_a_far_table_is_dropped_with_its_reason() -> None:
    config = generate_tasks(scenes.far_side_table(), ["franka_panda", "ur5e"])
    cube_tasks = {t["task_id"] for t in config["tasks"] if t["target"] == "cube_01"}
    near_moves = {
        t["task_id"]
        for t in config["tasks"]
        if t["target"] in ("mug_01", "apple_01") and t["destination"] == "table_01"
    }
    assert cube_tasks and near_moves
    for robot in config["robots"]:
        kept = set(robot["tasks"])
        assert near_moves <= kept
        assert not cube_tasks & kept
        reasons = {
            d["task_id"]: d["reason"] for d in config["dropped"] if d["robot"] == robot["robot"]
        }
        for task_id in cube_tasks:
            assert "reach" in reasons[task_id]
            assert robot["robot"] in reasons[task_id]


def test_a_heavy_object_is_dropped_for_the_panda_but_kept_for_the_ur5e() -> None:
    anvil = scenes.item_on(
        "anvil_01", "small_anvil", (0.0, 0.0), scenes.TABLE_TOP, (0.06, 0.06, 0.06), mass=4.0
    )
    scene = scenes.scene("anvil", [scenes.floor(), scenes.table(), anvil], [])
    config = generate_tasks(scene, ["franka_panda", "ur5e"])
    (task,) = config["tasks"]
    panda, ur5e = config["robots"]
    assert panda["tasks"] == [] and ur5e["tasks"] == [task["task_id"]]
    (dropped,) = config["dropped"]
    assert dropped["robot"] == "franka_panda"
    assert "4.0 kg" in dropped["reason"] and "payload" in dropped["reason"]


def test_the_base_avoids_a_cabinet_standing_beside_the_table() -> None:
    cabinet = scenes.node(
        "cabinet_01", "cabinet", (-0.6, -1.1, 0.0), (0.6, -0.45, 0.9),
        role="static", affordances=(), static=True,
    )  # fmt: skip
    mug = scenes.item_on("mug_01", "mug", (0.0, -0.1), scenes.TABLE_TOP, (0.07, 0.07, 0.1))
    scene = scenes.scene("blocked_side", [scenes.floor(), scenes.table(), cabinet, mug], [])
    config = generate_tasks(scene, ["franka_panda"])
    (panda,) = config["robots"]
    assert panda["tasks"]
    x, y, _ = panda["base_pose"]["position"]
    cabinet_box = read_scene_graph(scene).node("cabinet_01").bbox
    assert cabinet_box.distance_xy_to_point(x, y) >= get_robot("franka_panda").footprint_radius


def test_a_grip_with_a_closing_line_asks_the_ik_for_the_whole_hand_frame() -> None:
    """Across a handle's bar the hand's roll matters: the target carries the full frame the
    collector's expert holds (z the approach, y the closing line), seen from the robot."""
    pose = BasePose((1.0, 0.0, 0.0), math.pi / 2)
    free = target_in_base_frame(pose, ReachTarget("grip", (1.0, 0.5, 0.8), (0.0, 1.0, 0.0)))
    assert free.rotation is None and free.approach is not None
    held = target_in_base_frame(
        pose, ReachTarget("grip", (1.0, 0.5, 0.8), (0.0, 1.0, 0.0), True, (1.0, 0.0, 0.0))
    )
    assert held.rotation is not None and held.approach is None
    # The base is turned a quarter about z: world +y is its +x, world +x its -y.
    np.testing.assert_allclose(held.rotation[:, 2], [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(held.rotation[:, 1], [0.0, -1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(held.rotation @ held.rotation.T, np.eye(3), atol=1e-12)
