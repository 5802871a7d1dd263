"""The typed model of `scene_graph.json`: a scene's objects and their relations, in the world frame.

    {schema_version: 1, scene_id, frame: {up_axis: "z", units: "m", handedness: "right"},
     nodes: [{asset_id, semantic, size, pose{position, orientation (w,x,y,z)}, bbox{min, max},
              sim_role, affordances, properties{mass, friction}, is_static, usd_path,
              articulation: null | {joints: [{name, type, axis, anchor, lower, upper,
                                             moving_part_bbox, moving_part}]},
              shapes: [{usd_path, kind, pose, size, collision, visual, rgba, mesh, texture}]}],
     edges: [{source, target, relation, confidence}],
     lights: [{usd_path, type_name, pose, intensity}],
     cameras: [{name, usd_path, pose, fovy_deg}]}

`size` is the extents of the world box `bbox`. Mass (kg) and friction are null where the scene
does not say. Joints are in world coordinates: `axis` is a non-zero direction (readers take its
unit vector), `anchor` a point on it, `lower`/`upper` the limits in radians (revolute) or metres
(prismatic), `lower` taken as closed. An edge says that `source` rests on, is in, is stacked on,
is beside or is aligned with `target`.

`shapes` are the node's authored geometric prims, each with its true shape in the world frame
(`box`, `sphere`, `ellipsoid`, `cylinder`, `capsule` or `mesh`), whether it collides, whether it
is seen, and its colour; empty when export had none to give (the simulator then falls back to
the node's box). A document without `shapes` reads as empty: version 1 documents stay valid.
A mesh may also carry its diffuse image (`texture`, a small PNG inline) and the texture
coordinates of each triangle corner (`mesh.uv`); documents without them read as untextured.

`lights` and `cameras` are the scene's UsdLux lights and perspective UsdGeom cameras, posed in
the world frame with USD's local convention kept: a camera looks along its pose's -z with +y
up (as MuJoCo's do), a distant light shines along its -z. A camera's `name` is the one a run
asks for (`usd_` and its prim's name). Documents without them read as empty lists.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import struct
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from bp_scene_contract.errors import Inconsistent, InvalidSceneDocument
from bp_scene_contract.geometry import ContractModel, OrderedBox, Pose, Vec3

SCHEMA_VERSION: Literal[1] = 1

SimRole = Literal[
    "static",
    "interactive",
    "manipulable_object",
    "deformable_object",
    "articulated_furniture",
    "articulated_appliance",
    "clutter",
    "background",
    "scene_shell",
    "unknown",
]
Relation = Literal["on", "in", "adjacent", "stacked", "aligned"]


class NodeProperties(ContractModel):
    """Physical properties; null where the scene does not say. A zero mass is no mass."""

    mass: float | None = Field(gt=0)
    friction: float | None = Field(ge=0)


class ArticulationJoint(ContractModel):
    """A joint of an articulated object, in world coordinates; `lower` is taken as closed."""

    name: str = Field(min_length=1)
    type: Literal["revolute", "prismatic"]
    axis: Vec3
    anchor: Vec3
    lower: float
    upper: float
    moving_part_bbox: OrderedBox
    moving_part: str | None = None
    """USD path of the body the joint moves: the node's shapes at or under it move with the
    joint, the rest stay; null when the scene does not say (the part is then its box)."""

    @field_validator("axis")
    @classmethod
    def _non_zero(cls, value: Vec3) -> Vec3:
        if math.sqrt(sum(v * v for v in value)) < 1e-9:
            raise ValueError("joint axis must not be zero")
        return value

    def moves(self, shape: Shape) -> bool:
        """Is `shape` at or under the body this joint moves?"""
        part = self.moving_part
        return part is not None and (
            shape.usd_path == part or shape.usd_path.startswith(part.rstrip("/") + "/")
        )

    @property
    def unit_axis(self) -> Vec3:
        norm = math.sqrt(sum(v * v for v in self.axis))
        return (self.axis[0] / norm, self.axis[1] / norm, self.axis[2] / norm)


class Articulation(ContractModel):
    joints: tuple[ArticulationJoint, ...]


ShapeKind = Literal["box", "sphere", "ellipsoid", "cylinder", "capsule", "mesh"]


class MeshData(ContractModel):
    """A triangle mesh in its shape's frame, in metres, with the sha256 of its geometry."""

    vertices: tuple[Vec3, ...] = Field(min_length=4)
    triangles: tuple[tuple[int, int, int], ...] = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """Of the vertices and triangles; texture coordinates do not change the solid."""
    uv: tuple[tuple[float, float], ...] | None = None
    """Texture coordinates (u, v), one per triangle corner in triangle order (three per
    triangle): per corner, because a vertex on a texture seam has one (u, v) on each side.
    (0, 0) is the image's bottom-left corner, as in USD; null when the mesh has none."""

    @model_validator(mode="after")
    def _indices_in_range(self) -> MeshData:
        count = len(self.vertices)
        if any(not 0 <= i < count for triangle in self.triangles for i in triangle):
            raise ValueError("a triangle names a vertex the mesh does not have")
        if self.uv is not None and len(self.uv) != 3 * len(self.triangles):
            raise ValueError("uv holds one (u, v) per triangle corner, three per triangle")
        return self


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Texture(ContractModel):
    """A shape's diffuse image, inline as a base64 PNG so the scene graph stays one document.

    `width` and `height` are the PNG's own, in pixels, and `sha256` is of the PNG bytes; the
    reader checks both against the image. `asset_path` is the authored file, for the record:
    readers never open it.
    """

    png_base64: str = Field(min_length=1)
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    asset_path: str

    @classmethod
    def from_png(cls, png: bytes, asset_path: str) -> Texture:
        """The record of PNG bytes: their size as the PNG header gives it, and their digest."""
        width, height = _png_size(png)
        return cls(
            png_base64=base64.b64encode(png).decode("ascii"),
            width=width,
            height=height,
            sha256=hashlib.sha256(png).hexdigest(),
            asset_path=asset_path,
        )

    @property
    def png(self) -> bytes:
        return base64.b64decode(self.png_base64, validate=True)

    @model_validator(mode="after")
    def _is_the_png_it_says(self) -> Texture:
        try:
            png = self.png
        except binascii.Error as error:
            raise ValueError(f"png_base64 is not base64: {error}") from error
        if (self.width, self.height) != _png_size(png):
            raise ValueError("width and height are not the PNG's own")
        if hashlib.sha256(png).hexdigest() != self.sha256:
            raise ValueError("sha256 is not the PNG's digest")
        return self


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header chunk (IHDR, which the format puts first)."""
    if len(png) < 24 or png[:8] != _PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)


class Shape(ContractModel):
    """One authored geometric prim of a node, in the world frame."""

    usd_path: str
    kind: ShapeKind
    pose: Pose
    """The shape's frame; the axis of a cylinder or capsule is its z."""
    size: Vec3
    """Half extents of a box or ellipsoid; (r, r, r) for a sphere; (r, r, half length) for a
    cylinder or a capsule's straight part; (1, 1, 1) for a mesh, whose vertices carry scale."""
    collision: bool
    visual: bool
    rgba: tuple[float, float, float, float] | None = None
    """Display colour (displayColor, or a UsdPreviewSurface's diffuse colour); null if none."""
    mesh: MeshData | None = None
    texture: Texture | None = None
    """The diffuse image (a UsdPreviewSurface's diffuse texture), drawn through `mesh.uv`; only
    a mesh with texture coordinates has one. Null if none: `rgba` is then the colour seen."""

    @property
    def is_handle(self) -> bool:
        """Authored as a handle: its prim's name says so (`Handle`, `door_handle`...)."""
        return self.collision and "handle" in self.usd_path.rsplit("/", 1)[-1].lower()

    def world_box(self) -> tuple[Vec3, Vec3]:
        """Centre and size of the shape's axis-aligned extent in the world frame."""
        w, x, y, z = self.pose.orientation
        turn = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        )
        if self.mesh is not None:
            points = np.asarray(self.mesh.vertices) @ turn.T
            lo, hi = points.min(axis=0), points.max(axis=0)
            middle, size = (lo + hi) / 2, hi - lo
        else:
            middle, size = np.zeros(3), 2 * np.abs(turn) @ np.asarray(self.size)
        centre = np.asarray(self.pose.position) + middle
        return (
            (float(centre[0]), float(centre[1]), float(centre[2])),
            (float(size[0]), float(size[1]), float(size[2])),
        )

    @model_validator(mode="after")
    def _mesh_iff_mesh_kind(self) -> Shape:
        if (self.kind == "mesh") != (self.mesh is not None):
            raise ValueError("a mesh shape has mesh data, and only a mesh shape has")
        if self.texture is not None and (self.mesh is None or self.mesh.uv is None):
            raise ValueError("a texture is drawn through a mesh's uv: only such a shape has one")
        if any(v <= 0 for v in self.size):
            raise ValueError("shape sizes are positive")
        return self


def authored_handle(node: SceneNode, joint: ArticulationJoint) -> Shape | None:
    """The handle a hand takes to move `joint`'s part: of the part's shapes authored as a
    handle, the longest; None when it has none (a simulator then puts a bar on its box)."""
    handles = [s for s in node.shapes if s.is_handle and joint.moves(s)]
    return max(handles, key=lambda s: max(s.world_box()[1]), default=None)


class SceneNode(ContractModel):
    """One object of the scene."""

    asset_id: str = Field(min_length=1)
    semantic: str
    size: Vec3
    pose: Pose
    bbox: OrderedBox
    sim_role: SimRole
    affordances: tuple[str, ...]
    properties: NodeProperties
    is_static: bool
    usd_path: str
    articulation: Articulation | None
    shapes: tuple[Shape, ...] = ()

    @property
    def name(self) -> str:
        """The semantic label as words ("coffee_mug" -> "coffee mug"), or the asset id."""
        words = (self.semantic or self.asset_id).replace("_", " ").replace("-", " ").strip()
        return " ".join(words.split()).lower() or self.asset_id

    def has_affordance(self, affordance: str) -> bool:
        return affordance.lower() in {a.lower() for a in self.affordances}


class SceneEdge(ContractModel):
    """A relation: `source` rests on / is in / is stacked on / is beside `target`."""

    source: str
    target: str
    relation: Relation
    confidence: float = Field(ge=0.0, le=1.0)


class Frame(ContractModel):
    up_axis: Literal["z"] = "z"
    units: Literal["m"] = "m"
    handedness: Literal["right"] = "right"


class SceneLight(ContractModel):
    """A UsdLux light: its USD type (`DistantLight`, `SphereLight`, ...), pose and intensity."""

    usd_path: str
    type_name: str
    pose: Pose
    intensity: float | None = Field(default=None, ge=0.0)
    """`inputs:intensity` as authored (USD's units, comparable between lights of one scene)."""


class SceneCamera(ContractModel):
    """A perspective UsdGeom camera, offered to runs under `name`."""

    name: str = Field(pattern=r"^usd_[A-Za-z0-9_]{1,60}$")
    usd_path: str
    pose: Pose
    fovy_deg: float = Field(gt=0.0, lt=180.0)
    """Vertical field of view, from the focal length and the vertical aperture."""


class SceneGraph(ContractModel):
    """`scene_graph.json`: nodes and relations in the pipeline's Z-up metre world frame."""

    schema_version: Literal[1] = SCHEMA_VERSION
    scene_id: str = Field(min_length=1)
    frame: Frame = Frame()
    nodes: tuple[SceneNode, ...]
    edges: tuple[SceneEdge, ...]
    lights: tuple[SceneLight, ...] = ()
    cameras: tuple[SceneCamera, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> SceneGraph:
        seen: set[str] = set()
        for i, node in enumerate(self.nodes):
            if node.asset_id in seen:
                raise Inconsistent("asset id is repeated", f"nodes.{i}.asset_id", node.asset_id)
            seen.add(node.asset_id)
        for i, edge in enumerate(self.edges):
            for end, name in (("source", edge.source), ("target", edge.target)):
                if name not in seen:
                    raise Inconsistent("edge names an unknown node", f"edges.{i}.{end}", name)
        names: set[str] = set()
        for i, camera in enumerate(self.cameras):
            if camera.name in names:
                raise Inconsistent("camera name is repeated", f"cameras.{i}.name", camera.name)
            names.add(camera.name)
        return self

    def node(self, asset_id: str) -> SceneNode:
        for node in self.nodes:
            if node.asset_id == asset_id:
                return node
        raise InvalidSceneDocument(
            "no such node in the scene graph", scene_id=self.scene_id, object=asset_id
        )

    def relations(self, relation: Relation) -> set[tuple[str, str]]:
        return {(e.source, e.target) for e in self.edges if e.relation == relation}
