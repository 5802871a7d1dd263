"""Robots for planning and simulation: MuJoCo models from installed packages, one kinematic source.

`add_robot` puts a robot, with its own hand, into a MuJoCo spec (the collector's worlds);
`serial_chain` reads the arm's kinematics off that same model (export's reachability);
`robot_facts` says how each robot stands and what it may lift, and which package its model
comes from under what licence.
"""

from bp_robot_models.assembly import (
    PREFIX,
    ROBOT_CONAFFINITY,
    ROBOT_CONTYPE,
    ROBOT_IDS,
    RobotHandle,
    UnknownRobot,
    add_robot,
    robot_spec,
)
from bp_robot_models.catalogue import Mount, RobotFacts, robot_facts
from bp_robot_models.kinematics import ChainJoint, NotASerialArm, SerialChain, serial_chain
from bp_robot_models.packages import ModelPackageMissing, ModelSource

__all__ = [
    "PREFIX",
    "ROBOT_CONAFFINITY",
    "ROBOT_CONTYPE",
    "ROBOT_IDS",
    "ChainJoint",
    "ModelPackageMissing",
    "ModelSource",
    "Mount",
    "NotASerialArm",
    "RobotFacts",
    "RobotHandle",
    "SerialChain",
    "UnknownRobot",
    "add_robot",
    "robot_facts",
    "robot_spec",
    "serial_chain",
]
