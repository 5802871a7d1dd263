"""Tight axis-aligned boxes of USD geometric primitives under a transform.

`UsdGeom.BBoxCache` rotates each prim's local extent box, which inflates the world box of any
rotated shape (a tilted sphere's box sinks into the floor it rests on). Support relations need
the real lowest point, so boxes here come from the geometry itself: mesh points, cube corners,
and closed forms for spheres, cylinders, capsules and cones (exact under any affine transform).
Other prim types fall back to the extent box.
"""

from __future__ import annotations

import math

import numpy as np
from pxr import Gf, Usd, UsdGeom

from bp_export.scene.model import Box3

_AXIS_INDEX = {"X": 0, "Y": 1, "Z": 2}


def tight_box(
    prim: Usd.Prim, local_to_target: Gf.Matrix4d, bounds: UsdGeom.BBoxCache
) -> Box3 | None:
    """The box of `prim`'s own geometry in the target space, or None if it has none."""
    m = np.array([[local_to_target[r][c] for c in range(4)] for r in range(4)], dtype=float)
    linear, offset = m[:3, :3], m[3, :3]
    if prim.IsA(UsdGeom.Cube):
        half = _attr(prim, "size", 2.0) / 2
        corners = np.array(
            [[x, y, z] for x in (-half, half) for y in (-half, half) for z in (-half, half)]
        )
        return _points_box(corners, linear, offset)
    if prim.IsA(UsdGeom.Sphere):
        return _sphere_box(np.zeros(3), _attr(prim, "radius", 1.0), linear, offset)
    if str(prim.GetTypeName()) in ("Cylinder", "Capsule", "Cone"):
        return _round_shape_box(prim, linear, offset)
    if prim.IsA(UsdGeom.Plane):
        axis = str(UsdGeom.Plane(prim).GetAxisAttr().Get() or "Z")
        w, length = _attr(prim, "width", 2.0) / 2, _attr(prim, "length", 2.0) / 2
        u, v = [i for i in range(3) if i != _AXIS_INDEX.get(axis, 2)]
        corners = np.zeros((4, 3))
        for k, (a, b) in enumerate(((-w, -length), (w, -length), (w, length), (-w, length))):
            corners[k, u], corners[k, v] = a, b
        return _points_box(corners, linear, offset)
    if prim.IsA(UsdGeom.PointBased):
        points = UsdGeom.PointBased(prim).GetPointsAttr().Get()
        if points is not None and len(points):
            return _points_box(np.asarray(points, dtype=float), linear, offset)
        return None
    bound = bounds.ComputeUntransformedBound(prim)
    if bound.GetRange().IsEmpty():
        return None
    aligned = Gf.BBox3d(bound.GetRange(), bound.GetMatrix() * local_to_target).ComputeAlignedRange()
    lo, hi = aligned.GetMin(), aligned.GetMax()
    return Box3((lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2]))


def _attr(prim: Usd.Prim, name: str, fallback: float) -> float:
    value = prim.GetAttribute(name).Get()
    return float(value) if value is not None else fallback


def _points_box(points: np.ndarray, linear: np.ndarray, offset: np.ndarray) -> Box3:
    world = points @ linear + offset
    lo, hi = world.min(axis=0), world.max(axis=0)
    return Box3(_vec(lo), _vec(hi))


def _sphere_box(center: np.ndarray, radius: float, linear: np.ndarray, offset: np.ndarray) -> Box3:
    # An affine image of a sphere is an ellipsoid whose half-extent on world axis i is the
    # radius times the length of column i of the linear part.
    c = center @ linear + offset
    half = radius * np.sqrt((linear**2).sum(axis=0))
    return Box3(_vec(c - half), _vec(c + half))


def _disc_box(
    center: np.ndarray,
    radius: float,
    u: np.ndarray,
    v: np.ndarray,
    linear: np.ndarray,
    offset: np.ndarray,
) -> Box3:
    c = center @ linear + offset
    half = radius * np.sqrt((u @ linear) ** 2 + (v @ linear) ** 2)
    return Box3(_vec(c - half), _vec(c + half))


def _round_shape_box(prim: Usd.Prim, linear: np.ndarray, offset: np.ndarray) -> Box3:
    type_name = str(prim.GetTypeName())
    axis_index = _AXIS_INDEX.get(str(prim.GetAttribute("axis").Get() or "Z"), 2)
    axis = np.eye(3)[axis_index]
    u, v = (np.eye(3)[i] for i in range(3) if i != axis_index)
    radius = _attr(prim, "radius", 1.0 if type_name != "Capsule" else 0.5)
    height = _attr(prim, "height", 2.0 if type_name != "Capsule" else 1.0)
    top, bottom = axis * height / 2, -axis * height / 2
    if type_name == "Capsule":
        return _sphere_box(top, radius, linear, offset).union(
            _sphere_box(bottom, radius, linear, offset)
        )
    base = _disc_box(bottom, radius, u, v, linear, offset)
    if type_name == "Cone":
        apex = top @ linear + offset
        return base.union(Box3(_vec(apex), _vec(apex)))
    return base.union(_disc_box(top, radius, u, v, linear, offset))


def _vec(values: np.ndarray) -> tuple[float, float, float]:
    return (float(values[0]), float(values[1]), float(values[2]))


def is_degenerate(box: Box3, epsilon: float) -> bool:
    """True for a box that is a point or a line (two or more extents at most `epsilon`)."""
    return sum(1 for extent in box.size if extent <= epsilon or math.isnan(extent)) >= 2
