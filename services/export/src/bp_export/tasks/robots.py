"""The robots tasks are planned for, as planning sees them: kinematics, gripper, payload, footprint.

The kinematic chain is the one the collector simulates: `bp_robot_models` assembles each robot
from the MJCF or URDF its package ships and reads the arm's joint frames, limits and
end-effector site off that model (`serial_chain`). Nothing here restates a DH table, so what
export checks for reach is the arm the collector renders and drives. How a robot stands, how
much room it takes and what it may lift come from `robot_facts`.

Base frames: fixed arms (Panda, UR5e, UR10, GR1's upper body) stand on a pedestal whose top
is their base frame; Fetch's base frame is its base_link on the floor. Home postures are the
ones the collector resets each robot to.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from bp_common.errors import InvalidInput
from bp_robot_models import ROBOT_IDS, Mount, robot_facts, serial_chain
from bp_scene_contract import RobotName

from bp_export.tasks.kinematics import (
    KinematicChain,
    RevoluteJoint,
    forward_kinematics,
    joint_frames,
    rot_z,
)


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


def _model(name: RobotName) -> RobotModel:
    simulated = serial_chain(name)
    facts = robot_facts(name)
    chain = KinematicChain(
        tuple(RevoluteJoint(j.name, j.origin, j.lower, j.upper) for j in simulated.joints),
        simulated.tool,
    )
    source = facts.source
    return RobotModel(
        name=name,
        display_name=facts.display_name,
        chain=chain,
        home=simulated.home,
        mount=facts.mount,
        footprint_radius=facts.footprint_radius,
        body_height=facts.body_height,
        gripper_max_opening=simulated.gripper_span,
        payload_kg=facts.payload_kg,
        published_reach=facts.published_reach,
        link_radius=facts.link_radius,
        sources=(f"{source.package} ({source.licence}): {source.files}", *facts.notes),
    )


ROBOT_NAMES: tuple[str, ...] = ROBOT_IDS
"""Every robot name task planning accepts, in the default order."""


@cache
def get_robot(name: str) -> RobotModel:
    """The model of robot `name`; an unknown name is invalid input, not a silent default."""
    if name not in ROBOT_NAMES:
        raise InvalidInput(
            f"unknown robot {name!r}; known robots: {', '.join(ROBOT_NAMES)}", robot=name
        )
    return _model(name)  # type: ignore[arg-type]


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
