"""How far an object sinks into a container authored as a collision mesh (a bowl's shell).

A container's box says nothing about the shape inside: a bowl 8 cm across may open only 7 cm at
its rim and narrow to 3 cm at its floor. Its collision mesh does say. Seen from above, an object
covers a disc around the container's axis as wide as its footprint's farthest point; it comes
to rest on the highest point of the container's surface inside that disc (with a margin). The
object is in when its centre then stands no higher than the rim.

Measured at the mesh's vertices: a shell of few, large triangles could let an object reach a
little lower between them than this says, never higher.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from bp_scene_contract import SceneNode, Shape


@dataclass(frozen=True)
class Fit:
    """Where an object would come to rest in a container, measured on the authored shape."""

    footprint_m: float
    """Diameter of the smallest disc about the object's axis that holds its footprint."""
    opening_m: float
    """Inner diameter of the container at its rim."""
    rest_bottom_m: float
    """Height of the object's bottom, once at rest, above the container's bottom."""
    depth_m: float
    """Height of the rim above the container's bottom."""
    centre_m: float
    """Height of the object's centre, at rest, above the container's bottom."""

    @property
    def fits(self) -> bool:
        return self.rest_bottom_m < self.depth_m - 1e-6 and self.centre_m <= self.depth_m


def _rotation(orientation: tuple[float, float, float, float]) -> np.ndarray:
    w, x, y, z = orientation
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def _outline(shape: Shape) -> np.ndarray:
    """Points of the shape's surface (world frame) that bound its footprint and its height."""
    a, b, c = shape.size
    if shape.kind == "mesh":
        assert shape.mesh is not None
        local = np.asarray(shape.mesh.vertices, dtype=float)
    elif shape.kind == "box":
        local = np.array(
            [[sx * a, sy * b, sz * c] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
        )
    else:
        # Round kinds about their z: rings at both ends (and the caps of a capsule).
        ring = np.linspace(0.0, 2 * math.pi, 32, endpoint=False)
        radius_x, radius_y = a, (b if shape.kind in ("ellipsoid",) else a)
        half = {"sphere": a, "ellipsoid": c, "cylinder": c, "capsule": c + a}[shape.kind]
        rings = [
            np.column_stack([radius_x * np.cos(ring), radius_y * np.sin(ring), np.full(32, z)])
            for z in (-half, 0.0, half)
        ]
        local = np.vstack(rings)
    return np.asarray(local @ _rotation(shape.pose.orientation).T + np.asarray(shape.pose.position))


def _axis(node: SceneNode) -> np.ndarray:
    return np.asarray(node.bbox.centre[:2], dtype=float)


def footprint_radius(item: SceneNode) -> float:
    """How far the item reaches from its vertical axis: from its shapes, else its box."""
    shapes = [s for s in item.shapes if s.collision]
    if not shapes:
        return math.hypot(item.bbox.size[0], item.bbox.size[1]) / 2
    points = np.vstack([_outline(s) for s in shapes])
    return float(np.max(np.linalg.norm(points[:, :2] - _axis(item), axis=1)))


def authored_fit(item: SceneNode, container: SceneNode, margin: float) -> Fit | None:
    """Where `item` would rest in `container`, or None when the container has no collision
    mesh (its box, less its walls, is then all there is to go by)."""
    meshes = [s for s in container.shapes if s.kind == "mesh" and s.collision]
    if not meshes:
        return None
    points = np.vstack([_outline(s) for s in meshes])
    bottom, rim = float(points[:, 2].min()), float(points[:, 2].max())
    radial = np.linalg.norm(points[:, :2] - _axis(container), axis=1)
    reach = footprint_radius(item)
    # The inner rim: the narrowest the container is within the top centimetre of its wall.
    near_rim = points[:, 2] >= rim - 0.01
    opening = 2 * float(radial[near_rim].min())
    under = radial < reach + margin
    rest = float(points[under, 2].max()) - bottom if np.any(under) else 0.0
    height = item.bbox.size[2]
    return Fit(
        footprint_m=2 * reach,
        opening_m=opening,
        rest_bottom_m=rest,
        depth_m=rim - bottom,
        centre_m=rest + height / 2,
    )
