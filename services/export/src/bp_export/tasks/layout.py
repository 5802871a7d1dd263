"""Reads a scene graph as a robot workspace: floor, supports, free spots, handles, door sweeps.

Everything here is geometry on world axis-aligned boxes (Z up, metres). A support surface is
the top face of its box; a free spot is a footprint on that face that no other object covers;
an articulated part's handle is a point on the outer face of its moving part, away from the
hinge. A part's swept region is the space it passes through between two joint values, and an
object is enclosed when it lies inside an articulated object's box behind one of its closed
parts.

The scene shows every articulated part at its closed value (see `closed_and_open`). Whether a
part is really shut over something is read from the geometry: a door or lid is closed across
an object when the part lies flush with its owner's outer face and covers the object from
outside; a part swung or pulled out in the scene does not.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from bp_scene_contract import ArticulationJoint, Box, SceneGraph, SceneNode, Vec3, authored_handle

SHELL_ROLES = frozenset({"scene_shell", "background"})
FIXTURE_ROLES = frozenset({"static", "articulated_furniture", "articulated_appliance"})
SUPPORT_WORDS = (
    "table", "desk", "counter", "countertop", "shelf", "island", "bench", "workbench",
    "nightstand", "sideboard", "dresser", "cart", "stand", "tray",
)  # fmt: skip
RESTING_TOLERANCE = 0.03
"""How far (m) an object's bottom may sit from a surface top and still rest on it."""
FLUSH_TOLERANCE = 0.02
"""How far (m) a closed part's outer face may sit from its owner's box face."""
SWEEP_STEP = math.radians(5.0)
"""Angle between the sampled poses of a swinging part; the arc between two samples bulges
past their hull by under a millimetre for a 1 m door."""


def is_graspable(node: SceneNode) -> bool:
    """A loose object a gripper can pick up: graspable or manipulable, and not fixed."""
    if node.is_static or node.sim_role in SHELL_ROLES | FIXTURE_ROLES:
        return False
    return node.has_affordance("Graspable") or node.sim_role == "manipulable_object"


def is_container(node: SceneNode) -> bool:
    return node.has_affordance("Containable") and node.sim_role not in SHELL_ROLES


def articulated_joints(node: SceneNode) -> tuple[ArticulationJoint, ...]:
    return node.articulation.joints if node.articulation is not None else ()


def _looks_like_support(node: SceneNode) -> bool:
    words = node.name.split()
    return any(word in words for word in SUPPORT_WORDS)


@dataclass(frozen=True)
class SweptRegion:
    """The space a moving part passes through between two joint values.

    Seen from above it is a union of convex footprints (each the hull of two neighbouring
    sampled poses of the part), spanning `z_min` to `z_max`. Treating it as a prism over that
    height range is exact for a door on a vertical hinge and errs on the safe side otherwise.
    """

    owner: str
    joint: str
    footprints: tuple[np.ndarray, ...]
    """Convex polygons, counter-clockwise, each an (n, 2) array of x, y vertices."""
    z_min: float
    z_max: float

    @property
    def bbox(self) -> Box:
        points = np.vstack(self.footprints)
        lo, hi = points.min(axis=0), points.max(axis=0)
        return Box(
            min=(float(lo[0]), float(lo[1]), self.z_min),
            max=(float(hi[0]), float(hi[1]), self.z_max),
        )

    def distance_xy(self, x: float, y: float) -> float:
        """Horizontal distance from (x, y) to the region's footprint (0 inside it)."""
        return float(self.distances_xy(np.array([[x, y]]))[0])

    def distances_xy(self, points: np.ndarray) -> np.ndarray:
        """`distance_xy` of each row of an (n, 2) array."""
        each = [_polygon_distances(poly, points) for poly in self.footprints]
        return np.asarray(np.min(each, axis=0))

    def distances(self, points: np.ndarray) -> np.ndarray:
        """Distance from each row of an (n, 3) array to the region."""
        dz = np.maximum(np.maximum(self.z_min - points[:, 2], points[:, 2] - self.z_max), 0.0)
        return np.asarray(np.hypot(self.distances_xy(points[:, :2]), dz))

    def overlaps(self, box: Box, margin: float = 0.0) -> bool:
        """True when `box`, grown by `margin`, shares volume with the region."""
        if box.max[2] + margin <= self.z_min or box.min[2] - margin >= self.z_max:
            return False
        rect = np.array(
            [
                (box.min[0] - margin, box.min[1] - margin),
                (box.max[0] + margin, box.min[1] - margin),
                (box.max[0] + margin, box.max[1] + margin),
                (box.min[0] - margin, box.max[1] + margin),
            ]
        )
        return any(_convex_polygons_overlap(poly, rect) for poly in self.footprints)


@dataclass(frozen=True)
class SceneLayout:
    """The scene's workspace facts, computed once per scene graph."""

    graph: SceneGraph
    floor_z: float
    supports: tuple[SceneNode, ...]
    resting_on: dict[str, str]
    """asset_id of a loose object -> asset_id of what it rests on."""
    sweeps: tuple[SweptRegion, ...] = ()
    """Every articulated part's sweep over its whole joint range: where a robot must not stand."""

    def node(self, asset_id: str) -> SceneNode:
        return self.graph.node(asset_id)

    def obstacles(self) -> list[SceneNode]:
        """Nodes a robot base must keep clear of: all but floor slabs and room enclosures."""
        others = [n for n in self.graph.nodes if n.sim_role not in SHELL_ROLES]
        out = []
        for node in self.graph.nodes:
            if node.sim_role in SHELL_ROLES:
                if node.bbox.max[2] <= self.floor_z + 0.05:
                    continue
                if others and all(node.bbox.contains_point(o.bbox.centre) for o in others):
                    continue
            out.append(node)
        return out


def floor_height(graph: SceneGraph) -> float:
    """Top of the floor slab if the scene has one, else the lowest object bottom (or 0)."""
    solid = [n for n in graph.nodes if n.sim_role not in SHELL_ROLES]
    lowest = min((n.bbox.min[2] for n in solid), default=0.0)
    slabs = [
        n.bbox.max[2]
        for n in graph.nodes
        if n.sim_role in SHELL_ROLES and n.size[2] < 0.1 and n.bbox.max[2] <= lowest + 0.05
    ]
    return max(slabs) if slabs else lowest


def _support_by_geometry(graph: SceneGraph, item: SceneNode) -> SceneNode | None:
    best: SceneNode | None = None
    for other in graph.nodes:
        if other.asset_id == item.asset_id or other.sim_role in SHELL_ROLES:
            continue
        top = other.bbox.max[2]
        if abs(top - item.bbox.min[2]) > RESTING_TOLERANCE or not other.bbox.overlaps_xy(item.bbox):
            continue
        gap = abs(top - item.bbox.min[2])
        if best is None or (gap, -top) < (
            abs(best.bbox.max[2] - item.bbox.min[2]),
            -best.bbox.max[2],
        ):
            best = other
    return best


def build_layout(graph: SceneGraph) -> SceneLayout:
    """Find the floor, what every loose object rests on, and every support surface."""
    resting: dict[str, str] = {}
    for node in graph.nodes:
        if not is_graspable(node):
            continue
        edges = sorted(
            (e for e in graph.edges
             if e.source == node.asset_id and e.relation in ("on", "stacked", "in")),
            key=lambda e: (-e.confidence, e.target),
        )  # fmt: skip
        if edges:
            resting[node.asset_id] = edges[0].target
            continue
        below = _support_by_geometry(graph, node)
        if below is not None:
            resting[node.asset_id] = below.asset_id
    floor = floor_height(graph)
    carrying = set(resting.values())
    supports = []
    for node in graph.nodes:
        if is_graspable(node) or node.sim_role in SHELL_ROLES:
            continue
        if node.bbox.xy_area() < 0.04 or node.bbox.max[2] <= floor + 0.05:
            continue
        if node.asset_id in carrying or _looks_like_support(node):
            supports.append(node)
    supports.sort(key=lambda n: n.asset_id)
    sweeps = tuple(
        swept_region(node, joint, joint.lower, joint.upper)
        for node in sorted(graph.nodes, key=lambda n: n.asset_id)
        for joint in articulated_joints(node)
    )
    return SceneLayout(
        graph, floor, tuple(supports), {k: resting[k] for k in sorted(resting)}, sweeps
    )


def occupants(layout: SceneLayout, box: Box, exclude: Sequence[str] = ()) -> list[SceneNode]:
    """Objects (not floor slabs or room shells) whose boxes reach more than 2 mm into `box`."""
    return [
        node
        for node in layout.graph.nodes
        if node.asset_id not in exclude
        and node.sim_role not in SHELL_ROLES
        and node.bbox.overlaps(box, margin=-0.002)
    ]


def neighbours_within(
    layout: SceneLayout, box: Box, radius: float, exclude: Sequence[str] = ()
) -> list[SceneNode]:
    """Loose objects whose footprint lies within `radius` of `box`'s footprint at its height."""
    out = []
    for node in layout.graph.nodes:
        if node.asset_id in exclude or not is_graspable(node):
            continue
        if node.bbox.overlaps(box, margin=radius):
            out.append(node)
    return out


def free_spot(
    layout: SceneLayout,
    support: SceneNode,
    item: SceneNode,
    *,
    margin: float = 0.02,
    edge_margin: float = 0.03,
    min_travel: float = 0.12,
    step: float = 0.01,
) -> Box | None:
    """Where `item` could stand on `support` without touching anything (a world box), or None.

    The box spans the item's footprint grown by `margin`, from the support top up the item's
    height. Spots closer than `min_travel` to where the item stands now are refused, so the
    task needs real motion. Among free spots the one with most clearance (up to 8 cm) nearest
    the surface centre wins; the grid is fixed, so the same scene gives the same spot.
    """
    sx = item.bbox.size[0] + 2 * margin
    sy = item.bbox.size[1] + 2 * margin
    height = item.bbox.size[2]
    top = support.bbox.max[2]
    lo_x, hi_x = (
        support.bbox.min[0] + edge_margin + sx / 2,
        support.bbox.max[0] - edge_margin - sx / 2,
    )
    lo_y, hi_y = (
        support.bbox.min[1] + edge_margin + sy / 2,
        support.bbox.max[1] - edge_margin - sy / 2,
    )
    if lo_x > hi_x or lo_y > hi_y:
        return None
    xs = np.arange(lo_x, hi_x + 1e-9, step) if hi_x > lo_x else np.array([lo_x])
    ys = np.arange(lo_y, hi_y + 1e-9, step) if hi_y > lo_y else np.array([lo_y])
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    cx, cy = gx.ravel(), gy.ravel()
    clearance = np.full(cx.shape, 0.08)
    layer = Box(min=(support.bbox.min[0], support.bbox.min[1], top + 0.005),
                 max=(support.bbox.max[0], support.bbox.max[1], top + height + 0.005))  # fmt: skip
    for other in layout.graph.nodes:
        if other.asset_id in (item.asset_id, support.asset_id) or other.sim_role in SHELL_ROLES:
            continue
        if not other.bbox.overlaps(layer):
            continue
        gap_x = np.maximum(np.abs(cx - other.bbox.centre[0]) - (sx + other.bbox.size[0]) / 2, 0)
        gap_y = np.maximum(np.abs(cy - other.bbox.centre[1]) - (sy + other.bbox.size[1]) / 2, 0)
        overlapping = (np.abs(cx - other.bbox.centre[0]) < (sx + other.bbox.size[0]) / 2) & (
            np.abs(cy - other.bbox.centre[1]) < (sy + other.bbox.size[1]) / 2
        )
        clearance = np.minimum(clearance, np.where(overlapping, -1.0, np.hypot(gap_x, gap_y)))
    here = item.bbox.centre
    travel = np.hypot(cx - here[0], cy - here[1])
    valid = (clearance >= 0) & (travel >= min_travel)
    if not valid.any():
        return None
    centre = support.bbox.centre
    score = clearance - 0.3 * np.hypot(cx - centre[0], cy - centre[1])
    score = np.where(valid, np.round(score, 6), -np.inf)
    best = int(np.argmax(score))
    x, y = float(cx[best]), float(cy[best])
    return Box(min=(x - sx / 2, y - sy / 2, top), max=(x + sx / 2, y + sy / 2, top + height))


def container_interior(container: SceneNode, wall: float = 0.01) -> Box:
    """The space inside a container's box, inset by its wall thickness."""
    box = container.bbox
    inset_x = min(wall, box.size[0] * 0.1)
    inset_y = min(wall, box.size[1] * 0.1)
    return Box(
        min=(box.min[0] + inset_x, box.min[1] + inset_y, box.min[2] + min(wall, box.size[2] * 0.1)),
        max=(box.max[0] - inset_x, box.max[1] - inset_y, box.max[2]),
    )


def _vec3(v: np.ndarray) -> Vec3:
    return (float(v[0]), float(v[1]), float(v[2]))


def _rotate_about(point: Vec3, anchor: Vec3, axis: Vec3, angle: float) -> Vec3:
    p = np.asarray(point) - np.asarray(anchor)
    k = np.asarray(axis)
    rotated = (
        p * math.cos(angle)
        + np.cross(k, p) * math.sin(angle)
        + k * np.dot(k, p) * (1 - math.cos(angle))
    )
    out = rotated + np.asarray(anchor)
    return (float(out[0]), float(out[1]), float(out[2]))


def face_axis(joint: ArticulationJoint) -> int:
    """The world axis the part's outer face looks along: a drawer's slide axis, or the thinnest
    extent of a door across its hinge."""
    axis = np.asarray(joint.unit_axis)
    if joint.type == "prismatic":
        return int(np.argmax(np.abs(axis)))
    size = joint.moving_part_bbox.size
    candidates = [i for i in range(3) if abs(axis[i]) < 0.7]
    return min(candidates, key=lambda i: size[i])


def handle_pose(
    owner: SceneNode, joint: ArticulationJoint, value: float, closed_value: float
) -> tuple[Vec3, Vec3]:
    """Handle position and gripper approach of `joint` at joint value `value`.

    The scene shows the part at its closed value. The handle is the part's authored handle
    where it has one (the shape the simulator's hand takes); otherwise it sits 3 cm proud of
    the part's outer face (the face away from the owner's centre), at mid-height along the hinge
    and 5 cm from the edge farthest from it for a door, at the face centre for a drawer, where
    the simulator puts its bar.
    """
    part = joint.moving_part_bbox
    axis = np.asarray(joint.unit_axis)
    body = np.asarray(owner.bbox.centre)
    centre = np.asarray(part.centre)
    size = np.asarray(part.size)
    k = face_axis(joint)
    normal = np.zeros(3)
    normal[k] = 1.0 if centre[k] >= body[k] else -1.0
    handle = centre + normal * (size[k] / 2 + 0.03)
    authored = authored_handle(owner, joint)
    if authored is not None:
        handle = np.asarray(authored.world_box()[0])
    elif joint.type == "revolute":
        anchor = np.asarray(joint.anchor)
        width_dirs = [i for i in range(3) if i != k and abs(axis[i]) < 0.7]
        if width_dirs:
            w = width_dirs[0]
            far = (
                part.max[w]
                if abs(part.max[w] - anchor[w]) >= abs(part.min[w] - anchor[w])
                else part.min[w]
            )
            inward = -1.0 if far > centre[w] else 1.0
            handle[w] = far + inward * min(0.05, size[w] / 4)
        along = int(np.argmax(np.abs(axis)))
        handle[along] = centre[along]
    if joint.type == "revolute":
        angle = value - closed_value
        moved = _rotate_about(_vec3(handle), joint.anchor, joint.unit_axis, angle)
        approach = _rotate_about(_vec3(-normal), (0.0, 0.0, 0.0), joint.unit_axis, angle)
        return moved, approach
    shift = axis * (value - closed_value)
    moved_p = handle + shift
    return (
        (float(moved_p[0]), float(moved_p[1]), float(moved_p[2])),
        (float(-normal[0]), float(-normal[1]), float(-normal[2])),
    )


def handle_closing(owner: SceneNode, joint: ArticulationJoint, approach: Vec3) -> Vec3:
    """The line a hand closes along to take the part's handle coming in along `approach`:
    level across a vertical bar, vertical across a level one. A bar is vertical when the
    authored handle stands taller than it is wide, or, with none authored, on a door (the
    simulator's bar runs along a door's edge and across a drawer's front)."""
    authored = authored_handle(owner, joint)
    if authored is not None:
        _, (ex, ey, ez) = authored.world_box()
        vertical = ez >= max(ex, ey)
    else:
        vertical = joint.type == "revolute"
    if not vertical:
        return (0.0, 0.0, 1.0)
    across = np.cross([0.0, 0.0, 1.0], approach)
    across /= np.linalg.norm(across)
    return (float(across[0]), float(across[1]), float(across[2]))


def closed_and_open(joint: ArticulationJoint) -> tuple[float, float]:
    """(closed, fully open) joint values: closed is the limit nearest zero, the scene's state."""
    if abs(joint.lower) <= abs(joint.upper):
        return joint.lower, joint.upper
    return joint.upper, joint.lower


def part_corners(joint: ArticulationJoint, value: float) -> np.ndarray:
    """The eight corners (8 x 3) of the moving part's box with the joint at `value`."""
    closed, _ = closed_and_open(joint)
    part = joint.moving_part_bbox
    corners = np.array(
        [(x, y, z) for x in (part.min[0], part.max[0]) for y in (part.min[1], part.max[1])
         for z in (part.min[2], part.max[2])]
    )  # fmt: skip
    axis = np.asarray(joint.unit_axis)
    if joint.type == "prismatic":
        return corners + axis * (value - closed)
    angle = value - closed
    p = corners - np.asarray(joint.anchor)
    rotated = (
        p * math.cos(angle)
        + np.cross(axis, p) * math.sin(angle)
        + np.outer(p @ axis, axis) * (1 - math.cos(angle))
    )
    return np.asarray(rotated + np.asarray(joint.anchor))


def swept_region(
    owner: SceneNode, joint: ArticulationJoint, start: float, end: float
) -> SweptRegion:
    """Where `joint`'s part passes between joint values `start` and `end`."""
    if joint.type == "prismatic":
        values = [start, end]
    else:
        steps = max(1, math.ceil(abs(end - start) / SWEEP_STEP))
        values = [start + (end - start) * i / steps for i in range(steps + 1)]
    poses = [part_corners(joint, v) for v in values]
    if len(poses) == 1:
        poses.append(poses[0])
    footprints = tuple(
        _convex_hull(np.vstack((a[:, :2], b[:, :2]))) for a, b in itertools.pairwise(poses)
    )
    z = np.vstack(poses)[:, 2]
    return SweptRegion(owner.asset_id, joint.name, footprints, float(z.min()), float(z.max()))


@dataclass(frozen=True)
class Enclosure:
    """An articulated object shutting something in with one of its closed parts."""

    owner: SceneNode
    joint: ArticulationJoint

    def describe(self) -> str:
        part = "drawer" if self.joint.type == "prismatic" else "door"
        return f"{part} {self.joint.name} of {self.owner.asset_id}"


def enclosure(layout: SceneLayout, box: Box, exclude: Sequence[str] = ()) -> Enclosure | None:
    """The closed part that shuts `box` inside an articulated object, or None if nothing does.

    `box` is enclosed when its centre lies inside the owner's box, it does not stand on the
    owner's top, and a part of the owner is closed across it: the part's box holds the centre (a
    closed drawer, or a part whose geometry the scene does not give), or the part lies flush
    with the owner's outer face and covers the centre from outside (a closed door or lid).
    """
    centre = box.centre
    for owner in sorted(layout.graph.nodes, key=lambda n: n.asset_id):
        joints = articulated_joints(owner)
        if owner.asset_id in exclude or not joints or not owner.bbox.contains_point(centre):
            continue
        if box.min[2] >= owner.bbox.max[2] - RESTING_TOLERANCE:
            continue
        for joint in joints:
            if _closed_across(owner, joint, centre):
                return Enclosure(owner, joint)
    return None


def _closed_across(owner: SceneNode, joint: ArticulationJoint, point: Vec3) -> bool:
    part = joint.moving_part_bbox
    if part.contains_point(point):
        return True
    k = face_axis(joint)
    outward = 1.0 if part.centre[k] >= owner.bbox.centre[k] else -1.0
    part_face = part.max[k] if outward > 0 else part.min[k]
    owner_face = owner.bbox.max[k] if outward > 0 else owner.bbox.min[k]
    flush = abs(part_face - owner_face) <= FLUSH_TOLERANCE
    behind = (point[k] - part.centre[k]) * outward < 0
    across = all(
        part.min[i] - FLUSH_TOLERANCE <= point[i] <= part.max[i] + FLUSH_TOLERANCE
        for i in range(3)
        if i != k
    )
    return flush and behind and across


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex hull of 2-D points (Andrew's monotone chain)."""
    pts = sorted({(round(float(x), 9), round(float(y), 9)) for x, y in points})
    if len(pts) <= 2:
        return np.array(pts, dtype=float)

    def cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1], dtype=float)


def _polygon_distances(poly: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance from each row of an (n, 2) array to a counter-clockwise convex polygon (0 inside
    or on it)."""
    edge = np.roll(poly, -1, axis=0) - poly
    to_p = points[:, None, :] - poly[None, :, :]
    t = np.clip(
        np.einsum("nmk,mk->nm", to_p, edge) / np.maximum(np.einsum("mk,mk->m", edge, edge), 1e-18),
        0.0,
        1.0,
    )
    gap = to_p - edge[None, :, :] * t[:, :, None]
    outside = np.linalg.norm(gap, axis=2).min(axis=1)
    if len(poly) < 3:
        return np.asarray(outside)
    cross = edge[None, :, 0] * to_p[:, :, 1] - edge[None, :, 1] * to_p[:, :, 0]
    return np.asarray(np.where(np.all(cross >= -1e-12, axis=1), 0.0, outside))


def _convex_polygons_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test of two convex polygons; touching edges do not overlap."""
    for poly in (a, b):
        if len(poly) < 2:
            continue
        edges = np.roll(poly, -1, axis=0) - poly
        for ex, ey in edges:
            normal = np.array([-ey, ex])
            pa, pb = a @ normal, b @ normal
            if pa.max() <= pb.min() + 1e-12 or pb.max() <= pa.min() + 1e-12:
                return False
    return True
