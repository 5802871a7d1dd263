"""Reads a scene graph as a robot workspace: floor, support surfaces, free spots, handles.

Everything here is geometry on world axis-aligned boxes (Z up, metres). A support surface is
the top face of its box; a free spot is a footprint on that face that no other object covers;
an articulated part's handle is a point on the outer face of its moving part, away from the
hinge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bp_export.graph_model import Aabb, ArticulationJoint, SceneGraph, SceneNode, Vec3

SHELL_ROLES = frozenset({"scene_shell", "background"})
FIXTURE_ROLES = frozenset({"static", "articulated_furniture", "articulated_appliance"})
SUPPORT_WORDS = (
    "table", "desk", "counter", "countertop", "shelf", "island", "bench", "workbench",
    "nightstand", "sideboard", "dresser", "cart", "stand", "tray",
)  # fmt: skip
RESTING_TOLERANCE = 0.03
"""How far (m) an object's bottom may sit from a surface top and still rest on it."""


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
class SceneLayout:
    """The scene's workspace facts, computed once per scene graph."""

    graph: SceneGraph
    floor_z: float
    supports: tuple[SceneNode, ...]
    resting_on: dict[str, str]
    """asset_id of a loose object -> asset_id of what it rests on."""

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
    return SceneLayout(graph, floor, tuple(supports), {k: resting[k] for k in sorted(resting)})


def neighbours_within(
    layout: SceneLayout, box: Aabb, radius: float, exclude: Sequence[str] = ()
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
) -> Aabb | None:
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
    layer = Aabb(min=(support.bbox.min[0], support.bbox.min[1], top + 0.005),
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
    return Aabb(min=(x - sx / 2, y - sy / 2, top), max=(x + sx / 2, y + sy / 2, top + height))


def container_interior(container: SceneNode, wall: float = 0.01) -> Aabb:
    """The space inside a container's box, inset by its wall thickness."""
    box = container.bbox
    inset_x = min(wall, box.size[0] * 0.1)
    inset_y = min(wall, box.size[1] * 0.1)
    return Aabb(
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


def handle_pose(
    owner: SceneNode, joint: ArticulationJoint, value: float, closed_value: float
) -> tuple[Vec3, Vec3]:
    """Handle position and gripper approach of `joint` at joint value `value`.

    The scene shows the part at its closed value. The handle sits 3 cm proud of the part's
    outer face (the face away from the owner's centre), at mid-height along the hinge and 5 cm
    from the edge farthest from it for a door; at the face centre for a drawer.
    """
    part = joint.moving_part_bbox
    axis = np.asarray(joint.axis)
    body = np.asarray(owner.bbox.centre)
    centre = np.asarray(part.centre)
    size = np.asarray(part.size)
    if joint.type == "prismatic":
        k = int(np.argmax(np.abs(axis)))
    else:
        candidates = [i for i in range(3) if abs(axis[i]) < 0.7]
        k = min(candidates, key=lambda i: size[i])
    normal = np.zeros(3)
    normal[k] = 1.0 if centre[k] >= body[k] else -1.0
    handle = centre + normal * (size[k] / 2 + 0.03)
    if joint.type == "revolute":
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
        angle = value - closed_value
        moved = _rotate_about(_vec3(handle), joint.anchor, joint.axis, angle)
        approach = _rotate_about(_vec3(-normal), (0.0, 0.0, 0.0), joint.axis, angle)
        return moved, approach
    shift = axis * (value - closed_value)
    moved_p = handle + shift
    return (
        (float(moved_p[0]), float(moved_p[1]), float(moved_p[2])),
        (float(-normal[0]), float(-normal[1]), float(-normal[2])),
    )


def closed_and_open(joint: ArticulationJoint) -> tuple[float, float]:
    """(closed, fully open) joint values: closed is the limit nearest zero, the scene's state."""
    if abs(joint.lower) <= abs(joint.upper):
        return joint.lower, joint.upper
    return joint.upper, joint.lower
