"""Kinematic models of the robots tasks are planned for: Franka Panda, UR5e and Fetch.

Every number below was written from the manufacturers' published kinematic tables; no model
file is loaded at run time.

- Franka Panda: modified (Craig) DH table, joint limits and Franka Hand TCP offset (0.1034 m
  from the flange, rotated -45 degrees about the flange z axis) from Franka Robotics' "Robot
  and interface specifications" (FCI documentation). Payload 3 kg, reach 855 mm, hand stroke
  80 mm from the Panda datasheet.
- UR5e: standard DH table from Universal Robots' "DH parameters for calculations of kinematics
  and dynamics"; payload 5 kg, reach 850 mm and +-360 degree joint ranges from the UR5e
  datasheet. The elbow is limited to +-180 degrees here, since beyond that the forearm passes
  through the upper arm. The gripper is an assumed generic parallel gripper (85 mm stroke) whose
  TCP is 0.15 m beyond the tool flange.
- Fetch: joint origins, axes and limits of the 7-DoF arm from the fetch_description URDF that
  Fetch Robotics published (fetch_ros), payload 6 kg from its hardware spec. The torso lift
  joint (0 to 0.386 m) is held at FETCH_TORSO_HEIGHT, so the arm hangs from a fixed point of the
  mobile base. The TCP is the gripper_link frame, turned so that its z axis is the approach
  direction like the other two robots.

Base frames: the Panda and UR5e stand on a pedestal (their base frame is the pedestal top);
Fetch's base frame is base_link on the floor. In each, x points forward and z up, so a base
yaw that faces a work surface points x at it. The UR5e's DH base frame faces backwards from
its mounting frame (ROS's `base` versus `base_link`); its first joint turns through a full
circle either way, so reachability does not see the difference, but where its home posture
stands does, and `chain_yaw` records it.

Home postures are the ones the MuJoCo collector resets each robot to, and Fetch's torso is
held where the collector holds it, so that what is checked here is what gets simulated.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

import numpy as np
from bp_common.errors import InvalidInput
from bp_scene_contract import RobotName

from bp_export.tasks.kinematics import (
    JointOrigin,
    KinematicChain,
    chain_from_joint_origins,
    chain_from_modified_dh,
    chain_from_standard_dh,
    forward_kinematics,
    joint_frames,
    rot_y,
    rot_z,
    translation,
)

FETCH_TORSO_HEIGHT = 0.35
"""Fetch torso lift held at 0.35 m (of 0 to 0.386 m), as the collector's Fetch holds it: its
shoulder is then 1.14 m above the floor."""

Mount = Literal["pedestal", "mobile_base"]


@dataclass(frozen=True)
class RobotModel:
    """A robot arm as task planning sees it: kinematics, gripper, payload and footprint."""

    name: RobotName
    display_name: str
    chain: KinematicChain
    home: tuple[float, ...]
    mount: Mount
    footprint_radius: float
    body_height: float
    gripper_max_opening: float
    payload_kg: float
    published_reach: float | None
    link_radius: float
    """Radius (m) of a capsule around the arm's links, for keeping its home posture clear."""
    chain_yaw: float = 0.0
    """Yaw (rad) of the kinematic chain's base frame in the robot's forward-facing base frame."""
    sources: tuple[str, ...] = field(default=())

    @property
    def dof(self) -> int:
        return self.chain.dof

    def home_posture(self, spacing: float = 0.02) -> np.ndarray:
        """Points (n x 3, base frame) along the arm in its home posture, from the base frame
        origin through every joint to the TCP, at most `spacing` apart."""
        frames, tcp = joint_frames(self.chain, self.home)
        corners = [np.zeros(3), *(frames[i, :3, 3] for i in range(self.dof)), tcp[:3, 3]]
        points = [corners[0]]
        for a, b in itertools.pairwise(corners):
            steps = max(1, math.ceil(float(np.linalg.norm(b - a)) / spacing))
            points += [a + (b - a) * (i / steps) for i in range(1, steps + 1)]
        turn = rot_z(self.chain_yaw)[:3, :3]
        return np.asarray(points) @ turn.T

    def reach_centre(self) -> np.ndarray:
        """The first joint's origin in the base frame: fixed whatever the joint values, so reach
        is measured from it."""
        frames, _ = joint_frames(self.chain, self.home)
        return np.asarray(frames[0, :3, 3], dtype=float)


def _franka_panda() -> RobotModel:
    names = [f"panda_joint{i}" for i in range(1, 8)]
    a = [0.0, 0.0, 0.0, 0.0825, -0.0825, 0.0, 0.088]
    d = [0.333, 0.0, 0.316, 0.0, 0.384, 0.0, 0.0]
    alpha = [0.0, -math.pi / 2, math.pi / 2, math.pi / 2, -math.pi / 2, math.pi / 2, math.pi / 2]
    limits = [
        (-2.8973, 2.8973),
        (-1.7628, 1.7628),
        (-2.8973, 2.8973),
        (-3.0718, -0.0698),
        (-2.8973, 2.8973),
        (-0.0175, 3.7525),
        (-2.8973, 2.8973),
    ]
    hand = translation(0.0, 0.0, 0.1034) @ rot_z(-math.pi / 4)
    chain = chain_from_modified_dh(names, a, d, alpha, limits, flange=(0.0, 0.107, 0.0), tool=hand)
    return RobotModel(
        name="franka_panda",
        display_name="Franka Emika Panda",
        chain=chain,
        home=(0.0, -math.pi / 4, 0.0, -3 * math.pi / 4, 0.0, math.pi / 2, math.pi / 4),
        mount="pedestal",
        footprint_radius=0.15,
        body_height=0.35,
        gripper_max_opening=0.08,
        payload_kg=3.0,
        published_reach=0.855,
        link_radius=0.06,
        sources=("Franka FCI documentation: modified DH table, joint limits, hand TCP",),
    )


def _ur5e() -> RobotModel:
    names = [
        "shoulder_pan_joint",
        "shoulder_lift_joint",
        "elbow_joint",
        "wrist_1_joint",
        "wrist_2_joint",
        "wrist_3_joint",
    ]
    a = [0.0, -0.425, -0.3922, 0.0, 0.0, 0.0]
    d = [0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996]
    alpha = [math.pi / 2, 0.0, 0.0, math.pi / 2, -math.pi / 2, 0.0]
    full = (-2 * math.pi, 2 * math.pi)
    limits = [full, full, (-math.pi, math.pi), full, full, full]
    gripper = translation(0.0, 0.0, 0.15)
    chain = chain_from_standard_dh(names, a, d, alpha, limits, tool=gripper)
    return RobotModel(
        name="ur5e",
        display_name="Universal Robots UR5e",
        chain=chain,
        home=(0.0, -math.pi / 2, math.pi / 2, -math.pi / 2, -math.pi / 2, 0.0),
        mount="pedestal",
        footprint_radius=0.12,
        body_height=0.25,
        gripper_max_opening=0.085,
        payload_kg=5.0,
        published_reach=0.85,
        link_radius=0.065,
        chain_yaw=math.pi,
        sources=(
            "Universal Robots: DH parameters for calculations of kinematics and dynamics (UR5e)",
            "UR5e datasheet: reach, payload, joint ranges",
        ),
    )


def _fetch() -> RobotModel:
    continuous = (-2 * math.pi, 2 * math.pi)
    arm = [
        JointOrigin("shoulder_pan_joint", (0.119525, 0.0, 0.34858), (0, 0, 1), -1.6056, 1.6056),
        JointOrigin("shoulder_lift_joint", (0.117, 0.0, 0.06), (0, 1, 0), -1.221, 1.518),
        JointOrigin("upperarm_roll_joint", (0.219, 0.0, 0.0), (1, 0, 0), *continuous),
        JointOrigin("elbow_flex_joint", (0.133, 0.0, 0.0), (0, 1, 0), -2.251, 2.251),
        JointOrigin("forearm_roll_joint", (0.197, 0.0, 0.0), (1, 0, 0), *continuous),
        JointOrigin("wrist_flex_joint", (0.1245, 0.0, 0.0), (0, 1, 0), -2.16, 2.16),
        JointOrigin("wrist_roll_joint", (0.1385, 0.0, 0.0), (1, 0, 0), *continuous),
    ]
    torso = translation(-0.086875, 0.0, 0.37743 + FETCH_TORSO_HEIGHT)
    gripper = translation(0.16645, 0.0, 0.0) @ rot_y(math.pi / 2)
    chain = chain_from_joint_origins(arm, tool=gripper, base=torso)
    return RobotModel(
        name="fetch",
        display_name="Fetch mobile manipulator",
        chain=chain,
        home=(0.0, -0.926, 0.0, 1.388, 0.0, 1.108, 0.0),
        mount="mobile_base",
        footprint_radius=0.28,
        body_height=1.1,
        gripper_max_opening=0.10,
        payload_kg=6.0,
        published_reach=None,
        link_radius=0.07,
        sources=(
            "Fetch Robotics fetch_description URDF: arm joint origins, axes, limits, torso range",
            "Fetch hardware specification: payload, base diameter",
        ),
    )


_BUILDERS = {"franka_panda": _franka_panda, "ur5e": _ur5e, "fetch": _fetch}

ROBOT_NAMES: tuple[str, ...] = tuple(_BUILDERS)
"""Every robot name task planning accepts, in the default order."""


@cache
def get_robot(name: str) -> RobotModel:
    """The model of robot `name`; an unknown name is invalid input, not a silent default."""
    builder = _BUILDERS.get(name)
    if builder is None:
        raise InvalidInput(
            f"unknown robot {name!r}; known robots: {', '.join(ROBOT_NAMES)}", robot=name
        )
    return builder()


@cache
def approximate_reach(name: str, samples: int = 4000) -> float:
    """Largest reach-centre-to-TCP distance (m) over a fixed sample of joint configurations.

    Sampling underestimates the true maximum slightly; `reach_upper_bound` is the safe figure
    for ruling targets out.
    """
    robot = get_robot(name)
    rng = np.random.default_rng(7)
    lower, upper = robot.chain.lower, robot.chain.upper
    centre = robot.reach_centre()
    best = 0.0
    for _ in range(samples):
        q = rng.uniform(np.maximum(lower, -math.pi), np.minimum(upper, math.pi))
        tcp = forward_kinematics(robot.chain, q)
        best = max(best, float(np.linalg.norm(tcp[:3, 3] - centre)))
    return best


@cache
def reach_upper_bound(name: str) -> float:
    """Sum of the link lengths from the reach centre to the TCP: no target farther is reachable.

    Consecutive joint origins keep their distance whatever the joint values, so the sum holds
    for every configuration.
    """
    robot = get_robot(name)
    frames, tcp = joint_frames(robot.chain, robot.home)
    points = [frames[i, :3, 3] for i in range(robot.dof)] + [tcp[:3, 3]]
    return float(sum(np.linalg.norm(b - a) for a, b in itertools.pairwise(points)))
