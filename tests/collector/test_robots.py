"""Robot models match their published kinematics, and the expert completes tasks with them."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest
from bp_collector.demo_scenes import cabinet_scene, tabletop_scene
from bp_collector.mujoco.episode import simulate_episode
from bp_collector.mujoco.recording import read_episode
from bp_collector.mujoco.robots import RobotHandle, UnknownRobot, add_robot, fetch_assets_dir
from bp_scene_contract import read_scene_graph, read_task_config


def _forward(robot: str, q: tuple[float, ...]) -> tuple[mujoco.MjModel, mujoco.MjData, RobotHandle]:
    spec = mujoco.MjSpec()
    spec.compiler.degree = False
    handle = add_robot(spec, robot, [0, 0, 0], [1, 0, 0, 0])
    model = spec.compile()
    data = mujoco.MjData(model)
    for joint, value in zip(handle.arm_joints, q, strict=True):
        data.qpos[model.joint(joint).qposadr[0]] = value
    mujoco.mj_forward(model, data)
    return model, data, handle


def test_panda_ready_pose_puts_the_tcp_where_franka_documents_it() -> None:
    # Franka's ready pose: TCP at (0.307, 0, 0.487) m in the base frame, pointing down.
    ready = (0.0, -np.pi / 4, 0.0, -3 * np.pi / 4, 0.0, np.pi / 2, np.pi / 4)
    model, data, handle = _forward("franka_panda", ready)
    site = model.site(handle.ee_site).id
    assert np.allclose(data.site_xpos[site], [0.307, 0.0, 0.487], atol=1e-3)
    assert np.allclose(data.site_xmat[site].reshape(3, 3)[:, 2], [0, 0, -1], atol=1e-6)


def test_ur5e_zero_pose_matches_the_published_dh_reach() -> None:
    # With all joints at zero, UR's DH table puts the flange at x = -(a2 + a3), y = d4 + d6
    # (in the mounting frame, which faces forward), z = d1 - d5.
    model, data, handle = _forward("ur5e", (0.0,) * 6)
    flange = data.xpos[model.body(handle.hand_body).id]
    assert np.allclose(flange, [0.425 + 0.3922, 0.1333 + 0.0996, 0.1625 - 0.0997], atol=1e-6)


def test_fetch_is_loaded_from_the_installed_gymnasium_robotics_package() -> None:
    model, data, handle = _forward("fetch", (0.0, -0.926, 0.0, 1.388, 0.0, 1.108, 0.0))
    assets = fetch_assets_dir()
    assert (assets / "fetch" / "robot.xml").is_file()
    assert "site-packages" in str(assets) or "dist-packages" in str(assets)
    assert model.nmesh > 10  # Fetch's own meshes, read from the package.
    site = model.site(handle.ee_site).id
    assert np.allclose(data.site_xmat[site].reshape(3, 3)[:, 2], [0, 0, -1], atol=0.01)


def test_unknown_robot_is_refused() -> None:
    with pytest.raises(UnknownRobot, match="supported"):
        add_robot(mujoco.MjSpec(), "atlas", [0, 0, 0], [1, 0, 0, 0])


@pytest.mark.parametrize(
    ("robot", "task"),
    [
        ("ur5e", "pick_place_can"),
        ("franka_panda", "pick_place_can"),
        ("fetch", "pick_place_cube"),
    ],
)
def test_pick_and_place_succeeds(robot: str, task: str, tmp_path: Path) -> None:
    graph, config = tabletop_scene(robot)
    result = simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        robot,
        task,
        4,
        tmp_path / "ep",
        render=False,
    )
    assert result.success, result.reason
    assert result.collision_count == 0


@pytest.mark.parametrize(
    ("task", "joint", "value"), [("open_drawer", "drawer", 0.15), ("open_door", "door", 0.8)]
)
def test_panda_opens_the_cabinet(task: str, joint: str, value: float, tmp_path: Path) -> None:
    graph, config = cabinet_scene("franka_panda")
    result = simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        "franka_panda",
        task,
        1,
        tmp_path / "ep",
        render=False,
    )
    episode = read_episode(result.out_dir)
    states = episode.states()
    column = episode.manifest["state"]["articulation_joints"].index(f"cabinet/{joint}")
    opening = states["articulation_position"][:, column]
    assert result.success, result.reason
    assert opening[0] == pytest.approx(0.0, abs=1e-3)
    assert opening[-1] >= value
    assert episode.manifest["outcome"]["details"]["joint_value"] >= value
