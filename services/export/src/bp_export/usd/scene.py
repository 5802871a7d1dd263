"""Read a scene file into a `SceneModel`: every physical object in the pipeline world frame.

`load_scene` opens the file (see `usd.stage`), finds the objects (see `usd.objects`), and for
each one computes its world pose, world axis-aligned box, geometry parts, meshes, semantics and
physics; it also reads joints, cameras and lights. The result is validated: non-finite
transforms or geometry, objects of zero size and object names unfit to be ids are permanent
errors naming the scene, the object and the field.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from bp_common.errors import InvalidName
from bp_common.ids import validate_scene_id
from bp_scene_contract import Shape
from pxr import Gf, Sdf, Usd, UsdGeom, UsdLux

from bp_export.scene.model import (
    Box3,
    Camera,
    GeometryPart,
    Joint,
    Light,
    MeshInfo,
    MotionKind,
    PhysicsProperties,
    Pose,
    SceneModel,
    SceneObject,
)
from bp_export.scene_errors import EmptyScene, NonFiniteValue, TooManyObjects, ZeroSizeObject
from bp_export.usd.objects import OBJECT_CONTAINER_NAMES, ObjectFinder, is_visible_geometry, subtree
from bp_export.usd.physics import is_collider, read_joints, read_object_physics
from bp_export.usd.prim_digest import prim_description_sha256
from bp_export.usd.semantics import authored_custom_data, read_semantics
from bp_export.usd.shape_bounds import is_degenerate, tight_box
from bp_export.usd.shapes import authored_shape
from bp_export.usd.stage import (
    DEFAULT_MAX_OBJECTS,
    DEFAULT_MAX_SCENE_BYTES,
    OpenedStage,
    open_scene_stage,
)
from bp_export.usd.world_frame import (
    StageFrame,
    matrix_is_finite,
    object_orientation,
    position_of,
    rotation_of,
    to_pipeline,
    transform_point,
)

ASSET_ID_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$")
ZERO_EXTENT_M = 1e-6
"""Extents at or below this many metres count as zero: two of them make a point or a line."""

_VISIBLE = [UsdGeom.Tokens.default_, UsdGeom.Tokens.render, UsdGeom.Tokens.proxy]
_ALL_PURPOSES = [*_VISIBLE, UsdGeom.Tokens.guide]


def load_scene(
    path: Path | str,
    scene_id: str,
    *,
    max_bytes: int = DEFAULT_MAX_SCENE_BYTES,
    max_objects: int = DEFAULT_MAX_OBJECTS,
    require_default_prim: bool = False,
    include_points: bool = False,
) -> SceneModel:
    """Read the scene at `path` into the pipeline frame; raise a typed error if it is unusable."""
    validate_scene_id(scene_id)
    opened = open_scene_stage(
        Path(path), scene_id, max_bytes=max_bytes, require_default_prim=require_default_prim
    )
    return _SceneReader(opened, scene_id, include_points, max_objects).read()


class _SceneReader:
    def __init__(
        self, opened: OpenedStage, scene_id: str, include_points: bool, max_objects: int
    ) -> None:
        self.opened = opened
        self.max_objects = max_objects
        self.stage = opened.stage
        self.frame: StageFrame = opened.frame
        self.scene_id = scene_id
        self.include_points = include_points
        time = Usd.TimeCode.Default()
        self.xforms = UsdGeom.XformCache(time)
        self.all_bounds = UsdGeom.BBoxCache(time, _ALL_PURPOSES)
        self.warnings: list[str] = list(opened.warnings)
        self.scene_layers = {
            layer.identifier for layer in self.stage.GetLayerStack(includeSessionLayers=True)
        }

    def read(self) -> SceneModel:
        joints = read_joints(self.stage, self.frame, self.xforms, self.scene_id)
        prims = ObjectFinder(self.stage, [(j.body0, j.body1) for j in joints]).find()
        if len(prims) > self.max_objects:
            # refused before any object is read: the work after grows with the pairs of objects
            raise TooManyObjects(
                f"the scene holds {len(prims)} objects, more than the {self.max_objects} allowed",
                scene_id=self.scene_id,
                field=self.opened.path.name,
                objects=len(prims),
                max_objects=self.max_objects,
            )
        ids = self._asset_ids(prims)
        objects: list[SceneObject] = []
        for prim in prims:
            obj = self._read_object(prim, ids[prim.GetPath()])
            if obj is not None:
                objects.append(obj)
        if not objects:
            raise EmptyScene(
                "the scene holds no physical object",
                scene_id=self.scene_id,
                field=self.opened.path.name,
            )
        joints = self._attach_joints(joints, objects)
        objects = [self._with_motion(obj, joints) for obj in objects]
        default_prim = self.opened.default_prim
        return SceneModel(
            scene_id=self.scene_id,
            source_path=str(self.opened.path),
            authored_up_axis=self.frame.up_axis,
            authored_meters_per_unit=self.frame.meters_per_unit,
            up_axis_authored=self.opened.up_axis_authored,
            meters_per_unit_authored=self.opened.meters_per_unit_authored,
            kilograms_per_unit=self.opened.kilograms_per_unit,
            default_prim=str(default_prim.GetPath()) if default_prim is not None else None,
            objects=tuple(objects),
            joints=tuple(joints),
            cameras=tuple(self._cameras()),
            lights=tuple(self._lights()),
            layers=self.opened.layers,
            warnings=tuple(self.warnings),
        )

    def _asset_ids(self, prims: Sequence[Usd.Prim]) -> dict[Sdf.Path, str]:
        for prim in prims:
            if not ASSET_ID_PATTERN.fullmatch(prim.GetName()):
                raise InvalidName(
                    "object prim name must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-'",
                    scene_id=self.scene_id,
                    object=str(prim.GetPath()),
                    field="name",
                    value=repr(prim.GetName()),
                )
        counts = Counter(_object_id(p) for p in prims)
        ids: dict[Sdf.Path, str] = {}
        taken: set[str] = set()
        for prim in prims:
            candidate = _object_id(prim)
            if counts[candidate] > 1:
                parent = prim.GetParent()
                candidate = f"{parent.GetName()}__{candidate}" if parent else candidate
            base, n = candidate, 2
            while candidate in taken:
                candidate, n = f"{base}_{n}", n + 1
            taken.add(candidate)
            ids[prim.GetPath()] = candidate
        return ids

    def _read_object(self, prim: Usd.Prim, asset_id: str) -> SceneObject | None:
        prims = subtree(prim)
        path = str(prim.GetPath())
        for member in prims:
            self._require_finite_transform(member, path)
            self._require_finite_geometry(member, path)

        stage_world = self.xforms.GetLocalToWorldTransform(prim)
        pose = Pose(
            position_of(to_pipeline(stage_world, self.frame)),
            object_orientation(stage_world, self.frame),
        )
        parts, own_frame_box = self._parts(prims, pose)
        if not parts:
            if prim.GetParent().GetName() in OBJECT_CONTAINER_NAMES:
                raise ZeroSizeObject(
                    "object has no geometry", scene_id=self.scene_id, object=path, field="extent"
                )
            self.warnings.append(f"{path} has no geometry; not treated as an object")
            return None
        bbox = parts[0].bbox
        for part in parts[1:]:
            bbox = bbox.union(part.bbox)
        if not bbox.is_finite():
            raise NonFiniteValue(
                "object bounds are not finite", scene_id=self.scene_id, object=path, field="extent"
            )
        if is_degenerate(bbox, ZERO_EXTENT_M):
            raise ZeroSizeObject(
                "object collapses to a point or a line",
                scene_id=self.scene_id,
                object=path,
                field="extent",
                size=[round(v, 9) for v in bbox.size],
            )
        semantics = read_semantics(
            prim, sorted(prims[1:], key=lambda p: p.GetPath().pathElementCount)
        )
        physics = read_object_physics(
            prims,
            meters_per_unit=self.frame.meters_per_unit,
            kilograms_per_unit=self.opened.kilograms_per_unit,
            scene_id=self.scene_id,
            object_path=path,
        )
        return SceneObject(
            asset_id=asset_id,
            usd_path=path,
            name=prim.GetName(),
            type_name=str(prim.GetTypeName()),
            pose=pose,
            bbox=bbox,
            oriented_size=own_frame_box.size,
            parts=tuple(parts),
            meshes=tuple(self._meshes(prims)),
            shapes=self._shapes(prims),
            semantics=semantics,
            physics=physics,
            motion="static",
            joints=(),
            custom_data=plain_value(authored_custom_data(prim)),
            asset_files=self._asset_files(prims),
            description_sha256=prim_description_sha256(prim),
            defined_in=_strongest_layer(prim),
        )

    def _require_finite_transform(self, prim: Usd.Prim, object_path: str) -> None:
        if not prim.IsA(UsdGeom.Xformable):
            return
        if matrix_is_finite(self.xforms.GetLocalToWorldTransform(prim)):
            return
        field = "xformOp"
        walk = prim
        while walk and not walk.IsPseudoRoot():
            for op in UsdGeom.Xformable(walk).GetOrderedXformOps():
                if not _is_finite(op.Get()):
                    field = f"{walk.GetPath()}.{op.GetOpName()}"
                    break
            else:
                walk = walk.GetParent()
                continue
            break
        raise NonFiniteValue(
            "transform is not finite", scene_id=self.scene_id, object=object_path, field=field
        )

    def _require_finite_geometry(self, prim: Usd.Prim, object_path: str) -> None:
        for name in ("extent", "points", "size", "radius", "height"):
            attr = prim.GetAttribute(name)
            if attr and attr.HasAuthoredValue() and not _is_finite(attr.Get()):
                raise NonFiniteValue(
                    "geometry is not finite",
                    scene_id=self.scene_id,
                    object=object_path,
                    field=f"{prim.GetPath()}.{name}",
                )

    def _geometry_prims(self, prims: Sequence[Usd.Prim]) -> list[Usd.Prim]:
        visible = [p for p in prims if is_visible_geometry(p)]
        # Collision-only shapes (often purpose guide) count when nothing visible exists.
        return visible or [p for p in prims if p.IsA(UsdGeom.Gprim) and is_collider(p)]

    def _parts(self, prims: Sequence[Usd.Prim], pose: Pose) -> tuple[list[GeometryPart], Box3]:
        """Each shape's world box, and the object's box along its own axes (for its size)."""
        w, x, y, z = pose.orientation
        own_frame = Gf.Matrix4d().SetRotate(Gf.Quatd(w, Gf.Vec3d(x, y, z)))
        own_frame.SetTranslateOnly(Gf.Vec3d(*pose.position))
        world_to_own = own_frame.GetInverse()
        parts: list[GeometryPart] = []
        own_box: Box3 | None = None
        for prim in self._geometry_prims(prims):
            to_world = to_pipeline(self.xforms.GetLocalToWorldTransform(prim), self.frame)
            box = tight_box(prim, to_world, self.all_bounds)
            if box is None:
                continue
            parts.append(
                GeometryPart(
                    usd_path=str(prim.GetPath()),
                    type_name=str(prim.GetTypeName()),
                    bbox=box,
                    is_collider=is_collider(prim),
                )
            )
            local = tight_box(prim, to_world * world_to_own, self.all_bounds)
            if local is not None:
                own_box = local if own_box is None else own_box.union(local)
        return parts, own_box or Box3((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))

    def _shapes(self, prims: Sequence[Usd.Prim]) -> tuple[Shape, ...]:
        """Every seen or colliding prim with its true shape. Where nothing collides, what is
        seen collides: the simulator needs a body, and the box would be a worse guess."""
        found: list[Shape] = []
        for prim in prims:
            if not prim.IsA(UsdGeom.Gprim):
                continue
            visual, collision = is_visible_geometry(prim), is_collider(prim)
            if not (visual or collision):
                continue
            to_world = to_pipeline(self.xforms.GetLocalToWorldTransform(prim), self.frame)
            shape = authored_shape(prim, to_world, collision=collision, visual=visual)
            if shape is not None:
                found.append(shape)
        if found and not any(s.collision for s in found):
            found = [s.model_copy(update={"collision": True}) for s in found]
        return tuple(found)

    def _meshes(self, prims: Sequence[Usd.Prim]) -> list[MeshInfo]:
        meshes: list[MeshInfo] = []
        for prim in prims:
            if not prim.IsA(UsdGeom.Mesh):
                continue
            mesh = UsdGeom.Mesh(prim)
            points = mesh.GetPointsAttr().Get()
            counts = mesh.GetFaceVertexCountsAttr().Get()
            world_points = None
            if self.include_points and points is not None and len(points):
                to_world = to_pipeline(self.xforms.GetLocalToWorldTransform(prim), self.frame)
                world_points = tuple(transform_point(to_world, p) for p in points)
            meshes.append(
                MeshInfo(
                    usd_path=str(prim.GetPath()),
                    vertex_count=len(points) if points is not None else 0,
                    face_count=len(counts) if counts is not None else 0,
                    points=world_points,
                )
            )
        return meshes

    def _asset_files(self, prims: Sequence[Usd.Prim]) -> tuple[str, ...]:
        files: list[str] = []
        for prim in prims:
            for spec in prim.GetPrimStack():
                layer = spec.layer
                if layer.anonymous or layer.identifier in self.scene_layers:
                    continue
                where = layer.realPath or layer.identifier
                if where not in files:
                    files.append(where)
        return tuple(files)

    def _attach_joints(
        self, joints: Sequence[Joint], objects: Sequence[SceneObject]
    ) -> list[Joint]:
        attached: list[Joint] = []
        for joint in joints:
            owner = _owner_of(joint.body1, objects) or _owner_of(joint.body0, objects)
            moving = None
            if joint.body1 is not None:
                moving = self._world_box(self.stage.GetPrimAtPath(joint.body1))
            attached.append(replace(joint, owner=owner, moving_part_bbox=moving))
        return attached

    def _world_box(self, prim: Usd.Prim) -> Box3 | None:
        box: Box3 | None = None
        for member in self._geometry_prims(subtree(prim)):
            to_world = to_pipeline(self.xforms.GetLocalToWorldTransform(member), self.frame)
            part = tight_box(member, to_world, self.all_bounds)
            if part is not None:
                box = part if box is None else box.union(part)
        return box

    def _with_motion(self, obj: SceneObject, joints: Sequence[Joint]) -> SceneObject:
        owned = tuple(j.usd_path for j in joints if j.owner == obj.asset_id)
        return replace(obj, motion=_motion(obj.usd_path, obj.physics, joints), joints=owned)

    def _pose(self, prim: Usd.Prim) -> Pose:
        world = self.xforms.GetLocalToWorldTransform(prim)
        if not matrix_is_finite(world):
            raise NonFiniteValue(
                "transform is not finite",
                scene_id=self.scene_id,
                object=str(prim.GetPath()),
                field="xformOp",
            )
        to_world = to_pipeline(world, self.frame)
        return Pose(position_of(to_world), rotation_of(to_world))

    def _cameras(self) -> list[Camera]:
        cameras: list[Camera] = []
        mpu = self.frame.meters_per_unit
        for prim in self.stage.Traverse():
            if not prim.IsA(UsdGeom.Camera):
                continue
            camera = UsdGeom.Camera(prim)
            clipping = camera.GetClippingRangeAttr().Get()
            cameras.append(
                Camera(
                    usd_path=str(prim.GetPath()),
                    pose=self._pose(prim),
                    projection=str(camera.GetProjectionAttr().Get() or "perspective"),
                    focal_length_mm=_optional_float(camera.GetFocalLengthAttr().Get()),
                    horizontal_aperture_mm=_optional_float(
                        camera.GetHorizontalApertureAttr().Get()
                    ),
                    vertical_aperture_mm=_optional_float(camera.GetVerticalApertureAttr().Get()),
                    clipping_range_m=(
                        (float(clipping[0]) * mpu, float(clipping[1]) * mpu)
                        if clipping is not None
                        else None
                    ),
                )
            )
        return cameras

    def _lights(self) -> list[Light]:
        lights: list[Light] = []
        for prim in self.stage.Traverse():
            if not prim.HasAPI(UsdLux.LightAPI):
                continue
            intensity = UsdLux.LightAPI(prim).GetIntensityAttr().Get()
            lights.append(
                Light(
                    usd_path=str(prim.GetPath()),
                    type_name=str(prim.GetTypeName()),
                    pose=self._pose(prim),
                    intensity=_optional_float(intensity),
                )
            )
        return lights


def _object_id(prim: Usd.Prim) -> str:
    """`/World/Objects/obj_{id}` (the upstream layout) has id `{id}`; elsewhere the prim name."""
    name = str(prim.GetName())
    if prim.GetParent().GetName() in OBJECT_CONTAINER_NAMES and name.startswith("obj_"):
        return name[len("obj_") :] or name
    return name


def _strongest_layer(prim: Usd.Prim) -> str:
    stack = prim.GetPrimStack()
    if not stack:
        return ""
    layer = stack[0].layer
    return str(layer.realPath or layer.identifier)


def _owner_of(body: str | None, objects: Sequence[SceneObject]) -> str | None:
    if body is None:
        return None
    path = Sdf.Path(body)
    for obj in objects:
        if path.HasPrefix(Sdf.Path(obj.usd_path)):
            return obj.asset_id
    return None


def _motion(usd_path: str, physics: PhysicsProperties, joints: Sequence[Joint]) -> MotionKind:
    """Free body, static, kinematic, or the moving part of a joint."""
    bodies = [Sdf.Path(b) for b in physics.rigid_bodies]
    if not bodies:
        return "static"
    if physics.kinematic:
        return "kinematic"
    outermost = [b for b in bodies if not any(b != o and b.HasPrefix(o) for o in bodies)]
    moving = {Sdf.Path(j.body1) for j in joints if j.type != "fixed" and j.body1}
    welded: set[Sdf.Path] = set()
    for j in joints:
        if j.type == "fixed":
            welded.update(Sdf.Path(b) for b in (j.body0, j.body1) if b)
    root = Sdf.Path(usd_path)
    for body in outermost:
        if body in moving:
            if root.HasPrefix(body):
                return "articulated_part"
            continue
        if body in welded:
            continue
        return "free"
    return "static"


def _is_finite(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, (Gf.Quatd, Gf.Quatf, Gf.Quath)):
        return _is_finite([value.GetReal(), *value.GetImaginary()])
    if isinstance(value, (bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return True
    return bool(np.isfinite(array).all())


def _optional_float(value: Any) -> float | None:
    return float(value) if value is not None else None


def plain_value(value: Any) -> Any:
    """customData and attribute values as plain JSON-ready Python (lists, dicts, numbers)."""
    if isinstance(value, Mapping):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Sdf.AssetPath):
        return value.path
    if isinstance(value, (Gf.Quatd, Gf.Quatf, Gf.Quath)):
        return [float(value.GetReal()), *(float(c) for c in value.GetImaginary())]
    try:
        return [plain_value(v) for v in value]
    except TypeError:
        return str(value)
