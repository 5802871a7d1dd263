"""The arm's kinematic chain, read off the very MuJoCo model the simulator builds.

Planning needs forward kinematics and Jacobians thousands of times per scene, cheaply and
without a physics state. `serial_chain` compiles the assembled robot once, walks its arm joints
at zero, and writes each joint as a fixed transform from the previous joint's moving frame
followed by a rotation about its own z axis, then the end-effector site as the tool. Whatever
the MJCF or URDF says (body offsets, joint axes, the hand's site) is what planning computes
with: there is no second table to drift from the rendered arm.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import mujoco
import numpy as np
from numpy.typing import NDArray

from bp_robot_models.assembly import EE_SITE, recipe, robot_spec

Matrix = NDArray[np.float64]


@dataclass(frozen=True)
class ChainJoint:
    """A revolute joint: fixed `origin` from the previous moving frame, then rotation about z."""

    name: str
    origin: Matrix
    lower: float
    upper: float


@dataclass(frozen=True)
class SerialChain:
    """The arm from the robot's mounting frame to its end-effector site."""

    joints: tuple[ChainJoint, ...]
    tool: Matrix
    home: tuple[float, ...]
    gripper_span: float
    """How far apart the fingertips move between closed and open (m)."""


class NotASerialArm(ValueError):
    """The named arm joints do not form one chain (each joint's body inside the previous one's)."""


def _frame(rotation: NDArray[np.float64], position: NDArray[np.float64]) -> Matrix:
    out = np.eye(4)
    out[:3, :3] = rotation
    out[:3, 3] = position
    return out


def _z_onto(axis: NDArray[np.float64]) -> NDArray[np.float64]:
    """A rotation taking the unit z axis onto `axis`."""
    quat = np.zeros(4)
    mujoco.mju_quatZ2Vec(quat, np.asarray(axis, dtype=float))
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, quat)
    return mat.reshape(3, 3)


def _is_descendant(model: mujoco.MjModel, body: int, ancestor: int) -> bool:
    while body > 0:
        if body == ancestor:
            return True
        body = int(model.body_parentid[body])
    return ancestor == 0


def _pinch_distance(model: mujoco.MjModel, name: str, driver_q: float) -> float:
    r = recipe(name)
    data = mujoco.MjData(model)
    data.qpos[model.joint(r.driver).qposadr[0]] = driver_q
    for follower in r.followers:
        q = follower.offset + follower.ratio * driver_q
        data.qpos[model.joint(follower.joint).qposadr[0]] = q
    mujoco.mj_kinematics(model, data)
    a, b = (data.geom_xpos[model.geom(n).id] for n in r.pinch)
    return float(np.linalg.norm(a - b))


@cache
def serial_chain(name: str) -> SerialChain:
    """The kinematic chain of robot `name`, from its assembled MuJoCo model."""
    r = recipe(name)
    model = robot_spec(name).compile()
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    joints: list[ChainJoint] = []
    previous = np.eye(4)
    previous_body = 0
    for joint_name in r.arm_joints:
        joint = model.joint(joint_name)
        body = int(model.jnt_bodyid[joint.id])
        if not _is_descendant(model, body, previous_body):
            raise NotASerialArm(f"{name}: joint {joint_name} is not below the previous joint")
        body_rot = data.xmat[body].reshape(3, 3)
        frame = _frame(body_rot @ _z_onto(model.jnt_axis[joint.id]), data.xanchor[joint.id])
        lower, upper = (float(v) for v in model.jnt_range[joint.id])
        joints.append(ChainJoint(joint_name, np.linalg.inv(previous) @ frame, lower, upper))
        previous, previous_body = frame, body
    site = model.site(EE_SITE).id
    if not _is_descendant(model, int(model.site_bodyid[site]), previous_body):
        raise NotASerialArm(f"{name}: the end-effector site is not below the last arm joint")
    tcp = _frame(data.site_xmat[site].reshape(3, 3), data.site_xpos[site])
    span = abs(
        _pinch_distance(model, name, r.driver_open) - _pinch_distance(model, name, r.driver_closed)
    )
    return SerialChain(tuple(joints), np.linalg.inv(previous) @ tcp, r.home, span)
