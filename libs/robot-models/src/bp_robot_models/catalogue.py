"""What planning needs to know about each robot beyond its kinematics, and where its model is from.

Kinematics and the gripper's span are read from the model itself (`kinematics`); these are the
facts a model file does not carry: how the robot stands, how much room its body takes, what it
may lift. Payloads and reaches are the manufacturers' published figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bp_robot_models.assembly import ROBOT_IDS, UnknownRobot
from bp_robot_models.packages import ModelSource

Mount = Literal["pedestal", "floor"]
"""A pedestal raises a fixed arm to just under its work; a mobile robot stands on the floor."""


@dataclass(frozen=True)
class RobotFacts:
    display_name: str
    mount: Mount
    footprint_radius: float
    """Radius (m) of the circle the robot's body covers on the floor."""
    body_height: float
    """How high (m) above its base the body stands where it could hit furniture."""
    link_radius: float
    """Radius (m) of a capsule around the arm's links, for keeping its home posture clear."""
    payload_kg: float
    published_reach: float | None
    source: ModelSource
    notes: tuple[str, ...] = ()


_FACTS: dict[str, RobotFacts] = {
    "franka_panda": RobotFacts(
        display_name="Franka Emika Panda",
        mount="pedestal",
        footprint_radius=0.15,
        body_height=0.35,
        link_radius=0.06,
        payload_kg=3.0,
        published_reach=0.855,
        source=ModelSource(
            "robosuite", "robots/panda/robot.xml, grippers/panda_gripper.xml", "MIT"
        ),
        notes=("payload and reach from the Panda datasheet",),
    ),
    "ur5e": RobotFacts(
        display_name="Universal Robots UR5e with a Robotiq 2F-85",
        mount="pedestal",
        footprint_radius=0.12,
        body_height=0.25,
        link_radius=0.065,
        payload_kg=5.0,
        published_reach=0.85,
        source=ModelSource(
            "robosuite", "robots/ur5e/robot.xml, grippers/robotiq_gripper_85.xml", "MIT"
        ),
        notes=("payload and reach from the UR5e datasheet",),
    ),
    "ur10": RobotFacts(
        display_name="Universal Robots UR10 (CB-series) with a Robotiq 2F-85",
        mount="pedestal",
        footprint_radius=0.14,
        body_height=0.3,
        link_radius=0.08,
        payload_kg=10.0,
        published_reach=1.3,
        source=ModelSource(
            "example-robot-data",
            "robots/ur_description/urdf/ur10_robot.urdf (+ robosuite's Robotiq 2F-85, MIT)",
            "BSD-3-Clause",
        ),
        notes=(
            "no installable package carries the e-series UR10e, so this is the UR10",
            "payload and reach from the UR10 datasheet",
        ),
    ),
    "fetch": RobotFacts(
        display_name="Fetch mobile manipulator",
        mount="floor",
        footprint_radius=0.28,
        body_height=1.1,
        link_radius=0.07,
        payload_kg=6.0,
        published_reach=None,
        source=ModelSource("gymnasium-robotics", "envs/assets/fetch/robot.xml", "MIT"),
        notes=("payload from the Fetch hardware specification; torso held 0.35 m up",),
    ),
    "gr1": RobotFacts(
        display_name="Fourier GR1 upper body (fixed base) with its right hand",
        mount="pedestal",
        footprint_radius=0.16,
        body_height=0.7,
        link_radius=0.06,
        payload_kg=1.0,
        published_reach=None,
        source=ModelSource(
            "robosuite", "robots/gr1/robot.xml, grippers/fourier_right_hand.xml", "MIT"
        ),
        notes=(
            "the right arm and hand work; the waist, head and left arm are held still",
            "payload: an assumed 1 kg for one five-finger hand, no published figure was found",
        ),
    ),
}

assert tuple(_FACTS) == ROBOT_IDS


def robot_facts(name: str) -> RobotFacts:
    facts = _FACTS.get(name)
    if facts is None:
        raise UnknownRobot(f"no model for robot {name!r}; known robots: {', '.join(ROBOT_IDS)}")
    return facts
