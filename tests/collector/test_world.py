"""The MuJoCo world reflects the scene graph: sizes, masses, friction, joints, robot, cameras."""

from __future__ import annotations

import math
from typing import Any

import mujoco
import numpy as np
import pytest
from bp_collector.demo_scenes import cabinet_scene
from bp_collector.mujoco.randomization import RandomizationRanges, draw_randomization
from bp_collector.mujoco.world import World, WorldOptions, build_world
from bp_common.errors import InvalidInput
from bp_scene_contract import InvalidSceneDocument, read_scene_graph, read_task_config


def _build(
    graph: dict[str, Any],
    config: dict[str, Any],
    task_id: str,
    robot: str = "franka_panda",
    seed: int = 0,
    **options: Any,
) -> World:
    g, c = read_scene_graph(graph), read_task_config(config)
    rand = draw_randomization(seed, [], [], [], RandomizationRanges.none())
    return build_world(g, c.assignment(robot), c.task(task_id), WorldOptions(**options), rand)


def test_free_objects_take_size_mass_and_friction_from_the_graph(
    table_scene: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    graph, config = table_scene
    cube = next(n for n in graph["nodes"] if n["asset_id"] == "cube")
    cube["properties"] = {"mass": 0.37, "friction": 0.55}
    world = _build(graph, config, "pick_place_cube")
    model = world.model
    body = model.body("node/cube")
    geom = model.geom("node/cube/geom")
    assert math.isclose(float(model.body_mass[body.id]), 0.37, rel_tol=1e-9)
    assert np.allclose(model.geom_size[geom.id], [0.025, 0.025, 0.025])
    assert math.isclose(float(model.geom_friction[geom.id][0]), 0.55)
    assert model.jnt_type[model.body_jntadr[body.id]] == mujoco.mjtJoint.mjJNT_FREE
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    mujoco.mj_forward(model, data)
    assert np.allclose(data.xpos[body.id], [0.45, -0.18, 0.776], atol=1e-6)
    # The can is round: an upright cylinder of the box's width.
    can = model.geom(model.body("node/can").geomadr[0])
    assert model.geom_type[can.id] == mujoco.mjtGeom.mjGEOM_CYLINDER
    assert np.allclose(model.geom_size[can.id][:2], [0.03, 0.05])


def test_static_nodes_are_fixed_and_the_robot_stands_at_its_base_pose(
    table_scene: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    graph, config = table_scene
    config["robots"][0]["base_pose"] = {
        "position": [0.05, 0.1, 0.75],
        "orientation": [math.cos(0.2), 0, 0, math.sin(0.2)],
    }
    world = _build(graph, config, "pick_place_cube")
    model = world.model
    table = model.body("node/table")
    assert model.body_jntnum[table.id] == 0 and model.body_weldid[table.id] == 0
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    base = model.body(world.robot.base_body).id
    assert np.allclose(data.xpos[base], [0.05, 0.1, 0.75])
    assert np.allclose(data.xquat[base], [math.cos(0.2), 0, 0, math.sin(0.2)])
    assert model.site(world.robot.ee_site).name == "robot/ee"
    assert len(world.robot.arm_actuators) == 7
    assert all(
        model.actuator_biastype[model.actuator(a).id] == mujoco.mjtBias.mjBIAS_AFFINE
        for a in world.robot.arm_actuators
    )  # Joint position servos.


def test_articulated_parts_get_limited_hinge_and_slide_joints_with_handles() -> None:
    graph, config = cabinet_scene()
    world = _build(graph, config, "open_drawer")
    model = world.model
    drawer = world.parts[("cabinet", "drawer")]
    door = world.parts[("cabinet", "door")]
    j_drawer, j_door = model.joint(drawer.mj_joint), model.joint(door.mj_joint)
    assert model.jnt_type[j_drawer.id] == mujoco.mjtJoint.mjJNT_SLIDE
    assert model.jnt_type[j_door.id] == mujoco.mjtJoint.mjJNT_HINGE
    assert np.allclose(model.jnt_range[j_drawer.id], [0.0, 0.3])
    assert np.allclose(model.jnt_range[j_door.id], [0.0, 1.8])
    assert model.jnt_limited[j_drawer.id] and model.jnt_limited[j_door.id]
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    assert np.allclose(data.xanchor[j_door.id], [0.65, 0.23, 0.5])
    assert drawer.outward == (-1.0, 0.0, 0.0)  # The open side faces the robot.
    assert data.geom_xpos[model.geom(drawer.handle_geom).id][0] < 0.65


def test_timestep_divides_the_frame_period_and_cameras_exist(
    table_scene: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    graph, config = table_scene
    world = _build(graph, config, "pick_place_cube", cameras=("wrist", "overhead", "front"), fps=30)
    assert math.isclose(world.model.opt.timestep * world.substeps, 1 / 30, rel_tol=1e-12)
    for camera in ("wrist", "overhead", "front"):
        assert world.model.camera(world.camera_name(camera)).id >= 0
    wrist = world.model.camera("cam/wrist")
    assert world.model.cam_bodyid[wrist.id] == world.model.body(world.robot.hand_body).id


def test_randomisation_is_seeded() -> None:
    a = draw_randomization(5, ["cube"], ["cube", "table"], ["overhead"])
    b = draw_randomization(5, ["cube"], ["cube", "table"], ["overhead"])
    c = draw_randomization(6, ["cube"], ["cube", "table"], ["overhead"])
    assert a == b and a != c
    assert abs(a.object_jitter("cube").dx) <= 0.02


def test_what_the_world_cannot_build_is_a_permanent_error_that_names_it(
    table_scene: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    graph, config = table_scene
    with pytest.raises(InvalidInput, match="unknown camera 'thermal'") as camera:
        _build(graph, config, "pick_place_cube", cameras=("thermal",))
    assert camera.value.permanent
    config["robots"][0]["base_pose"] = None
    with pytest.raises(InvalidSceneDocument, match="no base pose") as pose:
        _build(graph, config, "pick_place_cube")
    assert pose.value.context == {"scene_id": "demo_tabletop", "robot": "franka_panda"}
