"""Robot arms with parallel grippers and joint position actuators, added to a MuJoCo spec.

Franka Panda and UR5e are built from their published kinematic parameters (Franka's modified
Denavit-Hartenberg table, Universal Robots' standard DH table), with simple capsule geometry;
no model files are copied. Fetch is loaded from the MJCF shipped in the installed
`gymnasium-robotics` package when that package is present. Every robot gets an end-effector
site named `<prefix>ee` between the fingertips, whose z axis points out of the gripper and whose
y axis is the fingers' closing direction.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

PREFIX = "robot/"
ROBOT_CONTYPE = 2
ROBOT_CONAFFINITY = 1


@dataclass(frozen=True)
class RobotHandle:
    """Names, within the compiled model, of what the collector drives and records."""

    name: str
    base_body: str
    arm_joints: tuple[str, ...]
    finger_joints: tuple[str, ...]
    arm_actuators: tuple[str, ...]
    gripper_actuator: str
    ee_site: str
    hand_body: str
    home_qpos: tuple[float, ...]
    gripper_open_ctrl: float
    gripper_closed_ctrl: float
    max_opening: float
    mobile_base_bodies: tuple[str, ...] = field(default=())


class UnknownRobot(ValueError):
    """A robot name the collector has no model for."""


@dataclass(frozen=True)
class _Link:
    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float]
    lower: float
    upper: float
    mass: float
    radius: float
    torque: float
    kp: float


def _quat_rot_x(angle: float) -> tuple[float, float, float, float]:
    return (math.cos(angle / 2), math.sin(angle / 2), 0.0, 0.0)


def _quat_rot_z(angle: float) -> tuple[float, float, float, float]:
    return (math.cos(angle / 2), 0.0, 0.0, math.sin(angle / 2))


def _panda_links() -> tuple[list[_Link], tuple[float, float, float]]:
    """Franka's modified DH rows (a, d, alpha) turned into body offsets for each joint.

    A modified-DH step is RotX(alpha) TransX(a) TransZ(d) RotZ(q): the body sits at
    (a, -sin(alpha) d, cos(alpha) d) rotated by RotX(alpha) and turns about its own z.
    """
    rows = [  # a, d, alpha, lower, upper, mass, radius, torque, kp
        (0.0, 0.333, 0.0, -2.8973, 2.8973, 4.97, 0.060, 87.0, 4500.0),
        (0.0, 0.0, -math.pi / 2, -1.7628, 1.7628, 0.646, 0.060, 87.0, 4500.0),
        (0.0, 0.316, math.pi / 2, -2.8973, 2.8973, 3.228, 0.055, 87.0, 3500.0),
        (0.0825, 0.0, math.pi / 2, -3.0718, -0.0698, 3.587, 0.055, 87.0, 3500.0),
        (-0.0825, 0.384, -math.pi / 2, -2.8973, 2.8973, 1.226, 0.050, 12.0, 2000.0),
        (0.0, 0.0, math.pi / 2, -0.0175, 3.7525, 1.666, 0.045, 12.0, 2000.0),
        (0.088, 0.0, math.pi / 2, -2.8973, 2.8973, 0.735, 0.040, 12.0, 2000.0),
    ]
    links = []
    for a, d, alpha, lo, hi, mass, radius, torque, kp in rows:
        pos = (a, -math.sin(alpha) * d, math.cos(alpha) * d)
        links.append(_Link(pos, _quat_rot_x(alpha), lo, hi, mass, radius, torque, kp))
    flange = (0.0, 0.0, 0.107)
    return links, flange


def _ur5e_links() -> tuple[list[_Link], tuple[float, float, float]]:
    """Universal Robots' standard DH rows (a, d, alpha) for the UR5e as body offsets.

    A standard-DH step is RotZ(q) TransZ(d) TransX(a) RotX(alpha): joint i turns body i about
    its z, and body i+1 sits at (a, 0, d) rotated by RotX(alpha) in body i.
    """
    a = [0.0, -0.425, -0.3922, 0.0, 0.0, 0.0]
    d = [0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996]
    alpha = [math.pi / 2, 0.0, 0.0, math.pi / 2, -math.pi / 2, 0.0]
    mass = [3.761, 8.058, 2.846, 1.37, 1.3, 0.365]
    radius = [0.065, 0.055, 0.045, 0.040, 0.040, 0.035]
    torque = [150.0, 150.0, 150.0, 28.0, 28.0, 28.0]
    kp = [5000.0, 5000.0, 3500.0, 1500.0, 1500.0, 1500.0]
    limits = [(-2 * math.pi, 2 * math.pi)] * 6
    limits[2] = (-math.pi, math.pi)
    links = []
    prev_pos: tuple[float, float, float] = (0.0, 0.0, 0.0)
    prev_quat = (1.0, 0.0, 0.0, 0.0)
    for i in range(6):
        lo, hi = limits[i]
        links.append(_Link(prev_pos, prev_quat, lo, hi, mass[i], radius[i], torque[i], kp[i]))
        prev_pos = (a[i], 0.0, d[i])
        prev_quat = _quat_rot_x(alpha[i])
    # The last DH step (index 5) has alpha 0, so the flange is a pure offset.
    return links, prev_pos


def _robot_geom(body: mujoco.MjsBody, **kwargs: object) -> mujoco.MjsGeom:
    geom = body.add_geom(**kwargs)
    geom.contype = ROBOT_CONTYPE
    geom.conaffinity = ROBOT_CONAFFINITY
    return geom


def _add_chain(
    spec: mujoco.MjSpec,
    parent: mujoco.MjsBody,
    links: Sequence[_Link],
    flange: tuple[float, float, float],
    rgba: Sequence[float],
) -> tuple[mujoco.MjsBody, list[str], list[str]]:
    """Serial chain of hinge joints about each body's z, capsules between joint origins."""
    joints: list[str] = []
    actuators: list[str] = []
    body = parent
    offsets = [link.pos for link in links[1:]] + [flange]
    for i, (link, child_offset) in enumerate(zip(links, offsets, strict=True)):
        body = body.add_body(name=f"{PREFIX}link{i + 1}", pos=list(link.pos), quat=list(link.quat))
        body.gravcomp = 1.0
        joint_name = f"{PREFIX}joint{i + 1}"
        body.add_joint(
            name=joint_name,
            type=mujoco.mjtJoint.mjJNT_HINGE,
            axis=[0, 0, 1],
            range=[link.lower, link.upper],
            damping=2.0,
            armature=0.1,
        )
        length = float(np.linalg.norm(child_offset))
        # A short housing along the joint axis, then a capsule to the next joint.
        _robot_geom(
            body,
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            size=[link.radius, 0.05, 0],
            mass=link.mass * 0.3,
            rgba=list(rgba),
        )
        if length > 1e-6:
            _robot_geom(
                body,
                type=mujoco.mjtGeom.mjGEOM_CAPSULE,
                fromto=[0, 0, 0, *child_offset],
                size=[link.radius * 0.85, 0, 0],
                mass=link.mass * 0.7,
                rgba=list(rgba),
            )
        joints.append(joint_name)
        act_name = f"{PREFIX}act{i + 1}"
        act = spec.add_actuator(name=act_name, target=joint_name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=link.kp, kv=link.kp / 10)
        act.ctrlrange = [link.lower, link.upper]
        act.ctrllimited = 1
        act.forcerange = [-link.torque * 4, link.torque * 4]
        act.forcelimited = 1
        actuators.append(act_name)
    return body, joints, actuators


@dataclass(frozen=True)
class _GripperGeometry:
    palm_length: float
    palm_width: float
    finger_length: float
    max_opening: float
    force: float


def _add_parallel_gripper(
    spec: mujoco.MjSpec,
    flange_body: mujoco.MjsBody,
    flange: tuple[float, float, float],
    yaw: float,
    geometry: _GripperGeometry,
) -> tuple[str, str, list[str], str]:
    """Palm plus two fingers sliding along the hand's y; returns hand, ee site, joints, actuator."""
    hand = flange_body.add_body(name=f"{PREFIX}hand", pos=list(flange), quat=list(_quat_rot_z(yaw)))
    hand.gravcomp = 1.0
    g = geometry
    _robot_geom(
        hand,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[0.025, g.palm_width / 2, g.palm_length / 2],
        pos=[0, 0, g.palm_length / 2],
        mass=0.7,
        rgba=[0.9, 0.9, 0.9, 1],
    )
    half_stroke = g.max_opening / 2
    pad_half = [0.011, 0.006, g.finger_length / 2]
    joints = []
    for side, sign in (("left", 1.0), ("right", -1.0)):
        finger = hand.add_body(name=f"{PREFIX}finger_{side}", pos=[0, 0, g.palm_length])
        finger.gravcomp = 1.0
        joint = f"{PREFIX}finger_{side}_joint"
        finger.add_joint(
            name=joint,
            type=mujoco.mjtJoint.mjJNT_SLIDE,
            axis=[0, sign, 0],
            range=[0, half_stroke],
            damping=5.0,
            armature=0.01,
        )
        pad = _robot_geom(
            finger,
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=pad_half,
            pos=[0, sign * pad_half[1], g.finger_length / 2],
            mass=0.02,
            rgba=[0.2, 0.2, 0.2, 1],
        )
        pad.friction = [1.5, 0.02, 0.001]
        pad.condim = 4
        pad.priority = 1
        joints.append(joint)
    spec.add_equality(
        type=mujoco.mjtEq.mjEQ_JOINT,
        name1=joints[1],
        name2=joints[0],
        data=[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    )
    actuator = f"{PREFIX}gripper"
    act = spec.add_actuator(name=actuator, target=joints[0], trntype=mujoco.mjtTrn.mjTRN_JOINT)
    act.set_to_position(kp=2000.0, kv=100.0)
    act.ctrlrange = [0, half_stroke]
    act.ctrllimited = 1
    act.forcerange = [-g.force, g.force]
    act.forcelimited = 1
    ee = f"{PREFIX}ee"
    tip_z = g.palm_length + g.finger_length
    hand.add_site(name=ee, pos=[0, 0, tip_z - 0.007], size=[0.005, 0, 0], group=5)
    return hand.name, ee, joints, actuator


def _add_arm_robot(
    spec: mujoco.MjSpec, name: str, base_pos: Sequence[float], base_quat: Sequence[float]
) -> RobotHandle:
    base = spec.worldbody.add_body(name=f"{PREFIX}base", pos=list(base_pos), quat=list(base_quat))
    if name == "franka_panda":
        links, flange = _panda_links()
        rgba = (0.95, 0.95, 0.95, 1.0)
        _robot_geom(
            base,
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            size=[0.07, 0.07, 0],
            pos=[0, 0, 0.07],
            rgba=list(rgba),
        )
        gripper = _GripperGeometry(
            palm_length=0.0584, palm_width=0.2, finger_length=0.052, max_opening=0.08, force=70.0
        )
        hand_yaw = -math.pi / 4
        home: tuple[float, ...] = (0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785)
    elif name == "ur5e":
        links, flange = _ur5e_links()
        rgba = (0.55, 0.6, 0.68, 1.0)
        _robot_geom(
            base,
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            size=[0.075, 0.04, 0],
            pos=[0, 0, 0.04],
            rgba=list(rgba),
        )
        # A Robotiq 2F-85-sized jaw: 85 mm stroke, about 0.16 m from flange to fingertips.
        gripper = _GripperGeometry(
            palm_length=0.11, palm_width=0.14, finger_length=0.05, max_opening=0.085, force=120.0
        )
        hand_yaw = 0.0
        home = (0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0)
    else:
        raise UnknownRobot(name)
    chain_parent = base
    if name == "ur5e":
        # UR's DH base frame faces backwards relative to the robot's mounting frame (ROS's
        # base_link versus base); turn it so that +x is forward for every arm.
        chain_parent = base.add_body(name=f"{PREFIX}base_dh", quat=list(_quat_rot_z(math.pi)))
    flange_body, joints, actuators = _add_chain(spec, chain_parent, links, flange, rgba)
    hand, ee, fingers, gripper_act = _add_parallel_gripper(
        spec, flange_body, flange, hand_yaw, gripper
    )
    return RobotHandle(
        name=name,
        base_body=base.name,
        arm_joints=tuple(joints),
        finger_joints=tuple(fingers),
        arm_actuators=tuple(actuators),
        gripper_actuator=gripper_act,
        ee_site=ee,
        hand_body=hand,
        home_qpos=home,
        gripper_open_ctrl=gripper.max_opening / 2,
        gripper_closed_ctrl=0.0,
        max_opening=gripper.max_opening,
    )


FETCH_ARM_JOINTS = (
    "shoulder_pan_joint",
    "shoulder_lift_joint",
    "upperarm_roll_joint",
    "elbow_flex_joint",
    "forearm_roll_joint",
    "wrist_flex_joint",
    "wrist_roll_joint",
)


def fetch_assets_dir() -> Path:
    """The MJCF assets folder inside the installed gymnasium-robotics package.

    Found without importing the package, whose import pulls in gymnasium.
    """
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise UnknownRobot("fetch needs the gymnasium-robotics package installed")
    return Path(next(iter(spec.submodule_search_locations))) / "envs" / "assets"


def _add_fetch(
    spec: mujoco.MjSpec, base_pos: Sequence[float], base_quat: Sequence[float]
) -> RobotHandle:
    """Fetch from gymnasium-robotics' MJCF, with its mocap weld replaced by joint actuators."""
    assets = fetch_assets_dir()
    folder = assets / "fetch"
    wrapper = (
        f'<mujoco><compiler angle="radian" meshdir="{assets / "stls" / "fetch"}" '
        f'texturedir="{assets / "textures"}"/>'
        f'<include file="{folder / "shared.xml"}"/>'
        f'<worldbody><include file="{folder / "robot.xml"}"/></worldbody></mujoco>'
    )
    fetch = mujoco.MjSpec.from_string(wrapper)
    fetch.delete(fetch.body("robot0:mocap"))
    for eq in list(fetch.equalities):
        fetch.delete(eq)
    base = fetch.body("robot0:base_link")
    base.pos = [0, 0, 0]
    for joint in list(base.joints):
        fetch.delete(joint)
    frame = spec.worldbody.add_frame(pos=list(base_pos), quat=list(base_quat))
    frame.attach_body(base, PREFIX, "")
    # The scripted expert moves the arm only: fix the torso, raised 0.35 m up its lift joint.
    torso_joint = spec.joint(f"{PREFIX}robot0:torso_lift_joint")
    torso = torso_joint.parent
    spec.delete(torso_joint)
    torso.pos = [torso.pos[0], torso.pos[1], torso.pos[2] + 0.35]
    joints, actuators = [], []
    gains = [3000.0, 3000.0, 1500.0, 1500.0, 800.0, 800.0, 500.0]
    for joint_name, kp in zip(FETCH_ARM_JOINTS, gains, strict=True):
        full = f"{PREFIX}robot0:{joint_name}"
        joint = spec.joint(full)
        joint.stiffness = np.zeros(3)
        joint.damping = np.array([5.0, 0.0, 0.0])
        if not joint.limited or joint.range[0] >= joint.range[1]:
            joint.range = [-math.pi, math.pi]
        joint.limited = 1
        act_name = f"{PREFIX}act_{joint_name}"
        act = spec.add_actuator(name=act_name, target=full, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.set_to_position(kp=kp, kv=kp / 10)
        act.ctrlrange = list(joint.range)
        act.ctrllimited = 1
        joints.append(full)
        actuators.append(act_name)
    for body in spec.bodies:
        if body.name.startswith(PREFIX):
            body.gravcomp = 1.0
            for geom in body.geoms:
                geom.contype = ROBOT_CONTYPE
                geom.conaffinity = ROBOT_CONAFFINITY
    fingers = [f"{PREFIX}robot0:r_gripper_finger_joint", f"{PREFIX}robot0:l_gripper_finger_joint"]
    spec.add_equality(
        type=mujoco.mjtEq.mjEQ_JOINT,
        name1=fingers[1],
        name2=fingers[0],
        data=[0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    )
    gripper = f"{PREFIX}gripper"
    act = spec.add_actuator(name=gripper, target=fingers[0], trntype=mujoco.mjtTrn.mjTRN_JOINT)
    act.set_to_position(kp=30000.0, kv=1000.0)
    act.ctrlrange = [0, 0.05]
    act.ctrllimited = 1
    act.forcerange = [-500, 500]
    act.forcelimited = 1
    hand = spec.body(f"{PREFIX}robot0:gripper_link")
    # Fetch's gripper points along its link's x and closes along y; the site's z must point out.
    hand.add_site(
        name=f"{PREFIX}ee",
        pos=[0.02, 0, 0],
        quat=[0.7071068, 0, 0.7071068, 0],
        size=[0.005, 0, 0],
        group=5,
    )
    mobile = tuple(
        b.name
        for b in spec.bodies
        if b.name.startswith(PREFIX) and ("base_link" in b.name or "wheel" in b.name)
    )
    return RobotHandle(
        name="fetch",
        base_body=f"{PREFIX}robot0:base_link",
        arm_joints=tuple(joints),
        finger_joints=tuple(fingers),
        arm_actuators=tuple(actuators),
        gripper_actuator=gripper,
        ee_site=f"{PREFIX}ee",
        hand_body=hand.name,
        home_qpos=(0.0, -0.926, 0.0, 1.388, 0.0, 1.108, 0.0),
        gripper_open_ctrl=0.05,
        gripper_closed_ctrl=0.0,
        max_opening=0.1,
        mobile_base_bodies=mobile,
    )


SUPPORTED_ROBOTS = ("franka_panda", "ur5e", "fetch")


def add_robot(
    spec: mujoco.MjSpec, name: str, base_pos: Sequence[float], base_quat: Sequence[float]
) -> RobotHandle:
    """Add the named robot to `spec` with its base at the given world pose."""
    if name in ("franka_panda", "ur5e"):
        return _add_arm_robot(spec, name, base_pos, base_quat)
    if name == "fetch":
        return _add_fetch(spec, base_pos, base_quat)
    raise UnknownRobot(f"no model for robot {name!r}; supported: {', '.join(SUPPORTED_ROBOTS)}")
