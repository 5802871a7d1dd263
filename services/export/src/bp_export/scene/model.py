"""The scene as the pipeline sees it after reading the USD: objects, joints, cameras and lights.

Every coordinate in these types is in the pipeline world frame (see `usd.world_frame`): Z up,
right-handed, metres; masses are in kilograms, revolute limits in radians, prismatic limits in
metres. Nothing here depends on usd-core, so downstream stages can use it without `pxr`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from bp_scene_contract import Shape

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]
"""A unit quaternion, w first."""

JointType = Literal["revolute", "prismatic", "fixed", "spherical", "distance", "generic"]
MotionKind = Literal["static", "free", "articulated_part", "kinematic"]


@dataclass(frozen=True)
class Box3:
    """An axis-aligned box in the pipeline frame."""

    min: Vec3
    max: Vec3

    @property
    def size(self) -> Vec3:
        return (self.max[0] - self.min[0], self.max[1] - self.min[1], self.max[2] - self.min[2])

    @property
    def center(self) -> Vec3:
        return (
            (self.max[0] + self.min[0]) / 2,
            (self.max[1] + self.min[1]) / 2,
            (self.max[2] + self.min[2]) / 2,
        )

    def is_finite(self) -> bool:
        return all(math.isfinite(v) for v in (*self.min, *self.max))

    def union(self, other: Box3) -> Box3:
        return Box3(
            (
                min(self.min[0], other.min[0]),
                min(self.min[1], other.min[1]),
                min(self.min[2], other.min[2]),
            ),
            (
                max(self.max[0], other.max[0]),
                max(self.max[1], other.max[1]),
                max(self.max[2], other.max[2]),
            ),
        )


@dataclass(frozen=True)
class Pose:
    """Position of a prim's origin and its orientation, in the pipeline frame.

    For objects, an upright unrotated object has the identity orientation in a Y-up stage too
    (see `usd.world_frame.object_orientation`); cameras and lights keep USD's local convention.
    """

    position: Vec3
    orientation: Quat


@dataclass(frozen=True)
class MeshInfo:
    """One mesh of an object: how big it is, and its points when they were asked for."""

    usd_path: str
    vertex_count: int
    face_count: int
    points: tuple[Vec3, ...] | None = None


@dataclass(frozen=True)
class GeometryPart:
    """One renderable or collision shape of an object, with its own box (a table top, a leg)."""

    usd_path: str
    type_name: str
    bbox: Box3
    is_collider: bool


@dataclass(frozen=True)
class Semantics:
    """Labels found on a prim, by taxonomy, and the one class the pipeline uses."""

    primary_class: str | None
    labels: dict[str, tuple[str, ...]]
    sources: tuple[str, ...]
    """Where labels came from: "UsdSemantics", "IsaacSemantics", "customData", "name"."""


@dataclass(frozen=True)
class PhysicsProperties:
    """Physics of a whole object, in SI units; None where the scene does not say."""

    mass_kg: float | None
    density_kg_m3: float | None
    static_friction: float | None
    dynamic_friction: float | None
    restitution: float | None
    rigid_bodies: tuple[str, ...]
    colliders: tuple[str, ...]
    kinematic: bool

    @property
    def friction(self) -> float | None:
        return self.dynamic_friction if self.dynamic_friction is not None else self.static_friction


@dataclass(frozen=True)
class Joint:
    """A physics joint; axis, anchor and limits in the pipeline frame and SI units."""

    usd_path: str
    name: str
    type: JointType
    body0: str | None
    body1: str | None
    axis: Vec3 | None
    anchor: Vec3
    lower: float | None
    upper: float | None
    owner: str | None
    """asset_id of the object the joint belongs to (the one holding its moving body)."""
    moving_part_bbox: Box3 | None


@dataclass(frozen=True)
class SceneObject:
    """One physical object of the scene."""

    asset_id: str
    usd_path: str
    name: str
    type_name: str
    pose: Pose
    bbox: Box3
    oriented_size: Vec3
    """Extents along the object's own axes (metres), tighter than the world box when rotated."""
    parts: tuple[GeometryPart, ...]
    meshes: tuple[MeshInfo, ...]
    semantics: Semantics
    physics: PhysicsProperties
    motion: MotionKind
    joints: tuple[str, ...]
    """usd_paths of the joints this object owns."""
    custom_data: dict[str, Any]
    asset_files: tuple[str, ...]
    """Resolved paths of the files the object's prims were referenced or payloaded from."""
    description_sha256: str
    """sha256 of the object's composed prim description (types, schemas, attribute values)."""
    defined_in: str
    """The layer holding the object prim's strongest opinion."""
    shapes: tuple[Shape, ...] = ()
    """Its authored geometric prims with their true shapes, in the pipeline frame."""

    @property
    def is_static(self) -> bool:
        return self.motion in ("static", "kinematic")

    @property
    def is_free_body(self) -> bool:
        return self.motion == "free"


@dataclass(frozen=True)
class Camera:
    """A camera prim, its pose and optics (apertures and focal length in millimetres)."""

    usd_path: str
    pose: Pose
    projection: str
    focal_length_mm: float | None
    horizontal_aperture_mm: float | None
    vertical_aperture_mm: float | None
    clipping_range_m: tuple[float, float] | None


@dataclass(frozen=True)
class Light:
    """A UsdLux light prim."""

    usd_path: str
    type_name: str
    pose: Pose
    intensity: float | None


@dataclass(frozen=True)
class SceneModel:
    """A scene read from USD and normalised to the pipeline frame."""

    scene_id: str
    source_path: str
    authored_up_axis: str
    authored_meters_per_unit: float
    up_axis_authored: bool
    meters_per_unit_authored: bool
    kilograms_per_unit: float
    default_prim: str | None
    objects: tuple[SceneObject, ...]
    joints: tuple[Joint, ...]
    cameras: tuple[Camera, ...]
    lights: tuple[Light, ...]
    layers: tuple[str, ...]
    """Resolved paths of every file layer the stage composed (root first)."""
    warnings: tuple[str, ...] = field(default=())

    def object(self, asset_id: str) -> SceneObject:
        for candidate in self.objects:
            if candidate.asset_id == asset_id:
                return candidate
        raise KeyError(asset_id)

    def joints_of(self, asset_id: str) -> tuple[Joint, ...]:
        return tuple(j for j in self.joints if j.owner == asset_id)
