"""Robot models: loaded from the installed packages, matching the published kinematics, and one
kinematic chain for planning that is exactly the simulated arm."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import mujoco
import numpy as np
import pytest
from bp_robot_models import (
    ROBOT_IDS,
    RobotHandle,
    UnknownRobot,
    add_robot,
    robot_facts,
    robot_spec,
    serial_chain,
)
from bp_robot_models.assembly import EE_SITE, recipe

REPOSITORY = Path(__file__).resolve().parents[2]


def _posed(name: str, q: tuple[float, ...]) -> tuple[mujoco.MjModel, mujoco.MjData, RobotHandle]:
    spec = mujoco.MjSpec()
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST  # as the collector's worlds
    handle = add_robot(spec, name, [0, 0, 0], [1, 0, 0, 0])
    model = spec.compile()
    data = mujoco.MjData(model)
    for joint, value in zip(handle.arm_joints, q, strict=True):
        data.qpos[model.joint(joint).qposadr[0]] = value
    mujoco.mj_forward(model, data)
    return model, data, handle


def test_the_five_robots_have_models() -> None:
    assert ROBOT_IDS == ("franka_panda", "ur5e", "ur10", "fetch", "gr1")


@pytest.mark.parametrize("name", ROBOT_IDS)
def test_every_collision_mesh_is_read_from_an_installed_package(name: str) -> None:
    # Visual meshes are decimated copies made at run time (no file); what collides is the
    # package's own geometry, read from site-packages, never from the repository.
    spec = robot_spec(name)
    meshes = {m.name: m for m in spec.meshes}
    colliding = {g.meshname for g in spec.geoms if g.contype and g.meshname}
    assert len(meshes) >= 7, "a robot with meshes, not a chain of capsules"
    assert colliding
    package = robot_facts(name).source.package
    for mesh_name in colliding:
        file = Path(meshes[mesh_name].file)
        assert file.is_file() and "site-packages" in file.parts, file
        assert (
            package.replace("-", "_") in str(file)
            or "cmeel.prefix" in str(file)
            or ("robosuite" in str(file))
        )


@pytest.mark.parametrize("name", ROBOT_IDS)
def test_the_planning_chain_is_the_simulated_arm(name: str) -> None:
    chain = serial_chain(name)
    model = robot_spec(name).compile()
    data = mujoco.MjData(model)
    joints = recipe(name).arm_joints
    rng = np.random.default_rng(3)
    for _ in range(10):
        q = rng.uniform([j.lower for j in chain.joints], [j.upper for j in chain.joints])
        for name, value in zip(joints, q, strict=True):
            data.qpos[model.joint(name).qposadr[0]] = value
        mujoco.mj_kinematics(model, data)
        pose = np.eye(4)
        for joint, value in zip(chain.joints, q, strict=True):
            c, s = math.cos(value), math.sin(value)
            turn = np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
            pose = pose @ joint.origin @ turn
        pose = pose @ chain.tool
        site = model.site(EE_SITE).id
        np.testing.assert_allclose(pose[:3, 3], data.site_xpos[site], atol=1e-9)
        np.testing.assert_allclose(pose[:3, :3], data.site_xmat[site].reshape(3, 3), atol=1e-9)


def test_panda_ready_pose_puts_the_fingertips_at_franka_s_published_tcp() -> None:
    # Franka's ready pose: TCP (0.1034 m past the flange, at the fingertips) at (0.307, 0,
    # 0.487), pointing down. The site is the centre of the 2 cm long finger pads, just above.
    model, data, handle = _posed("franka_panda", recipe("franka_panda").home)
    site = model.site(handle.ee_site).id
    np.testing.assert_allclose(data.site_xpos[site][:2], [0.307, 0.0], atol=1e-3)
    assert 0.487 < data.site_xpos[site][2] < 0.487 + 0.02
    np.testing.assert_allclose(data.site_xmat[site].reshape(3, 3)[:, 2], [0, 0, -1], atol=1e-3)


@pytest.mark.parametrize(
    ("name", "flange"),
    [
        # Universal Robots' DH tables, all joints at zero: the flange at horizontal distance
        # |(a2 + a3, d4 + d6)| from the base axis and height d1 - d5.
        ("ur5e", (math.hypot(0.425 + 0.3922, 0.1333 + 0.0996), 0.1625 - 0.0997)),
        ("ur10", (math.hypot(0.612 + 0.5723, 0.163941 + 0.0922), 0.1273 - 0.1157)),
    ],
)
def test_ur_arms_match_their_published_dh_tables(name: str, flange: tuple[float, float]) -> None:
    model, data, handle = _posed(name, (0.0,) * 6)
    hand = data.xpos[model.body(handle.hand_body).id]
    assert math.hypot(hand[0], hand[1]) == pytest.approx(flange[0], abs=0.003)
    assert hand[2] == pytest.approx(flange[1], abs=0.003)


@pytest.mark.parametrize(
    ("name", "stroke"),
    # The Robotiq 2F-85 opens 85 mm over its knuckles' 0.8 rad; commands keep 0.01 rad off
    # each soft limit, which leaves 82.5 mm.
    [("franka_panda", 0.080), ("ur5e", 0.0825), ("ur10", 0.0825), ("fetch", 0.100)],
)
def test_jaw_strokes_match_the_grippers_datasheets(name: str, stroke: float) -> None:
    assert serial_chain(name).gripper_span == pytest.approx(stroke, abs=0.002)


@pytest.mark.parametrize("name", ROBOT_IDS)
def test_one_actuator_opens_and_closes_the_whole_hand(name: str) -> None:
    model, data, handle = _posed(name, recipe(name).home)
    grip = model.actuator(handle.gripper_actuator).id
    tips = [model.geom(g).id for g in handle.pinch_geoms]

    def gap_after(opening: float) -> float:
        data.ctrl[grip] = handle.gripper_ctrl(opening)
        for _ in range(600):
            mujoco.mj_step(model, data)
        return float(np.linalg.norm(data.geom_xpos[tips[0]] - data.geom_xpos[tips[1]]))

    opened, closed = gap_after(1.0), gap_after(0.0)
    assert opened - closed > 0.8 * serial_chain(name).gripper_span
    for joint, want in zip(handle.finger_joints, handle.finger_qpos(0.0), strict=True):
        assert data.qpos[model.joint(joint).qposadr[0]] == pytest.approx(want, abs=0.1)


def test_an_unknown_robot_is_refused_with_the_known_ones() -> None:
    with pytest.raises(UnknownRobot, match="franka_panda"):
        add_robot(mujoco.MjSpec(), "atlas", [0, 0, 0], [1, 0, 0, 0])


def test_the_ur10_says_it_is_not_the_e_series() -> None:
    facts = robot_facts("ur10")
    assert any("UR10e" in note for note in facts.notes)
    assert facts.source.licence == "BSD-3-Clause"


def test_the_model_packages_are_read_as_data_never_imported() -> None:
    # robosuite's and gymnasium-robotics' own dependencies are overridden away: importing them
    # would fail, and nothing needs to.
    probe = (
        "import sys, mujoco\n"
        "from bp_robot_models import ROBOT_IDS, add_robot, serial_chain\n"
        "for name in ROBOT_IDS:\n"
        "    add_robot(mujoco.MjSpec(), name, [0, 0, 0], [1, 0, 0, 0]); serial_chain(name)\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('robosuite', 'gymnasium_robotics', 'gymnasium'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=240, check=True
    )
    assert done.stdout.strip() == ""
