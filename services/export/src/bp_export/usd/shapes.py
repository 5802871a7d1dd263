"""Each authored geometric prim as a shape in the pipeline frame: its true kind, pose, size, colour.

A prim's world matrix (already in the pipeline's Z-up metre frame, so any up axis and unit) is
split into a rotation and per-axis scales. Cubes become boxes, spheres spheres (ellipsoids when
scaled unevenly), cylinders and capsules keep their radius and length with their axis turned
onto the shape's z, and meshes keep their triangles with the whole linear transform baked into
the vertices, so that any scale, shear or mirroring is kept. Colour comes from `displayColor`,
else from the diffuse colour of a bound UsdPreviewSurface; a seen mesh whose diffuse colour is
read from a texture carries the image and its texture coordinates (bp_export.usd.textures).
"""

from __future__ import annotations

import hashlib
import itertools
import math

import numpy as np
from bp_scene_contract import MeshData, Pose, Shape, ShapeKind, Texture, Vec3
from pxr import Gf, Usd, UsdGeom

from bp_export.scene_errors import ZeroSizeObject
from bp_export.usd.textures import bound_preview_surface, corner_uv, diffuse_texture, texture_record
from bp_export.usd.world_frame import _quaternion_from_rotation

MAX_MESH_VERTICES = 50_000
"""Larger meshes are left to the node's box: the scene graph stays a document, not an asset."""

_AXIS_TURN = {
    # A rotation taking the shape's z onto the authored axis.
    "X": np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]]),
    "Y": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),
    "Z": np.eye(3),
}


def _linear_and_offset(matrix: Gf.Matrix4d) -> tuple[np.ndarray, np.ndarray]:
    """Column-vector linear part and translation of a (row-vector) Gf matrix."""
    m = np.array([[matrix[r][c] for c in range(4)] for r in range(4)], dtype=float)
    return m[:3, :3].T, m[3, :3]


def _rotation_and_scale(linear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """linear = rotation @ diag(scale), the nearest proper rotation, scales positive."""
    scale = np.linalg.norm(linear, axis=0)
    rotation = linear / np.where(scale > 0, scale, 1.0)
    u, _, vt = np.linalg.svd(rotation)
    if np.linalg.det(u @ vt) < 0:
        u[:, -1] = -u[:, -1]
    return u @ vt, scale


def _quarter_turns() -> tuple[np.ndarray, ...]:
    """The 24 turns that map the axes onto the axes."""
    turns = []
    for order in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            turn = np.zeros((3, 3))
            turn[range(3), order] = signs
            if np.linalg.det(turn) > 0:
                turns.append(turn)
    return tuple(turns)


_QUARTER_TURNS = _quarter_turns()


def _least_turned(rotation: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A box or ellipsoid turned by quarter turns about its axes is the same solid with its
    sizes swapped. Of those equal forms, the one turned least: one form whatever the up axis
    the scene was authored in."""
    quarter = max(_QUARTER_TURNS, key=lambda turn: float(np.trace(rotation @ turn.T)))
    return rotation @ quarter.T, np.abs(quarter) @ size


def _along_axis(rotation: np.ndarray) -> np.ndarray:
    """A round solid is fixed by its axis alone (turning about it, or end for end, changes
    nothing): the shortest turn from z onto the axis, pointed upwards."""
    axis = rotation[:, 2] if rotation[2, 2] >= 0 else -rotation[:, 2]
    x, y, z = (float(v) for v in axis)
    if z > 1 - 1e-12:
        return np.eye(3)
    k = np.array([[0.0, 0.0, x], [0.0, 0.0, y], [-x, -y, 0.0]])
    turn: np.ndarray = np.eye(3) + k + k @ k / (1 + z)
    return turn


def _pose(rotation: np.ndarray, offset: np.ndarray) -> Pose:
    x, y, z = (float(v) for v in offset)
    return Pose(position=(x, y, z), orientation=_quaternion_from_rotation(rotation))


def _attr(prim: Usd.Prim, name: str, fallback: float) -> float:
    value = prim.GetAttribute(name).Get()
    return float(value) if value is not None else fallback


def display_rgba(prim: Usd.Prim) -> tuple[float, float, float, float] | None:
    """`displayColor` (and `displayOpacity`), else a bound UsdPreviewSurface's diffuse colour."""
    gprim = UsdGeom.Gprim(prim)
    colours = gprim.GetDisplayColorAttr().Get() if gprim else None
    if colours is not None and len(colours):
        opacity = gprim.GetDisplayOpacityAttr().Get()
        alpha = float(opacity[0]) if opacity is not None and len(opacity) else 1.0
        r, g, b = (float(c) for c in colours[0])
        return (r, g, b, alpha)
    surface = bound_preview_surface(prim)
    if surface is None:
        return None
    diffuse = surface.GetInput("diffuseColor")
    value = diffuse.Get() if diffuse else None
    if value is None:
        return None
    r, g, b = (float(c) for c in value)
    return (r, g, b, 1.0)


def _mesh_data(
    prim: Usd.Prim, linear: np.ndarray, *, visual: bool
) -> tuple[MeshData, Texture | None] | None:
    """The mesh's triangles with the linear transform baked in, and the texture a seen mesh
    is drawn with (its coordinates then in the mesh data), or None for no usable mesh."""
    mesh = UsdGeom.Mesh(prim)
    points = mesh.GetPointsAttr().Get()
    counts = mesh.GetFaceVertexCountsAttr().Get()
    indices = mesh.GetFaceVertexIndicesAttr().Get()
    if points is None or counts is None or indices is None or not len(points):
        return None
    if len(points) > MAX_MESH_VERTICES or len(points) < 4:
        return None
    vertices = np.asarray(points, dtype=float) @ linear.T
    flat = np.asarray(indices, dtype=np.int64)
    # Each triangle corner as its place in the face-vertex list, and the face it belongs to.
    corners: list[int] = []
    corner_faces: list[int] = []
    start = 0
    for face, count in enumerate(counts):
        # A fan over each polygon; degenerate faces (fewer than 3 corners) carry no area.
        for k in range(1, int(count) - 1):
            corners += [start, start + k, start + k + 1]
            corner_faces += [face, face, face]
        start += int(count)
    if not corners or start != len(flat) or int(flat.max()) >= len(vertices):
        return None
    corner_at = np.asarray(corners, dtype=np.int64)
    triangles = [(int(a), int(b), int(c)) for a, b, c in flat[corner_at].reshape(-1, 3)]
    rounded = tuple(
        (round(float(a), 7), round(float(b), 7), round(float(c), 7)) for a, b, c in vertices
    )
    digest = hashlib.sha256(
        np.asarray(rounded, dtype="<f8").tobytes() + np.asarray(triangles, dtype="<i8").tobytes()
    ).hexdigest()
    texture, uv = None, None
    found = diffuse_texture(prim) if visual else None
    if found is not None:
        uv = corner_uv(mesh, found.varname, corner_at, np.asarray(corner_faces, dtype=np.int64))
        texture = texture_record(found, str(prim.GetPath())) if uv is not None else None
    if texture is None:
        uv = None
    data = MeshData(vertices=rounded, triangles=tuple(triangles), sha256=digest, uv=uv)
    return data, texture


def authored_shape(
    prim: Usd.Prim, to_pipeline: Gf.Matrix4d, *, collision: bool, visual: bool
) -> Shape | None:
    """The prim as a shape in the pipeline frame, or None for a kind with no shape here."""
    linear, offset = _linear_and_offset(to_pipeline)
    rotation, scale = _rotation_and_scale(linear)
    rgba = display_rgba(prim)

    def shape(
        kind: ShapeKind,
        pose: Pose,
        size: Vec3,
        mesh: MeshData | None = None,
        texture: Texture | None = None,
    ) -> Shape:
        if not all(math.isfinite(s) and s > 0 for s in size):
            # a part scaled flat (or to nothing) along an axis: no simulator can give it mass
            raise ZeroSizeObject(
                "a part has no extent along at least one axis",
                object=str(prim.GetPath()),
                field="size",
                size=[round(s, 9) for s in size],
            )
        return Shape(
            usd_path=str(prim.GetPath()),
            kind=kind,
            pose=pose,
            size=size,
            collision=collision,
            visual=visual,
            rgba=rgba,
            mesh=mesh,
            texture=texture,
        )

    if prim.IsA(UsdGeom.Cube):
        turned, halves = _least_turned(rotation, _attr(prim, "size", 2.0) / 2 * scale)
        size = (float(halves[0]), float(halves[1]), float(halves[2]))
        return shape("box", _pose(turned, offset), size)
    if prim.IsA(UsdGeom.Sphere):
        radii = _attr(prim, "radius", 1.0) * scale
        round_: ShapeKind = "sphere"
        if np.ptp(radii) > 1e-9 * max(1.0, float(radii.max())):
            round_ = "ellipsoid"
        turned = np.eye(3)  # a sphere looks the same however it is turned
        if round_ == "ellipsoid":
            turned, radii = _least_turned(rotation, radii)
        size = (float(radii[0]), float(radii[1]), float(radii[2]))
        return shape(round_, _pose(turned, offset), size)
    if prim.IsA(UsdGeom.Cylinder) or prim.IsA(UsdGeom.Capsule):
        axis = str(prim.GetAttribute("axis").Get() or "Z")
        turn = _AXIS_TURN.get(axis, np.eye(3))
        along = float(scale @ np.abs(turn[:, 2]))
        across = float(np.mean([scale @ np.abs(turn[:, 0]), scale @ np.abs(turn[:, 1])]))
        radius = _attr(prim, "radius", 1.0) * across
        half = _attr(prim, "height", 2.0) / 2 * along
        long: ShapeKind = "cylinder" if prim.IsA(UsdGeom.Cylinder) else "capsule"
        return shape(long, _pose(_along_axis(rotation @ turn), offset), (radius, radius, half))
    if prim.IsA(UsdGeom.Mesh):
        made = _mesh_data(prim, linear, visual=visual)
        if made is None:
            return None
        data, texture = made
        return shape("mesh", _pose(np.eye(3), offset), (1.0, 1.0, 1.0), data, texture)
    return None


def is_finite_shape(shape: Shape) -> bool:
    values = [*shape.pose.position, *shape.size]
    return all(math.isfinite(v) for v in values)
