"""Antipodal grasps sampled on an object's shape as built, scored, for a parallel jaw.

Every colliding geom of the object is taken as a convex solid: the intersection of its
supporting half-spaces along a fixed set of directions (exact for a box, a 48-sided prism for a
cylinder, a close polytope for a sphere, capsule or ellipsoid, and each hull's own faces for a
convex mesh piece). A pinch is a line the two pads close along: where the line enters and leaves
the object (or one wall of it) are the two contacts, and the pinch holds when both surface
normals oppose the closing direction within the friction cone and the width fits the jaw.

Three kinds are sampled in the world frame, the object as it stands now:

- `top`: the hand comes straight down and closes across the whole object at some height;
- `side`: the hand comes level, from the robot's side, and closes across the object;
- `rim`: a container's single wall pinched from above, one pad inside and one outside.

Candidates are scored (width well inside the opening, contacts near the centre of mass, a
container by its rim) and the caller checks them for collision in order before committing to
one (`choose`). Only `object_shape` reads MuJoCo (the compiled geoms, where they stand); the
rest is geometry on those solids.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import mujoco
import numpy as np

GraspKind = Literal["top", "side", "rim"]

YAWS = 12
"""Closing directions tried for top-down pinches, spread over half a turn."""
SIDE_ANGLES_DEG = (0.0, -25.0, 25.0, -50.0, 50.0)
"""Side approaches tried, turned from the line between the robot's base and the object."""
SIDE_TILTS_DEG = (0.0, 30.0, 45.0)
"""How far a side approach dips below level, to reach down to a low object from above."""
PALM_CLEARANCE_M = 0.005
"""Room kept between the object and the palm at the bottom of the jaw's gap."""
LEVEL_STEP_M = 0.01
"""Heights tried along the object, this far apart."""
WIDTH_MARGIN_M = 0.01
"""Room (m) the open jaw keeps beyond the pinched width, shared between the two sides."""
TIP_CLEARANCE_M = 0.008
"""Gap kept between the fingertips and the surface the object stands on."""
TOP_MARGIN_M = 0.01
"""A pinch this close to the object's top would hold it by the pads' edge."""
SIDE_LOW_M = 0.03
"""A level hand needs this much height above the support under the pinch."""
RIM_DEPTH_M = (0.012, 0.018, 0.025)
"""How far below a container's top its wall is pinched."""
MIN_WIDTH_M = 0.002
HANGING_FRACTION = 0.5
"""A pinch narrower than this share of the object's width along the same line is not taken."""


@dataclass(frozen=True)
class Hand:
    """What a parallel jaw offers: its opening and how far its fingers reach past the tool."""

    opening_m: float
    tip_depth_m: float
    palm_m: float
    """How far behind the tool point the palm begins: the depth of the jaw's gap."""
    friction: float = 0.5


@dataclass(frozen=True)
class ConvexSolid:
    """A convex piece as half-spaces n . x <= h (normals unit length, rows of `normals`), and
    the heights of its lowest and highest points."""

    normals: np.ndarray
    offsets: np.ndarray
    bottom: float
    top: float

    def clip(self, point: np.ndarray, direction: np.ndarray) -> tuple[float, float, int, int]:
        """Where the line point + t direction is inside: (t_in, t_out, plane in, plane out);
        t_in >= t_out when it misses."""
        along = self.normals @ direction
        room = self.offsets - self.normals @ point
        parallel = np.abs(along) < 1e-12
        if np.any(parallel & (room < 0)):
            return 0.0, -1.0, -1, -1
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(parallel, 0.0, room / np.where(parallel, 1.0, along))
        entering = ~parallel & (along < 0)
        leaving = ~parallel & (along > 0)
        t_in = np.where(entering, t, -np.inf)
        t_out = np.where(leaving, t, np.inf)
        i, o = int(np.argmax(t_in)), int(np.argmin(t_out))
        return float(t_in[i]), float(t_out[o]), i, o


@dataclass(frozen=True)
class ObjectShape:
    """An object as built, in the world frame: its convex pieces, centre of mass, support."""

    solids: tuple[ConvexSolid, ...]
    centre_of_mass: np.ndarray
    support_z: float
    """Height of the surface it stands on."""
    container: bool = False
    yaw: float = 0.0
    """The object's heading: closing directions are tried from it, square to a box's faces."""

    @property
    def top(self) -> float:
        return max(s.top for s in self.solids)

    @property
    def bottom(self) -> float:
        return min(s.bottom for s in self.solids)


@dataclass(frozen=True)
class Grasp:
    """Where the tool point goes, the closing and approach directions, the pinched width."""

    kind: GraspKind
    point: np.ndarray
    closing: np.ndarray
    approach: np.ndarray
    width_m: float
    score: float

    def record(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "width_m": round(self.width_m, 4),
            "point": [round(float(v), 4) for v in self.point],
            "closing": [round(float(v), 4) for v in self.closing],
            "approach": [round(float(v), 4) for v in self.approach],
            "score": round(self.score, 4),
        }


def _fibonacci(n: int) -> np.ndarray:
    i = np.arange(n) + 0.5
    polar = np.arccos(1 - 2 * i / n)
    azimuth = math.pi * (1 + 5**0.5) * i
    return np.column_stack(
        [np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)]
    )


def _local_directions() -> np.ndarray:
    """Axes, a ring of 48 about z and its tilts, and an even spread: a geom's own frame."""
    ring = np.linspace(0.0, 2 * math.pi, 48, endpoint=False)
    rows = [np.eye(3), -np.eye(3)]
    for z in (0.0, 0.5, -0.5):
        flat = np.column_stack([np.cos(ring), np.sin(ring), np.full(48, z)])
        rows.append(flat / np.linalg.norm(flat, axis=1, keepdims=True))
    rows.append(_fibonacci(96))
    return np.vstack(rows)


DIRECTIONS = _local_directions()


def _support_local(kind: str, size: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The support function of a primitive in its own frame, for unit directions `n` (rows)."""
    a, b, c = size
    horizontal = np.hypot(n[:, 0], n[:, 1])
    if kind == "box":
        return np.asarray(np.abs(n) @ np.array([a, b, c]))
    if kind == "sphere":
        return np.full(len(n), a)
    if kind == "cylinder":
        return np.asarray(a * horizontal + b * np.abs(n[:, 2]))
    if kind == "capsule":
        return np.asarray(a + b * np.abs(n[:, 2]))
    if kind == "ellipsoid":
        return np.asarray(np.sqrt((n * np.array([a, b, c])) ** 2 @ np.ones(3)))
    raise ValueError(f"no support function for a {kind}")


_MJ_KINDS = {
    mujoco.mjtGeom.mjGEOM_BOX: "box",
    mujoco.mjtGeom.mjGEOM_SPHERE: "sphere",
    mujoco.mjtGeom.mjGEOM_CYLINDER: "cylinder",
    mujoco.mjtGeom.mjGEOM_CAPSULE: "capsule",
    mujoco.mjtGeom.mjGEOM_ELLIPSOID: "ellipsoid",
}


def primitive_solid(
    kind: str, size: Sequence[float], position: np.ndarray, rotation: np.ndarray
) -> ConvexSolid:
    """A primitive (MuJoCo's sizes: half extents; radius; radius and half length) placed."""
    size_ = np.asarray(size, dtype=float)
    h = _support_local(kind, size_, DIRECTIONS)
    normals = DIRECTIONS @ rotation.T
    # The world's z in the geom's frame gives how far the shape reaches up and down.
    reach = float(_support_local(kind, size_, rotation[2:3, :].copy())[0])
    return ConvexSolid(
        normals, h + normals @ position, float(position[2]) - reach, float(position[2]) + reach
    )


def hull_solid(vertices: np.ndarray, faces: np.ndarray) -> ConvexSolid:
    """A convex mesh piece (world frame): the planes of its own faces, turned outward."""
    corners = vertices[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    length = np.linalg.norm(normals, axis=1)
    keep = length > 1e-12
    normals = normals[keep] / length[keep, None]
    corners = corners[keep]
    outward = np.einsum("ij,ij->i", normals, corners[:, 0] - vertices.mean(axis=0))
    normals[outward < 0] *= -1
    offsets = np.max(vertices @ normals.T, axis=0)
    return ConvexSolid(normals, offsets, float(vertices[:, 2].min()), float(vertices[:, 2].max()))


def object_shape(
    model: mujoco.MjModel,
    data: mujoco.MjData,
    body: int,
    support_z: float,
    container: bool,
) -> ObjectShape:
    """The object's colliding geoms, where they are now, as convex solids."""
    solids = []
    for g in range(model.ngeom):
        if model.geom_bodyid[g] != body or not (model.geom_contype[g] or model.geom_conaffinity[g]):
            continue
        position = data.geom_xpos[g].copy()
        rotation = data.geom_xmat[g].reshape(3, 3).copy()
        kind = int(model.geom_type[g])
        if kind == mujoco.mjtGeom.mjGEOM_MESH:
            mesh = int(model.geom_dataid[g])
            start, count = int(model.mesh_vertadr[mesh]), int(model.mesh_vertnum[mesh])
            local = model.mesh_vert[start : start + count]
            first, faces = int(model.mesh_faceadr[mesh]), int(model.mesh_facenum[mesh])
            solids.append(
                hull_solid(local @ rotation.T + position, model.mesh_face[first : first + faces])
            )
        elif kind in _MJ_KINDS:
            solids.append(primitive_solid(_MJ_KINDS[kind], model.geom_size[g], position, rotation))
    x_axis = data.xmat[body].reshape(3, 3)[:, 0]
    yaw = math.atan2(float(x_axis[1]), float(x_axis[0]))
    return ObjectShape(tuple(solids), data.xipos[body].copy(), support_z, container, yaw)


@dataclass(frozen=True)
class _Contact:
    t: float
    normal: np.ndarray


def _segments(
    shape: ObjectShape, point: np.ndarray, direction: np.ndarray
) -> list[tuple[_Contact, _Contact]]:
    """The stretches of the line inside the object, merged where pieces touch, in order."""
    spans = []
    for solid in shape.solids:
        t_in, t_out, i, o = solid.clip(point, direction)
        if t_out - t_in > 1e-6:
            spans.append((_Contact(t_in, solid.normals[i]), _Contact(t_out, solid.normals[o])))
    spans.sort(key=lambda s: s[0].t)
    merged: list[tuple[_Contact, _Contact]] = []
    for enter, leave in spans:
        if merged and enter.t <= merged[-1][1].t + 1e-4:
            if leave.t > merged[-1][1].t:
                merged[-1] = (merged[-1][0], leave)
            continue
        merged.append((enter, leave))
    return merged


def _antipodal(enter: _Contact, leave: _Contact, direction: np.ndarray, friction: float) -> bool:
    """Both pads push along the line; each surface must face its pad within the cone."""
    cos_cone = math.cos(math.atan(friction))
    return bool(-enter.normal @ direction >= cos_cone and leave.normal @ direction >= cos_cone)


def _score(
    kind: GraspKind,
    centre: np.ndarray,
    width: float,
    shape: ObjectShape,
    hand: Hand,
    height: float,
    base_xy: np.ndarray,
) -> float:
    com = shape.centre_of_mass
    size = max(height, 1e-3)
    score = -1.0 * width / hand.opening_m
    score -= 1.5 * abs(centre[2] - com[2]) / size
    score -= 1.0 * float(np.linalg.norm((centre - com)[:2])) / size
    if kind == "top":
        score += 0.2  # A straight descent is the simplest motion to get right.
    if kind == "rim":
        score += 1.0 if shape.container else -1.0
        # Of equal walls, the one nearer the robot is the easier reach.
        score -= 0.2 * float(np.linalg.norm(centre[:2] - base_xy))
    return float(score)


def _levels(low: float, high: float) -> Iterable[float]:
    if high < low:
        return []
    steps = int((high - low) / LEVEL_STEP_M)
    return [low + i * LEVEL_STEP_M for i in range(steps + 1)]


def sample_grasps(shape: ObjectShape, hand: Hand, robot_base: np.ndarray) -> list[Grasp]:
    """Every pinch that holds and fits the jaw, best first."""
    down = np.array([0.0, 0.0, -1.0])
    up = -down
    top, bottom = shape.top, shape.bottom
    height = top - bottom
    com = shape.centre_of_mass
    base_xy = np.asarray(robot_base, dtype=float)[:2]
    widest = hand.opening_m - WIDTH_MARGIN_M
    out: list[Grasp] = []

    def add(
        kind: GraspKind, a: np.ndarray, d: np.ndarray, p: np.ndarray, e: _Contact, leave: _Contact
    ) -> None:
        width = leave.t - e.t
        if not (MIN_WIDTH_M <= width <= widest) or not _antipodal(e, leave, d, hand.friction):
            return
        centre = p + d * (e.t + leave.t) / 2
        score = _score(kind, centre, width, shape, hand, height, base_xy)
        out.append(Grasp(kind, centre, d, a, width, score))

    lowest_top = max(bottom, shape.support_z) + hand.tip_depth_m + TIP_CLEARANCE_M
    # From above, everything of the object over the pinch has to fit in the jaw's gap.
    highest_top = top - TOP_MARGIN_M
    lowest_top = max(lowest_top, top - hand.palm_m + PALM_CLEARANCE_M)
    for k in range(YAWS):
        yaw = shape.yaw + math.pi * k / YAWS
        d = np.array([math.cos(yaw), math.sin(yaw), 0.0])
        for z in _levels(lowest_top, highest_top):
            p = np.array([com[0], com[1], z])
            segments = _segments(shape, p, d)
            if segments:
                add("top", down, d, p, segments[0][0], segments[-1][1])
        if shape.container:
            for depth in RIM_DEPTH_M:
                if depth > hand.palm_m - PALM_CLEARANCE_M:
                    continue
                p = np.array([com[0], com[1], top - depth])
                segments = _segments(shape, p, d)
                if len(segments) >= 2:
                    for enter, leave in segments:
                        add("rim", down, d, p, enter, leave)

    towards = com[:2] - base_xy
    if np.linalg.norm(towards) > 1e-6:
        heading = math.atan2(towards[1], towards[0])
        for angle, tilt in ((a, t) for t in SIDE_TILTS_DEG for a in SIDE_ANGLES_DEG):
            turn, dip = heading + math.radians(angle), math.radians(tilt)
            level = np.array([math.cos(turn), math.sin(turn), 0.0])
            a = math.cos(dip) * level - math.sin(dip) * up
            d = np.cross(up, level)
            for z in _levels(max(bottom, shape.support_z) + SIDE_LOW_M, highest_top):
                p = np.array([com[0], com[1], z])
                segments = _segments(shape, p, d)
                if not segments or shape.container:
                    continue
                # What of the object lies behind the pinch, toward the palm, must fit the gap.
                behind = _segments(shape, p, a)
                if behind and -behind[0][0].t > hand.palm_m - PALM_CLEARANCE_M:
                    continue
                add("side", a, d, p, segments[0][0], segments[-1][1])
    out.sort(key=lambda g: -g.score)
    across: dict[tuple[float, ...], float] = {}
    return [g for g in out if g.kind == "rim" or not _hanging(g, shape, across)]


def _hanging(grasp: Grasp, shape: ObjectShape, widest: dict[tuple[float, ...], float]) -> bool:
    """Would the object hang from a narrow part? A pinch under half as wide as the object is
    across along the same line at its widest (a bottle's neck) lets it swing: on release the
    sample bottle swung into a Robotiq finger and drove it past its stop."""
    key = tuple(np.round(grasp.closing, 3))
    if key not in widest:
        com, spans = shape.centre_of_mass, [0.0]
        for z in _levels(shape.bottom + 0.005, shape.top - 0.005):
            segments = _segments(shape, np.array([com[0], com[1], z]), grasp.closing)
            if segments:
                spans.append(segments[-1][1].t - segments[0][0].t)
        widest[key] = max(spans)
    return grasp.width_m < HANGING_FRACTION * widest[key]


def choose(
    candidates: Sequence[Grasp], clear: Callable[[Grasp], bool], limit: int = 8
) -> Grasp | None:
    """The best candidate the collision check passes, trying at most `limit` of them, each
    kind and height once (a pinch turned a little about the same line rarely changes the
    verdict, and the check costs an inverse kinematics solve)."""
    tried: set[tuple[object, ...]] = set()
    for grasp in candidates:
        heading = math.atan2(grasp.approach[1], grasp.approach[0]) if grasp.kind == "side" else 0
        key = (grasp.kind, *np.round(grasp.point * 100).astype(int), round(heading * 18 / math.pi))
        if key in tried:
            continue
        tried.add(key)
        if clear(grasp):
            return grasp
        if len(tried) >= limit:
            break
    return None
