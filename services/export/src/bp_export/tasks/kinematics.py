"""Forward kinematics, Jacobian and damped-least-squares inverse kinematics of serial arms.

A `KinematicChain` is a list of revolute joints, each rotating about the z axis of its own
frame after a fixed `origin` transform from the previous joint's moving frame, followed by a
fixed `tool` transform to the tool centre point (TCP). Standard DH, modified (Craig) DH and
URDF-style joint origins with an arbitrary axis are all reduced to that one form when the chain
is built, so forward kinematics only ever multiplies by rotations about z.

All lengths are metres, angles radians, and poses are 4x4 homogeneous matrices expressed in the
chain's base frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float64]
Vector = NDArray[np.float64]
JointValues = Sequence[float] | NDArray[np.float64]


def translation(x: float, y: float, z: float) -> Matrix:
    """Pure translation as a 4x4 transform."""
    t = np.eye(4)
    t[:3, 3] = (x, y, z)
    return t


def rot_x(angle: float) -> Matrix:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0, 0, 0], [0, c, -s, 0], [0, s, c, 0], [0, 0, 0, 1]])


def rot_y(angle: float) -> Matrix:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s, 0], [0, 1.0, 0, 0], [-s, 0, c, 0], [0, 0, 0, 1]])


def rot_z(angle: float) -> Matrix:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0, 0], [s, c, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1]])


def rpy_transform(xyz: Sequence[float], rpy: Sequence[float] = (0.0, 0.0, 0.0)) -> Matrix:
    """URDF `<origin xyz rpy>`: translate, then rotate by Rz(yaw) Ry(pitch) Rx(roll)."""
    return translation(*xyz) @ rot_z(rpy[2]) @ rot_y(rpy[1]) @ rot_x(rpy[0])


def _z_to_axis(axis: Sequence[float]) -> Matrix:
    """A rotation (4x4) taking the unit z axis onto `axis`."""
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    z = np.array([0.0, 0.0, 1.0])
    v = np.cross(z, a)
    s, c = float(np.linalg.norm(v)), float(np.dot(z, a))
    out = np.eye(4)
    if s < 1e-12:
        if c < 0:
            out[:3, :3] = np.diag([1.0, -1.0, -1.0])
        return out
    k = v / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    out[:3, :3] = np.eye(3) + s * kx + (1 - c) * (kx @ kx)
    return out


@dataclass(frozen=True)
class RevoluteJoint:
    """One revolute joint: fixed `origin` from the previous moving frame, rotation about local z."""

    name: str
    origin: Matrix
    lower: float
    upper: float


@dataclass(frozen=True)
class KinematicChain:
    """A serial chain of revolute joints ending in a tool centre point."""

    joints: tuple[RevoluteJoint, ...]
    tool: Matrix

    @property
    def dof(self) -> int:
        return len(self.joints)

    @property
    def lower(self) -> Vector:
        return np.array([j.lower for j in self.joints])

    @property
    def upper(self) -> Vector:
        return np.array([j.upper for j in self.joints])

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    def within_limits(self, q: JointValues, tolerance: float = 1e-9) -> bool:
        arr = np.asarray(q, dtype=float)
        return bool(np.all(arr >= self.lower - tolerance) and np.all(arr <= self.upper + tolerance))


def chain_from_standard_dh(
    names: Sequence[str],
    a: Sequence[float],
    d: Sequence[float],
    alpha: Sequence[float],
    limits: Sequence[tuple[float, float]],
    tool: Matrix | None = None,
) -> KinematicChain:
    """Chain from standard (distal) DH rows: T_i = Rz(q_i) Tz(d_i) Tx(a_i) Rx(alpha_i)."""
    joints: list[RevoluteJoint] = []
    pending = np.eye(4)
    for i, name in enumerate(names):
        joints.append(RevoluteJoint(name, pending, limits[i][0], limits[i][1]))
        pending = translation(0, 0, d[i]) @ translation(a[i], 0, 0) @ rot_x(alpha[i])
    tcp = pending if tool is None else pending @ tool
    return KinematicChain(tuple(joints), tcp)


def chain_from_modified_dh(
    names: Sequence[str],
    a: Sequence[float],
    d: Sequence[float],
    alpha: Sequence[float],
    limits: Sequence[tuple[float, float]],
    flange: tuple[float, float, float],
    tool: Matrix | None = None,
) -> KinematicChain:
    """Chain from modified (Craig) DH rows: T_i = Rx(alpha_{i-1}) Tx(a_{i-1}) Rz(q_i) Tz(d_i).

    Row i holds (a_{i-1}, d_i, alpha_{i-1}); `flange` is the (a, d, alpha) row of the fixed
    flange frame after the last joint. Rz and Tz commute, so Tz(d_i) joins the fixed origin.
    """
    joints = [
        RevoluteJoint(
            name,
            rot_x(alpha[i]) @ translation(a[i], 0, 0) @ translation(0, 0, d[i]),
            limits[i][0],
            limits[i][1],
        )
        for i, name in enumerate(names)
    ]
    fa, fd, falpha = flange
    tcp = rot_x(falpha) @ translation(fa, 0, 0) @ translation(0, 0, fd)
    if tool is not None:
        tcp = tcp @ tool
    return KinematicChain(tuple(joints), tcp)


@dataclass(frozen=True)
class JointOrigin:
    """A URDF-style joint: origin relative to the previous joint's child link, and its axis."""

    name: str
    xyz: tuple[float, float, float]
    axis: tuple[float, float, float]
    lower: float
    upper: float
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0)


def chain_from_joint_origins(
    joints: Sequence[JointOrigin], tool: Matrix, base: Matrix | None = None
) -> KinematicChain:
    """Chain from URDF-style joint origins; each axis is rotated onto z (and back after)."""
    out: list[RevoluteJoint] = []
    carry = np.eye(4) if base is None else base
    for joint in joints:
        align = _z_to_axis(joint.axis)
        origin = carry @ rpy_transform(joint.xyz, joint.rpy) @ align
        out.append(RevoluteJoint(joint.name, origin, joint.lower, joint.upper))
        carry = align.T
    return KinematicChain(tuple(out), carry @ tool)


def _rz(q: float) -> Matrix:
    c, s = math.cos(q), math.sin(q)
    return np.array(
        [[c, -s, 0.0, 0.0], [s, c, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    )


def joint_frames(chain: KinematicChain, q: JointValues) -> tuple[Matrix, Matrix]:
    """Each joint's frame before its rotation (n x 4 x 4) and the TCP pose, in the base frame."""
    frames = np.empty((chain.dof, 4, 4))
    current = np.eye(4)
    for i, joint in enumerate(chain.joints):
        current = current @ joint.origin
        frames[i] = current
        current = current @ _rz(float(q[i]))
    return frames, current @ chain.tool


def forward_kinematics(chain: KinematicChain, q: JointValues) -> Matrix:
    """TCP pose (4x4) in the chain's base frame for joint values `q`."""
    if len(q) != chain.dof:
        raise ValueError(f"expected {chain.dof} joint values, got {len(q)}")
    return joint_frames(chain, q)[1]


def geometric_jacobian(frames: Matrix, tcp: Matrix) -> Matrix:
    """6 x n Jacobian (linear rows first) from the frames `joint_frames` returns."""
    axes = frames[:, :3, 2]
    origins = frames[:, :3, 3]
    linear = np.cross(axes, tcp[:3, 3] - origins)
    return np.vstack((linear.T, axes.T))


def rotation_error(current: Matrix, desired: Matrix) -> Vector:
    """Axis-angle vector (world frame) of the rotation taking `current` onto `desired`."""
    r = desired @ current.T
    cos_angle = max(-1.0, min(1.0, (float(np.trace(r)) - 1.0) / 2.0))
    angle = math.acos(cos_angle)
    skew = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    if angle < 1e-9:
        return np.zeros(3)
    if math.pi - angle < 1e-6:
        # Near a half turn the skew part vanishes; the axis is the dominant column of R + I.
        col = int(np.argmax(np.diag(r)))
        axis = (r[:, col] + np.eye(3)[:, col]) / math.sqrt(2.0 * (1.0 + r[col, col]))
        return axis * angle
    return skew / (2.0 * math.sin(angle)) * angle


def _approach_error(current_axis: Vector, desired_axis: Vector) -> tuple[Vector, float]:
    cross = np.cross(current_axis, desired_axis)
    sin_a = float(np.linalg.norm(cross))
    cos_a = float(np.dot(current_axis, desired_axis))
    angle = math.atan2(sin_a, cos_a)
    if sin_a < 1e-9:
        if cos_a > 0:
            return np.zeros(3), 0.0
        perp = np.cross(current_axis, [1.0, 0.0, 0.0])
        if np.linalg.norm(perp) < 1e-6:
            perp = np.cross(current_axis, [0.0, 1.0, 0.0])
        return perp / np.linalg.norm(perp) * angle, angle
    return cross / sin_a * angle, angle


def _perpendicular_basis(axis: Vector) -> Matrix:
    helper = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    return np.vstack((u, np.cross(axis, u)))


STALL_WINDOW = 15


@dataclass(frozen=True)
class IkTarget:
    """A TCP goal: a position plus either a full orientation or only an approach direction.

    `approach` constrains the TCP z axis (the direction the gripper points) and leaves rotation
    about it free, as a top-down grasp does; `rotation` (3x3) constrains the whole frame.
    """

    position: tuple[float, float, float]
    approach: tuple[float, float, float] | None = None
    rotation: Matrix | None = None


@dataclass(frozen=True)
class IkSolution:
    """Outcome of one IK query; `q` is the best configuration found even when it failed."""

    success: bool
    q: tuple[float, ...]
    position_error: float
    angle_error: float
    iterations: int


def _task_error(tcp: Matrix, target: IkTarget) -> tuple[Vector, Matrix | None, float, float]:
    """Error vector, row selector for the angular Jacobian, position and angle errors."""
    pos_err = np.asarray(target.position, dtype=float) - tcp[:3, 3]
    if target.rotation is not None:
        rot = rotation_error(tcp[:3, :3], target.rotation)
        return (
            np.concatenate((pos_err, rot)),
            None,
            float(np.linalg.norm(pos_err)),
            float(np.linalg.norm(rot)),
        )
    if target.approach is not None:
        desired = np.asarray(target.approach, dtype=float)
        desired = desired / np.linalg.norm(desired)
        current = tcp[:3, 2]
        rot, angle = _approach_error(current, desired)
        basis = _perpendicular_basis(current)
        return np.concatenate((pos_err, basis @ rot)), basis, float(np.linalg.norm(pos_err)), angle
    return pos_err, np.zeros((0, 3)), float(np.linalg.norm(pos_err)), 0.0


def _descend(
    chain: KinematicChain,
    target: IkTarget,
    q0: Vector,
    max_iterations: int,
    position_tolerance: float,
    angle_tolerance: float,
    damping: float,
    max_step: float,
) -> IkSolution:
    lower, upper = chain.lower, chain.upper
    q = np.clip(q0, lower, upper)
    best = IkSolution(False, tuple(q), math.inf, math.inf, 0)
    history: list[float] = []
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        frames, tcp = joint_frames(chain, q)
        error, angular_rows, pos_err, ang_err = _task_error(tcp, target)
        score = pos_err + 0.1 * ang_err
        if pos_err <= position_tolerance and ang_err <= angle_tolerance:
            return IkSolution(True, tuple(float(v) for v in q), pos_err, ang_err, iteration)
        if score < best.position_error + 0.1 * best.angle_error:
            best = IkSolution(False, tuple(float(v) for v in q), pos_err, ang_err, iteration)
        history.append(score)
        # A descent that gained under half a millimetre in its last STALL_WINDOW steps is
        # stuck at a limit or a local minimum; another seed does better than more steps.
        if len(history) > STALL_WINDOW and history[-STALL_WINDOW - 1] - score < 5e-4:
            break
        jac = geometric_jacobian(frames, tcp)
        rows = jac if angular_rows is None else np.vstack((jac[:3], angular_rows @ jac[3:]))
        gram = rows @ rows.T + (damping**2) * np.eye(rows.shape[0])
        step = rows.T @ np.linalg.solve(gram, error)
        largest = float(np.max(np.abs(step)))
        if largest > max_step:
            step *= max_step / largest
        q = np.clip(q + step, lower, upper)
    return IkSolution(False, best.q, best.position_error, best.angle_error, iteration)


def solve_ik(
    chain: KinematicChain,
    target: IkTarget,
    seeds: Sequence[JointValues] = (),
    *,
    random_restarts: int = 6,
    max_iterations: int = 150,
    position_tolerance: float = 0.005,
    angle_tolerance: float = 0.03,
    damping: float = 0.04,
    max_step: float = 0.35,
    rng_seed: int = 0,
) -> IkSolution:
    """Damped-least-squares IK within joint limits, from the given seeds then random restarts.

    Steps are clipped to the joint limits after every iteration. Restarts draw from a fixed
    random seed, so the same query always gives the same answer.
    """
    starts: list[Vector] = [np.asarray(s, dtype=float) for s in seeds]
    if not starts:
        starts.append((chain.lower + chain.upper) / 2.0)
    rng = np.random.default_rng(rng_seed)
    sample_low = np.maximum(chain.lower, -math.pi)
    sample_high = np.minimum(chain.upper, math.pi)
    starts.extend(rng.uniform(sample_low, sample_high) for _ in range(random_restarts))
    best: IkSolution | None = None
    for start in starts:
        result = _descend(
            chain,
            target,
            start,
            max_iterations,
            position_tolerance,
            angle_tolerance,
            damping,
            max_step,
        )
        if result.success:
            return result
        if best is None or (result.position_error + 0.1 * result.angle_error) < (
            best.position_error + 0.1 * best.angle_error
        ):
            best = result
    assert best is not None
    return best
