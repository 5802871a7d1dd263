"""A node's authored shapes as MuJoCo geoms: each with its true kind, size, pose and colour.

Boxes, spheres, ellipsoids, cylinders and capsules become the MuJoCo primitive of the same kind.
A collision mesh becomes its convex hulls (bp_collector.mujoco.convex), one mesh geom each; a
mesh that is also seen is drawn as itself, its hulls hidden in geom group 3. What is only seen
collides with nothing and weighs nothing; what only collides is hidden. Shapes are in the world
frame; the geoms are placed relative to the node's body, whose frame is `origin` before any
randomised offset, so a body moved or turned by the randomisation carries its shapes with it.
A free body's mass is spread over its colliding geoms by volume. A seen mesh that carries a
diffuse texture is drawn with it (bp_collector.mujoco.textures), under the same colour scale.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import mujoco
import numpy as np
from bp_scene_contract import SceneNode, Shape

from bp_collector.mujoco.convex import ConvexDecomposer, Hull
from bp_collector.mujoco.textures import add_textured_material, texture_coordinates

HIDDEN_GROUP = 3
"""MuJoCo's renderer draws groups 0-2 by default: collision stand-ins go to 3."""

Colour = Callable[[Sequence[float]], tuple[float, float, float]]

_PRIMITIVES = {
    "box": mujoco.mjtGeom.mjGEOM_BOX,
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
    "ellipsoid": mujoco.mjtGeom.mjGEOM_ELLIPSOID,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
    "capsule": mujoco.mjtGeom.mjGEOM_CAPSULE,
}


@dataclass(frozen=True)
class ShapeBuild:
    """What adding a node's shapes did: its colliding geoms and what the meshes cost."""

    collision_geoms: int
    hulls: int
    cache_hits: int


@dataclass
class _Piece:
    """One geom to add: kind, MuJoCo size or mesh, pose in the body, what it does."""

    shape: Shape
    type: mujoco.mjtGeom
    size: list[float]
    pos: list[float]
    quat: list[float]
    collides: bool
    visible: bool
    volume: float
    mesh: Hull | None = None
    shell: bool = False


def has_collision_mesh(node: SceneNode) -> bool:
    return any(s.kind == "mesh" and s.collision for s in node.shapes)


def primitive_volume(shape: Shape) -> float:
    a, b, c = shape.size
    if shape.kind == "box":
        return 8.0 * a * b * c
    if shape.kind in ("sphere", "ellipsoid"):
        return 4.0 / 3.0 * math.pi * a * b * c
    if shape.kind == "cylinder":
        return math.pi * a * a * 2.0 * c
    if shape.kind == "capsule":
        return math.pi * a * a * 2.0 * c + 4.0 / 3.0 * math.pi * a**3
    raise ValueError(f"{shape.kind} is not a primitive")


def hull_volume(hull: Hull) -> float:
    """Enclosed volume by the divergence theorem (the hull's faces close it)."""
    tri = hull.vertices[hull.faces]
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    return float(abs(signed))


def _pieces(
    node: SceneNode, origin: np.ndarray, decomposer: ConvexDecomposer
) -> tuple[list[_Piece], int]:
    pieces: list[_Piece] = []
    cache_hits = 0
    for shape in node.shapes:
        pos = (np.array(shape.pose.position) - origin).tolist()
        quat = list(shape.pose.orientation)
        if shape.kind != "mesh":
            pieces.append(
                _Piece(
                    shape,
                    _PRIMITIVES[shape.kind],
                    _mujoco_size(shape),
                    pos,
                    quat,
                    collides=shape.collision,
                    visible=shape.visual,
                    volume=primitive_volume(shape),
                )
            )
            continue
        assert shape.mesh is not None
        vertices = np.asarray(shape.mesh.vertices, dtype=float)
        faces = np.asarray(shape.mesh.triangles, dtype=np.int64)
        if shape.collision:
            parts = decomposer.decompose(vertices, faces, name=f"{node.asset_id}:{shape.usd_path}")
            cache_hits += int(parts.cache_hit)
            for hull in parts.hulls:
                pieces.append(
                    _Piece(
                        shape,
                        mujoco.mjtGeom.mjGEOM_MESH,
                        [],
                        pos,
                        quat,
                        collides=True,
                        # The mesh itself is drawn when seen; its hulls are then stand-ins.
                        visible=False,
                        volume=hull_volume(hull),
                        mesh=hull,
                    )
                )
        if shape.visual:
            pieces.append(
                _Piece(
                    shape,
                    mujoco.mjtGeom.mjGEOM_MESH,
                    [],
                    pos,
                    quat,
                    collides=False,
                    visible=True,
                    volume=0.0,
                    mesh=Hull(vertices, faces),
                    shell=True,
                )
            )
    return pieces, cache_hits


def _mujoco_size(shape: Shape) -> list[float]:
    a, b, c = shape.size
    if shape.kind == "sphere":
        return [a, 0.0, 0.0]
    if shape.kind in ("cylinder", "capsule"):
        return [a, c, 0.0]
    return [a, b, c]


def add_shapes(
    spec: mujoco.MjSpec,
    body: mujoco.MjsBody,
    node: SceneNode,
    origin: Sequence[float],
    *,
    colour: Colour,
    default_rgb: Sequence[float],
    mass: float | None,
    friction: Sequence[float],
    contype: int,
    conaffinity: int,
    decomposer: ConvexDecomposer,
) -> ShapeBuild:
    """Add every shape of `node` to `body`; `mass` (kg) is spread over the colliding geoms."""
    pieces, cache_hits = _pieces(node, np.asarray(origin, dtype=float), decomposer)
    colliding = [p for p in pieces if p.collides]
    total_volume = sum(p.volume for p in colliding)
    hulls = 0
    for i, piece in enumerate(pieces):
        authored = piece.shape.rgba
        texture = piece.shape.texture if piece.shell else None
        uv = piece.shape.mesh.uv if piece.shape.mesh is not None else None
        if texture is not None and uv is not None:
            # The texture carries the colours: the colour scale applies to white.
            rgb = colour((1.0, 1.0, 1.0))
        else:
            texture = None
            rgb = colour(authored[:3] if authored is not None else default_rgb)
        alpha = authored[3] if authored is not None else 1.0
        kwargs: dict[str, object] = {}
        if piece.mesh is not None:
            mesh_name = f"{body.name}/mesh{i}"
            mesh = spec.add_mesh(
                name=mesh_name,
                uservert=piece.mesh.vertices.ravel().tolist(),
                userface=piece.mesh.faces.ravel().tolist(),
            )
            if piece.shell:
                # A seen surface need not be closed: its inertia (unused, it weighs nothing)
                # is taken as a shell's so an open mesh compiles.
                mesh.inertia = mujoco.mjtMeshInertia.mjMESH_INERTIA_SHELL
                if texture is not None and uv is not None:
                    mesh.usertexcoord, mesh.userfacetexcoord = texture_coordinates(uv)
                    kwargs["material"] = add_textured_material(
                        spec, f"{body.name}/material{i}", texture, [*rgb, alpha]
                    )
            else:
                # What collides is convex (a hull, or a mesh over budget standing as its hull):
                # its inertia is its hull's, so an open mesh over budget compiles too.
                mesh.inertia = mujoco.mjtMeshInertia.mjMESH_INERTIA_CONVEX
                hulls += 1
            kwargs["meshname"] = mesh_name
        else:
            kwargs["size"] = piece.size
        geom = body.add_geom(
            name=f"{body.name}/shape{i}", type=piece.type, pos=piece.pos, quat=piece.quat, **kwargs
        )
        geom.rgba = [*rgb, alpha]
        if piece.collides:
            geom.contype = contype
            geom.conaffinity = conaffinity
            geom.friction = list(friction)
            if mass is not None and total_volume > 0:
                geom.mass = mass * piece.volume / total_volume
        else:
            geom.contype = 0
            geom.conaffinity = 0
            geom.mass = 0.0
        if not piece.visible:
            geom.group = HIDDEN_GROUP
    return ShapeBuild(collision_geoms=len(colliding), hulls=hulls, cache_hits=cache_hits)
