"""Read UsdPhysics data: rigid bodies, colliders, mass, physics materials and joints.

Values are converted to SI units with the stage's `metersPerUnit` and `kilogramsPerUnit`;
joint axes and anchors are carried into the pipeline frame. Impossible values (negative mass or
friction, inverted limits, NaN) are permanent errors naming the prim and attribute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade

from bp_export.scene.model import Joint, JointType, PhysicsProperties
from bp_export.scene_errors import InvalidJoint, InvalidPhysics, NonFiniteValue
from bp_export.usd.world_frame import (
    StageFrame,
    to_pipeline,
    transform_direction,
    transform_point,
)

_AXES = {"X": (1.0, 0.0, 0.0), "Y": (0.0, 1.0, 0.0), "Z": (0.0, 0.0, 1.0)}


def is_rigid_body(prim: Usd.Prim) -> bool:
    return bool(prim.HasAPI(UsdPhysics.RigidBodyAPI))


def rigid_body_enabled(prim: Usd.Prim) -> bool:
    value = UsdPhysics.RigidBodyAPI(prim).GetRigidBodyEnabledAttr().Get()
    return value is None or bool(value)


def is_kinematic(prim: Usd.Prim) -> bool:
    return bool(UsdPhysics.RigidBodyAPI(prim).GetKinematicEnabledAttr().Get())


def is_collider(prim: Usd.Prim) -> bool:
    if not prim.HasAPI(UsdPhysics.CollisionAPI):
        return False
    enabled = UsdPhysics.CollisionAPI(prim).GetCollisionEnabledAttr().Get()
    return enabled is None or bool(enabled)


def read_object_physics(
    prims: Sequence[Usd.Prim],
    *,
    meters_per_unit: float,
    kilograms_per_unit: float,
    scene_id: str,
    object_path: str,
) -> PhysicsProperties:
    """Physics of one object from the prims of its subtree (object root first)."""
    bodies = [p for p in prims if is_rigid_body(p) and rigid_body_enabled(p)]
    colliders = [p for p in prims if is_collider(p)]
    masses = _authored(prims, "physics:mass", scene_id, object_path)
    densities = _authored(prims, "physics:density", scene_id, object_path)
    for path, mass in masses.items():
        if mass < 0:
            raise InvalidPhysics(
                "mass is negative",
                scene_id=scene_id,
                object=object_path,
                field=f"{path}.physics:mass",
                value=mass,
            )
    mass_units = _object_mass(prims, bodies, masses)
    density = next((d for d in densities.values() if d > 0), None)

    static_friction = dynamic_friction = restitution = None
    for collider in colliders or list(prims):
        material = _physics_material(collider)
        if material is None:
            continue
        values = _material_values(material, scene_id, object_path)
        static_friction, dynamic_friction, restitution, material_density = values
        if density is None and material_density is not None and material_density > 0:
            density = material_density
        break

    root_body = min(bodies, key=lambda p: p.GetPath().pathElementCount, default=None)
    return PhysicsProperties(
        mass_kg=mass_units * kilograms_per_unit if mass_units else None,
        density_kg_m3=(
            density * kilograms_per_unit / meters_per_unit**3 if density is not None else None
        ),
        static_friction=static_friction,
        dynamic_friction=dynamic_friction,
        restitution=restitution,
        rigid_bodies=tuple(str(p.GetPath()) for p in bodies),
        colliders=tuple(str(p.GetPath()) for p in colliders),
        kinematic=root_body is not None and is_kinematic(root_body),
    )


def _authored(
    prims: Sequence[Usd.Prim], name: str, scene_id: str, object_path: str
) -> dict[str, float]:
    found: dict[str, float] = {}
    for prim in prims:
        attr = prim.GetAttribute(name)
        if not attr or not attr.HasAuthoredValue():
            continue
        value = float(attr.Get())
        if not math.isfinite(value):
            raise NonFiniteValue(
                f"{name} is not a finite number",
                scene_id=scene_id,
                object=object_path,
                field=f"{prim.GetPath()}.{name}",
            )
        found[str(prim.GetPath())] = value
    return found


def _object_mass(
    prims: Sequence[Usd.Prim], bodies: Sequence[Usd.Prim], masses: dict[str, float]
) -> float:
    """Total mass: a mass on a prim covers its subtree, except nested rigid bodies (own mass)."""
    root = prims[0].GetPath()
    body_paths = {p.GetPath() for p in bodies}
    total = 0.0
    for text, mass in masses.items():
        if mass <= 0:
            continue
        path = Sdf.Path(text)
        covered = False
        if path == root or path not in body_paths:
            ancestor = path.GetParentPath()
            while ancestor.HasPrefix(root):
                if masses.get(str(ancestor), 0.0) > 0:
                    covered = True
                    break
                if ancestor in body_paths:
                    break
                ancestor = ancestor.GetParentPath()
        if not covered:
            total += mass
    return total


def _physics_material(prim: Usd.Prim) -> Usd.Prim | None:
    material, _ = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial("physics")
    if material and material.GetPrim().HasAPI(UsdPhysics.MaterialAPI):
        return material.GetPrim()
    rel = prim.GetRelationship("material:binding:physics")
    if rel:
        for target in rel.GetTargets():
            candidate = prim.GetStage().GetPrimAtPath(target)
            if candidate and candidate.HasAPI(UsdPhysics.MaterialAPI):
                return candidate
    if prim.HasAPI(UsdPhysics.MaterialAPI):
        return prim
    return None


def _material_values(
    material: Usd.Prim, scene_id: str, object_path: str
) -> tuple[float | None, float | None, float | None, float | None]:
    api = UsdPhysics.MaterialAPI(material)
    values: list[float | None] = []
    for attr in (
        api.GetStaticFrictionAttr(),
        api.GetDynamicFrictionAttr(),
        api.GetRestitutionAttr(),
        api.GetDensityAttr(),
    ):
        if not attr.HasAuthoredValue():
            values.append(None)
            continue
        value = float(attr.Get())
        field = f"{material.GetPath()}.{attr.GetName()}"
        if not math.isfinite(value):
            raise NonFiniteValue(
                "physics material value is not finite",
                scene_id=scene_id,
                object=object_path,
                field=field,
            )
        if value < 0:
            raise InvalidPhysics(
                "physics material value is negative",
                scene_id=scene_id,
                object=object_path,
                field=field,
                value=value,
            )
        values.append(value)
    return values[0], values[1], values[2], values[3]


def read_joints(
    stage: Usd.Stage, frame: StageFrame, xform_cache: UsdGeom.XformCache, scene_id: str
) -> list[Joint]:
    """Every enabled physics joint of the stage, in the pipeline frame (owner not yet known)."""
    joints: list[Joint] = []
    for prim in stage.Traverse():
        if not prim.IsA(UsdPhysics.Joint):
            continue
        joint = UsdPhysics.Joint(prim)
        enabled = joint.GetJointEnabledAttr().Get()
        if enabled is not None and not enabled:
            continue
        joints.append(_read_joint(prim, joint, frame, xform_cache, scene_id))
    return joints


def _joint_type(prim: Usd.Prim) -> JointType:
    if prim.IsA(UsdPhysics.RevoluteJoint):
        return "revolute"
    if prim.IsA(UsdPhysics.PrismaticJoint):
        return "prismatic"
    if prim.IsA(UsdPhysics.FixedJoint):
        return "fixed"
    if prim.IsA(UsdPhysics.SphericalJoint):
        return "spherical"
    if prim.IsA(UsdPhysics.DistanceJoint):
        return "distance"
    return "generic"


def _body(prim: Usd.Prim, rel: Usd.Relationship, scene_id: str) -> Usd.Prim | None:
    targets = rel.GetTargets() if rel else []
    if not targets:
        return None
    body = prim.GetStage().GetPrimAtPath(targets[0])
    if not body or not body.IsValid():
        raise InvalidJoint(
            "joint body is not a prim of the scene",
            scene_id=scene_id,
            object=str(prim.GetPath()),
            field=rel.GetName(),
            value=str(targets[0]),
        )
    return body


def _read_joint(
    prim: Usd.Prim,
    joint: UsdPhysics.Joint,
    frame: StageFrame,
    xform_cache: UsdGeom.XformCache,
    scene_id: str,
) -> Joint:
    path = str(prim.GetPath())
    joint_type = _joint_type(prim)
    body0 = _body(prim, joint.GetBody0Rel(), scene_id)
    body1 = _body(prim, joint.GetBody1Rel(), scene_id)
    if body0 is None and body1 is None:
        raise InvalidJoint(
            "joint connects no bodies", scene_id=scene_id, object=path, field="physics:body0"
        )

    body0_world = (
        xform_cache.GetLocalToWorldTransform(body0) if body0 is not None else Gf.Matrix4d(1.0)
    )
    frame0 = to_pipeline(body0_world, frame)
    local_pos = joint.GetLocalPos0Attr().Get() or Gf.Vec3f(0.0)
    local_rot = joint.GetLocalRot0Attr().Get() or Gf.Quatf(1.0)
    _require_finite(
        [*local_pos, local_rot.GetReal(), *local_rot.GetImaginary()],
        scene_id,
        path,
        "physics:localPos0/localRot0",
    )
    anchor = transform_point(frame0, local_pos)

    axis = None
    lower = upper = None
    if joint_type in ("revolute", "prismatic"):
        typed = (
            UsdPhysics.RevoluteJoint(prim)
            if joint_type == "revolute"
            else UsdPhysics.PrismaticJoint(prim)
        )
        token = str(typed.GetAxisAttr().Get() or "X")
        if token not in _AXES:
            raise InvalidJoint(
                "joint axis must be X, Y or Z",
                scene_id=scene_id,
                object=path,
                field="physics:axis",
                value=token,
            )
        rotated = Gf.Rotation(Gf.Quatd(local_rot)).TransformDir(Gf.Vec3d(*_AXES[token]))
        axis = transform_direction(frame0, rotated)
        lower, upper = _limits(typed, joint_type, frame, scene_id, path)
    return Joint(
        usd_path=path,
        name=prim.GetName(),
        type=joint_type,
        body0=str(body0.GetPath()) if body0 is not None else None,
        body1=str(body1.GetPath()) if body1 is not None else None,
        axis=axis,
        anchor=anchor,
        lower=lower,
        upper=upper,
        owner=None,
        moving_part_bbox=None,
    )


def _limits(
    typed: UsdPhysics.RevoluteJoint | UsdPhysics.PrismaticJoint,
    joint_type: str,
    frame: StageFrame,
    scene_id: str,
    path: str,
) -> tuple[float | None, float | None]:
    raw_lower = typed.GetLowerLimitAttr().Get()
    raw_upper = typed.GetUpperLimitAttr().Get()
    lower = float(raw_lower) if raw_lower is not None else -math.inf
    upper = float(raw_upper) if raw_upper is not None else math.inf
    for name, value in (("physics:lowerLimit", lower), ("physics:upperLimit", upper)):
        if math.isnan(value):
            raise NonFiniteValue("joint limit is NaN", scene_id=scene_id, object=path, field=name)
    if lower > upper:
        raise InvalidJoint(
            "joint lower limit is above its upper limit",
            scene_id=scene_id,
            object=path,
            field="physics:lowerLimit",
            value=f"{lower} > {upper}",
        )
    scale = math.pi / 180.0 if joint_type == "revolute" else frame.meters_per_unit
    return (
        lower * scale if math.isfinite(lower) else None,
        upper * scale if math.isfinite(upper) else None,
    )


def _require_finite(values: Sequence[float], scene_id: str, path: str, field: str) -> None:
    if not all(math.isfinite(float(v)) for v in values):
        raise NonFiniteValue(
            "joint frame is not finite", scene_id=scene_id, object=path, field=field
        )
