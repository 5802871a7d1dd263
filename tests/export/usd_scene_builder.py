"""Write small real USD scenes for tests, described once in Z-up metres, in any up axis and unit.

A scene is described as it should come out of the pipeline (Z up, metres); `ScenePlan.write`
authors it natively in the requested stage convention: Y-up positions (x, y, z) -> (x, z, -y),
box sizes and cylinder axes swapped accordingly, everything divided by metersPerUnit. The same
plan written four ways must give the same scene graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from pxr import Gf, Usd, UsdGeom, UsdPhysics, UsdSemantics, UsdShade

Vec3 = tuple[float, float, float]
_Y_UP_TO_Z_UP = Gf.Matrix4d(1, 0, 0, 0, 0, 0, 1, 0, 0, -1, 0, 0, 0, 0, 0, 1)


@dataclass
class Shape:
    """A box or an upright cylinder, relative to its object's origin (Z up, metres)."""

    name: str
    kind: str
    centre: Vec3
    dims: Vec3
    collider: bool = True


@dataclass
class PlannedObject:
    name: str
    position: Vec3
    shapes: list[Shape]
    yaw_deg: float = 0.0
    rigid: bool = False
    mass: float | None = None
    label: str | None = None
    friction: float | None = None
    licence: str | None = "CC0-1.0"


@dataclass
class PlannedJoint:
    """A joint inside object `owner` between two of its shapes; limits in degrees or metres."""

    name: str
    kind: str
    owner: str
    body0: str | None
    body1: str
    anchor: Vec3
    axis: str
    lower: float
    upper: float


@dataclass
class ScenePlan:
    """A scene in the pipeline frame, to be authored into a stage."""

    objects: list[PlannedObject] = field(default_factory=list)
    joints: list[PlannedJoint] = field(default_factory=list)
    container: str = "Objects"

    def write(self, path: Path, up: str = "Z", meters_per_unit: float = 1.0) -> Path:
        stage = Usd.Stage.CreateNew(str(path))
        UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y if up == "Y" else UsdGeom.Tokens.z)
        UsdGeom.SetStageMetersPerUnit(stage, meters_per_unit)
        world = UsdGeom.Xform.Define(stage, "/World")
        stage.SetDefaultPrim(world.GetPrim())
        UsdPhysics.Scene.Define(stage, "/World/PhysicsScene")
        UsdGeom.Scope.Define(stage, f"/World/{self.container}")
        writer = _Writer(stage, up, meters_per_unit)
        for obj in self.objects:
            writer.object(f"/World/{self.container}/{obj.name}", obj)
        for joint in self.joints:
            writer.joint(f"/World/{self.container}", joint)
        stage.GetRootLayer().Save()
        return path


class _Writer:
    def __init__(self, stage: Usd.Stage, up: str, mpu: float) -> None:
        self.stage, self.up, self.mpu = stage, up, mpu

    def point(self, p: Vec3) -> Gf.Vec3d:
        x, y, z = (v / self.mpu for v in p)
        return Gf.Vec3d(x, z, -y) if self.up == "Y" else Gf.Vec3d(x, y, z)

    def size(self, d: Vec3) -> Gf.Vec3d:
        x, y, z = (v / self.mpu for v in d)
        return Gf.Vec3d(x, z, y) if self.up == "Y" else Gf.Vec3d(x, y, z)

    def orientation(self, yaw_deg: float) -> Gf.Quatd:
        rotation = Gf.Matrix4d().SetRotate(Gf.Rotation(Gf.Vec3d(0, 0, 1), yaw_deg))
        if self.up == "Y":
            rotation = _Y_UP_TO_Z_UP * rotation * _Y_UP_TO_Z_UP.GetInverse()
        return rotation.ExtractRotationQuat()

    def object(self, path: str, obj: PlannedObject) -> None:
        xform = UsdGeom.Xform.Define(self.stage, path)
        xform.AddTranslateOp().Set(self.point(obj.position))
        xform.AddOrientOp(UsdGeom.XformOp.PrecisionDouble).Set(self.orientation(obj.yaw_deg))
        prim = xform.GetPrim()
        if obj.label:
            UsdSemantics.LabelsAPI.Apply(prim, "class").CreateLabelsAttr([obj.label])
        if obj.licence is not None:
            prim.SetCustomDataByKey("license", obj.licence)
        if obj.rigid:
            UsdPhysics.RigidBodyAPI.Apply(prim)
        if obj.mass is not None:
            UsdPhysics.MassAPI.Apply(prim).CreateMassAttr(obj.mass)
        material = None
        if obj.friction is not None:
            material = UsdShade.Material.Define(self.stage, f"{path}/PhysicsMaterial")
            api = UsdPhysics.MaterialAPI.Apply(material.GetPrim())
            api.CreateDynamicFrictionAttr(obj.friction)
            api.CreateStaticFrictionAttr(obj.friction)
        for shape in obj.shapes:
            self.shape(f"{path}/{shape.name}", shape, material)

    def shape(self, path: str, shape: Shape, material: UsdShade.Material | None) -> None:
        if shape.kind == "box":
            geom = UsdGeom.Cube.Define(self.stage, path)
            geom.CreateSizeAttr(1.0)
            geom.AddTranslateOp().Set(self.point(shape.centre))
            geom.AddScaleOp().Set(self.size(shape.dims))
        else:
            geom = UsdGeom.Cylinder.Define(self.stage, path)
            geom.CreateAxisAttr("Y" if self.up == "Y" else "Z")
            geom.CreateRadiusAttr(shape.dims[0] / 2 / self.mpu)
            geom.CreateHeightAttr(shape.dims[2] / self.mpu)
            geom.AddTranslateOp().Set(self.point(shape.centre))
        prim = geom.GetPrim()
        if shape.collider:
            UsdPhysics.CollisionAPI.Apply(prim)
            if material is not None:
                UsdShade.MaterialBindingAPI.Apply(prim).Bind(
                    material, UsdShade.Tokens.weakerThanDescendants, "physics"
                )

    def joint(self, container: str, joint: PlannedJoint) -> None:
        owner = f"{container}/{joint.owner}"
        if joint.kind == "revolute":
            prim = UsdPhysics.RevoluteJoint.Define(self.stage, f"{owner}/{joint.name}")
            scale = 1.0
        else:
            prim = UsdPhysics.PrismaticJoint.Define(self.stage, f"{owner}/{joint.name}")
            scale = 1.0 / self.mpu
        body1 = self.stage.GetPrimAtPath(f"{owner}/{joint.body1}")
        UsdPhysics.RigidBodyAPI.Apply(body1)
        prim.CreateBody1Rel().SetTargets([body1.GetPath()])
        # The joint frame sits in each body's own space (body0 unset means the world).
        cache = UsdGeom.XformCache()
        anchor = self.point(joint.anchor)
        local0 = anchor
        if joint.body0 is not None:
            body0 = self.stage.GetPrimAtPath(f"{owner}/{joint.body0}")
            prim.CreateBody0Rel().SetTargets([body0.GetPath()])
            local0 = cache.GetLocalToWorldTransform(body0).GetInverse().Transform(anchor)
        local1 = cache.GetLocalToWorldTransform(body1).GetInverse().Transform(anchor)
        prim.CreateLocalPos0Attr(Gf.Vec3f(local0))
        prim.CreateLocalPos1Attr(Gf.Vec3f(local1))
        axis, lower, upper = joint.axis, joint.lower * scale, joint.upper * scale
        if self.up == "Y":
            # Z-up +Y is Y-up -Z: the same motion along the stage's Z needs negated limits.
            if axis == "Y":
                lower, upper = -upper, -lower
            axis = {"X": "X", "Y": "Z", "Z": "Y"}[axis]
        prim.CreateAxisAttr(axis)
        prim.CreateLowerLimitAttr(lower)
        prim.CreateUpperLimitAttr(upper)


def tabletop_plan() -> ScenePlan:
    """A table with a mug, a rotated block with a box stacked on it, a bin holding a ball, three
    cans in a row, and a cabinet with a sliding drawer; sized for a Franka Panda."""
    top = 0.75
    table = PlannedObject(
        "obj_table",
        (0.0, 0.0, 0.0),
        [Shape("Top", "box", (0.0, 0.0, top - 0.02), (1.4, 0.9, 0.04))]
        + [
            Shape(f"Leg{i}", "box", (x, y, 0.365), (0.05, 0.05, 0.73))
            for i, (x, y) in enumerate(((0.6, 0.4), (-0.6, 0.4), (0.6, -0.4), (-0.6, -0.4)))
        ],
        label="table",
        friction=0.5,
    )
    mug = PlannedObject(
        "obj_mug",
        (-0.35, 0.25, top),
        [Shape("Body", "cylinder", (0.0, 0.0, 0.045), (0.07, 0.07, 0.09))],
        rigid=True,
        mass=0.3,
        label="mug",
        friction=0.6,
    )
    block = PlannedObject(
        "obj_block",
        (0.0, 0.25, top),
        [Shape("Block", "box", (0.0, 0.0, 0.03), (0.06, 0.06, 0.06))],
        yaw_deg=30.0,
        rigid=True,
        mass=0.2,
        label="block",
    )
    topper = PlannedObject(
        "obj_topper",
        (0.0, 0.25, top + 0.06),
        [Shape("Block", "box", (0.0, 0.0, 0.02), (0.04, 0.04, 0.04))],
        rigid=True,
        mass=0.05,
        label="block",
    )
    bin_walls = [
        Shape("Floor", "box", (0.0, 0.0, 0.005), (0.2, 0.2, 0.01)),
        Shape("WallA", "box", (0.095, 0.0, 0.05), (0.01, 0.2, 0.1)),
        Shape("WallB", "box", (-0.095, 0.0, 0.05), (0.01, 0.2, 0.1)),
        Shape("WallC", "box", (0.0, 0.095, 0.05), (0.2, 0.01, 0.1)),
        Shape("WallD", "box", (0.0, -0.095, 0.05), (0.2, 0.01, 0.1)),
    ]
    bin_ = PlannedObject("obj_bin", (0.35, 0.2, top), bin_walls, label="bin")
    ball = PlannedObject(
        "obj_ball",
        (0.35, 0.2, top + 0.01),
        [Shape("Ball", "cylinder", (0.0, 0.0, 0.03), (0.06, 0.06, 0.06))],
        rigid=True,
        mass=0.1,
        label="ball",
    )
    cans = [
        PlannedObject(
            f"obj_can{i}",
            (x, -0.25, top),
            [Shape("Body", "cylinder", (0.0, 0.0, 0.06), (0.066, 0.066, 0.12))],
            rigid=True,
            mass=0.35,
            label="can",
        )
        for i, x in enumerate((-0.4, -0.2, 0.0))
    ]
    cabinet = PlannedObject(
        "obj_cabinet",
        (1.2, 0.0, 0.0),
        [
            Shape("Body", "box", (0.0, 0.0, 0.4), (0.4, 0.5, 0.8)),
            Shape("Drawer", "box", (-0.25, 0.0, 0.6), (0.1, 0.4, 0.15)),
        ],
        label="cabinet",
    )
    drawer = PlannedJoint(
        "DrawerSlide",
        "prismatic",
        "obj_cabinet",
        "Body",
        "Drawer",
        (0.95, 0.0, 0.6),
        "X",
        -0.3,
        0.0,
    )
    return ScenePlan(
        objects=[table, mug, block, topper, bin_, ball, *cans, cabinet], joints=[drawer]
    )


def single_object_plan(**overrides: object) -> ScenePlan:
    """One mug on a table: the smallest useful scene; `overrides` change the mug."""
    plan = tabletop_plan()
    plan.objects = [plan.objects[0], plan.objects[1]]
    plan.joints = []
    for key, value in overrides.items():
        setattr(plan.objects[1], key, value)
    return plan


def degrees(radians: float) -> float:
    return radians * 180.0 / math.pi
