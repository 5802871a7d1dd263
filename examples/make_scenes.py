"""Generate the sample scenes under examples/ with usd-core: a kitchen table and a cabinet.

- `examples/kitchen_table/scene.usda`: the upstream layout (Y up, metres, default prim `/World`,
  objects at `/World/Objects/obj_{id}`, a `/World/PhysicsScene`): a static table with a mug, a
  cube, a bowl and a bottle on it, sized for a Franka Panda (table top at 0.75 m, objects 5-8 cm
  across, within its 8 cm gripper opening), each a rigid body with mass, collider, friction,
  semantic label and a licence in customData; plus `scene_manifest.json` beside it.
- `examples/cabinet/scene.usda`: Z up, metres: a low sideboard (0.58 m wide, 0.4 m deep,
  0.75 m tall) with a 0.325 m door on a revolute joint that opens 90 degrees (limits -90..0
  about +Z), an open shelf niche beside it, a can standing on its top, and a floor. A robot
  standing in front of the niche, clear of the door's swing, can open and close the door and
  move the can.

Run from the repository root: `.venv/bin/python examples/make_scenes.py [--out DIR]`. The
output is deterministic, so re-running it leaves the files unchanged.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pxr import Gf, Usd, UsdGeom, UsdLux, UsdPhysics, UsdSemantics, UsdShade

EXAMPLES = Path(__file__).resolve().parent
LICENCE = "CC0-1.0"
SOURCE = "BlueprintPipeline examples/make_scenes.py"
TABLE_TOP_HEIGHT = 0.75


@dataclass(frozen=True)
class Axes:
    """Writes positions and sizes given Z up into a stage whose up axis may be Y."""

    up: str

    def point(self, x: float, y: float, z: float) -> Gf.Vec3d:
        # Z-up (x, y, z) is Y-up (x, z, -y): the inverse of the pipeline's +90 deg about X.
        return Gf.Vec3d(x, z, -y) if self.up == "Y" else Gf.Vec3d(x, y, z)

    def size(self, dx: float, dy: float, dz: float) -> Gf.Vec3d:
        return Gf.Vec3d(dx, dz, dy) if self.up == "Y" else Gf.Vec3d(dx, dy, dz)

    @property
    def vertical(self) -> str:
        return self.up


@dataclass
class ObjectSpec:
    """One object of a sample scene, described Z up in metres."""

    object_id: str
    category: str
    description: str
    sim_role: str
    affordances: list[str]
    position: tuple[float, float, float]
    dimensions: tuple[float, float, float]
    mass: float | None = None
    friction: float = 0.6
    restitution: float = 0.1
    extra: dict[str, Any] = field(default_factory=dict)


def new_stage(path: Path, up: str) -> Usd.Stage:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y if up == "Y" else UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    UsdPhysics.SetStageKilogramsPerUnit(stage, 1.0)
    world = UsdGeom.Xform.Define(stage, "/World")
    stage.SetDefaultPrim(world.GetPrim())
    UsdGeom.Scope.Define(stage, "/World/Objects")
    UsdGeom.Scope.Define(stage, "/World/Looks")
    scene = UsdPhysics.Scene.Define(stage, "/World/PhysicsScene")
    gravity = (0.0, -1.0, 0.0) if up == "Y" else (0.0, 0.0, -1.0)
    scene.CreateGravityDirectionAttr(Gf.Vec3f(*gravity))
    scene.CreateGravityMagnitudeAttr(9.81)
    return stage


def physics_material(
    stage: Usd.Stage, name: str, friction: float, restitution: float
) -> UsdShade.Material:
    material = UsdShade.Material.Define(stage, f"/World/Looks/{name}")
    api = UsdPhysics.MaterialAPI.Apply(material.GetPrim())
    api.CreateStaticFrictionAttr(friction)
    api.CreateDynamicFrictionAttr(friction)
    api.CreateRestitutionAttr(restitution)
    return material


def object_root(stage: Usd.Stage, axes: Axes, spec: ObjectSpec, *, rigid: bool) -> Usd.Prim:
    xform = UsdGeom.Xform.Define(stage, f"/World/Objects/obj_{spec.object_id}")
    xform.AddTranslateOp().Set(axes.point(*spec.position))
    prim = xform.GetPrim()
    UsdSemantics.LabelsAPI.Apply(prim, "class").CreateLabelsAttr([spec.category])
    prim.SetCustomDataByKey("license", LICENCE)
    prim.SetCustomDataByKey("source", SOURCE)
    if rigid:
        UsdPhysics.RigidBodyAPI.Apply(prim)
        if spec.mass is not None:
            UsdPhysics.MassAPI.Apply(prim).CreateMassAttr(spec.mass)
    return prim


def collider(prim: Usd.Prim, material: UsdShade.Material, approximation: str | None = None) -> None:
    UsdPhysics.CollisionAPI.Apply(prim)
    if approximation is not None:
        UsdPhysics.MeshCollisionAPI.Apply(prim).CreateApproximationAttr(approximation)
    UsdShade.MaterialBindingAPI.Apply(prim).Bind(
        material, UsdShade.Tokens.weakerThanDescendants, "physics"
    )


def box(
    stage: Usd.Stage,
    path: str,
    axes: Axes,
    centre: tuple[float, float, float],
    dims: tuple[float, float, float],
    color: tuple[float, float, float],
) -> Usd.Prim:
    """A box given by its centre (relative to its parent) and Z-up dimensions."""
    cube = UsdGeom.Cube.Define(stage, path)
    cube.CreateSizeAttr(1.0)
    cube.AddTranslateOp().Set(axes.point(*centre))
    cube.AddScaleOp().Set(axes.size(*dims))
    cube.CreateDisplayColorAttr([Gf.Vec3f(*color)])
    return cube.GetPrim()


def cylinder(
    stage: Usd.Stage,
    path: str,
    axes: Axes,
    centre: tuple[float, float, float],
    radius: float,
    height: float,
    color: tuple[float, float, float],
) -> Usd.Prim:
    shape = UsdGeom.Cylinder.Define(stage, path)
    shape.CreateAxisAttr(axes.vertical)
    shape.CreateRadiusAttr(radius)
    shape.CreateHeightAttr(height)
    extent = [Gf.Vec3f(-radius, -radius, -radius), Gf.Vec3f(radius, radius, radius)]
    axis_index = 1 if axes.vertical == "Y" else 2
    extent[0][axis_index], extent[1][axis_index] = -height / 2, height / 2
    shape.CreateExtentAttr(extent)
    shape.AddTranslateOp().Set(axes.point(*centre))
    shape.CreateDisplayColorAttr([Gf.Vec3f(*color)])
    return shape.GetPrim()


def bowl_mesh(
    stage: Usd.Stage,
    path: str,
    axes: Axes,
    radius: float,
    height: float,
    wall: float,
    segments: int = 24,
) -> Usd.Prim:
    """An open bowl: a lathe of an outer and an inner profile, its bottom at z = 0."""
    profile_out = [(radius * 0.55, 0.0), (radius * 0.85, height * 0.35), (radius, height)]
    profile_in = [
        (radius - wall, height),
        (radius * 0.85 - wall, height * 0.4),
        (radius * 0.55 - wall, wall),
    ]
    profile = profile_out + profile_in
    points: list[Gf.Vec3f] = []
    for step in range(segments):
        angle = 2 * math.pi * step / segments
        for r, z in profile:
            p = axes.point(r * math.cos(angle), r * math.sin(angle), z)
            points.append(Gf.Vec3f(p))
    centre_index = len(points)
    points.append(Gf.Vec3f(axes.point(0.0, 0.0, 0.0)))
    points.append(Gf.Vec3f(axes.point(0.0, 0.0, wall)))
    counts: list[int] = []
    indices: list[int] = []
    ring = len(profile)
    for step in range(segments):
        nxt = (step + 1) % segments
        for k in range(ring - 1):
            counts.append(4)
            indices.extend(
                [step * ring + k, nxt * ring + k, nxt * ring + k + 1, step * ring + k + 1]
            )
        counts.extend([3, 3])
        indices.extend([centre_index, nxt * ring, step * ring])
        indices.extend([centre_index + 1, step * ring + ring - 1, nxt * ring + ring - 1])
    mesh = UsdGeom.Mesh.Define(stage, path)
    mesh.CreatePointsAttr(points)
    mesh.CreateFaceVertexCountsAttr(counts)
    mesh.CreateFaceVertexIndicesAttr(indices)
    mesh.CreateSubdivisionSchemeAttr(UsdGeom.Tokens.none)
    mesh.CreateExtentAttr(UsdGeom.PointBased.ComputeExtent(points))
    mesh.CreateDisplayColorAttr([Gf.Vec3f(0.9, 0.9, 0.85)])
    return mesh.GetPrim()


def camera_and_light(
    stage: Usd.Stage,
    axes: Axes,
    eye: tuple[float, float, float],
    target: tuple[float, float, float],
) -> None:
    camera = UsdGeom.Camera.Define(stage, "/World/Camera")
    camera.CreateFocalLengthAttr(18.0)
    camera.CreateHorizontalApertureAttr(20.955)
    camera.CreateVerticalApertureAttr(15.29)
    camera.CreateClippingRangeAttr(Gf.Vec2f(0.01, 100.0))
    up = Gf.Vec3d(0, 1, 0) if axes.up == "Y" else Gf.Vec3d(0, 0, 1)
    look = Gf.Matrix4d().SetLookAt(axes.point(*eye), axes.point(*target), up).GetInverse()
    camera.AddTransformOp().Set(look)
    light = UsdLux.DistantLight.Define(stage, "/World/KeyLight")
    light.CreateIntensityAttr(3000.0)
    light.AddRotateXYZOp().Set(Gf.Vec3f(-45.0, 30.0, 0.0))


def kitchen_table(out: Path = EXAMPLES / "kitchen_table") -> None:
    axes = Axes("Y")
    stage = new_stage(out / "scene.usda", "Y")
    wood = physics_material(stage, "Wood", friction=0.5, restitution=0.1)
    ceramic = physics_material(stage, "Ceramic", friction=0.6, restitution=0.1)
    glass = physics_material(stage, "Glass", friction=0.4, restitution=0.1)
    plastic = physics_material(stage, "Plastic", friction=0.7, restitution=0.2)
    top = TABLE_TOP_HEIGHT
    specs = {
        "table": ObjectSpec(
            "table",
            "table",
            "A wooden kitchen table, 1.2 m by 0.8 m.",
            "static",
            [],
            (0.0, 0.0, 0.0),
            (1.2, 0.8, top),
            friction=0.5,
        ),
        "mug": ObjectSpec(
            "mug",
            "mug",
            "A white ceramic mug, 7 cm across.",
            "manipulable_object",
            ["Graspable", "Containable"],
            (-0.15, 0.15, top),
            (0.07, 0.07, 0.09),
            mass=0.30,
        ),
        "cube": ObjectSpec(
            "cube",
            "cube",
            "A red wooden block, 5 cm on a side.",
            "manipulable_object",
            ["Graspable"],
            (0.0, 0.15, top),
            (0.05, 0.05, 0.05),
            mass=0.10,
            friction=0.7,
            restitution=0.2,
        ),
        "bowl": ObjectSpec(
            "bowl",
            "bowl",
            "A small ceramic bowl, 8 cm across, 4.5 cm deep.",
            "manipulable_object",
            ["Graspable", "Containable"],
            (-0.2, -0.15, top),
            (0.08, 0.08, 0.045),
            mass=0.15,
        ),
        "bottle": ObjectSpec(
            "bottle",
            "bottle",
            "A glass bottle, 6 cm across, 28 cm tall.",
            "manipulable_object",
            ["Graspable"],
            (0.15, -0.12, top),
            (0.06, 0.06, 0.28),
            mass=0.45,
            friction=0.4,
        ),
    }

    table = object_root(stage, axes, specs["table"], rigid=False)
    base = str(table.GetPath())
    thickness = 0.04
    top_prim = box(
        stage,
        f"{base}/Top",
        axes,
        (0.0, 0.0, top - thickness / 2),
        (1.2, 0.8, thickness),
        (0.55, 0.35, 0.2),
    )
    collider(top_prim, wood)
    leg_height = top - thickness
    for index, (x, y) in enumerate(((0.55, 0.35), (-0.55, 0.35), (0.55, -0.35), (-0.55, -0.35))):
        leg = box(
            stage,
            f"{base}/Leg{index}",
            axes,
            (x, y, leg_height / 2),
            (0.05, 0.05, leg_height),
            (0.45, 0.3, 0.15),
        )
        collider(leg, wood)

    mug = object_root(stage, axes, specs["mug"], rigid=True)
    body = cylinder(
        stage, f"{mug.GetPath()}/Body", axes, (0.0, 0.0, 0.045), 0.035, 0.09, (0.95, 0.95, 0.95)
    )
    collider(body, ceramic)
    handle = box(
        stage,
        f"{mug.GetPath()}/Handle",
        axes,
        (0.045, 0.0, 0.05),
        (0.02, 0.012, 0.05),
        (0.95, 0.95, 0.95),
    )
    collider(handle, ceramic)

    cube = object_root(stage, axes, specs["cube"], rigid=True)
    collider(
        box(
            stage,
            f"{cube.GetPath()}/Block",
            axes,
            (0.0, 0.0, 0.025),
            (0.05, 0.05, 0.05),
            (0.8, 0.1, 0.1),
        ),
        plastic,
    )

    bowl = object_root(stage, axes, specs["bowl"], rigid=True)
    collider(
        bowl_mesh(stage, f"{bowl.GetPath()}/Shell", axes, 0.04, 0.045, 0.005),
        ceramic,
        "convexDecomposition",
    )

    bottle = object_root(stage, axes, specs["bottle"], rigid=True)
    collider(
        cylinder(
            stage, f"{bottle.GetPath()}/Body", axes, (0.0, 0.0, 0.1), 0.03, 0.2, (0.2, 0.5, 0.3)
        ),
        glass,
    )
    collider(
        cylinder(
            stage, f"{bottle.GetPath()}/Neck", axes, (0.0, 0.0, 0.24), 0.013, 0.08, (0.2, 0.5, 0.3)
        ),
        glass,
    )

    camera_and_light(stage, axes, eye=(-1.0, 0.0, 1.5), target=(0.0, 0.0, top))
    stage.GetRootLayer().Save()
    write_manifest(
        out / "scene_manifest.json", "kitchen_table", "y_up", "kitchen", list(specs.values()), axes
    )


def write_manifest(
    path: Path, scene_id: str, frame: str, environment: str, specs: list[ObjectSpec], axes: Axes
) -> None:
    objects: list[dict[str, Any]] = []
    for spec in specs:
        position = axes.point(*spec.position)
        width, depth, height = spec.dimensions
        objects.append(
            {
                "id": spec.object_id,
                "name": spec.object_id.replace("_", " "),
                "category": spec.category,
                "description": spec.description,
                "sim_role": spec.sim_role,
                "asset": {"path": None, "source": SOURCE, "license": LICENCE},
                "transform": {
                    "position": {"x": position[0], "y": position[1], "z": position[2]},
                    "rotation_quaternion": {"w": 1.0, "x": 0.0, "y": 0.0, "z": 0.0},
                    "scale": {"x": 1.0, "y": 1.0, "z": 1.0},
                },
                "dimensions_est": {"width": width, "depth": depth, "height": height},
                "semantics": {
                    "class": spec.category,
                    "affordances": spec.affordances,
                    "affordance_params": {},
                },
                "physics": {
                    "mass": spec.mass,
                    "friction": spec.friction,
                    "restitution": spec.restitution,
                },
                "articulation": None,
                "relationships": [],
            }
        )
    manifest = {
        "version": "1.0",
        "scene_id": scene_id,
        "scene": {
            "coordinate_frame": frame,
            "meters_per_unit": 1.0,
            "environment_type": environment,
            "room": {"bounds": {"min": [-2.0, -2.0, 0.0], "max": [2.0, 2.0, 2.5]}},
            "physics_defaults": {"gravity": 9.81, "friction": 0.5, "restitution": 0.1},
        },
        "objects": objects,
    }
    path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class CabinetLayout:
    """The cabinet sample's geometry (Z up, metres): a low sideboard with one door and a can on top.

    The front faces -X and `x` is the floor point under the cabinet's centre. A divider splits
    the inside into a closed compartment on the -Y side, behind the door, and an open niche on
    the +Y side. The door hangs on a vertical hinge at its +Y edge, next to the niche, and swings
    out a quarter turn towards -X, so a robot standing in front of the niche or beyond it keeps
    clear of the swing and still meets the handle's outer face all the way round. The can
    stands on the top above the niche, near the front, within reach of such a robot.
    """

    x: float = 0.8
    width: float = 0.58
    depth: float = 0.4
    height: float = 0.75
    panel: float = 0.02
    door_width: float = 0.325
    door_open_deg: float = 90.0
    can_xy: tuple[float, float] = (0.65, 0.16)


CABINET = CabinetLayout()


def cabinet(out: Path = EXAMPLES / "cabinet", layout: CabinetLayout = CABINET) -> None:
    axes = Axes("Z")
    stage = new_stage(out / "scene.usda", "Z")
    wood = physics_material(stage, "Wood", friction=0.5, restitution=0.1)
    metal = physics_material(stage, "Metal", friction=0.4, restitution=0.1)
    concrete = physics_material(stage, "Concrete", friction=0.8, restitution=0.05)

    floor_spec = ObjectSpec(
        "floor", "floor", "The room floor.", "scene_shell", [], (0.5, 0.0, 0.0), (3.0, 3.0, 0.02)
    )
    floor = object_root(stage, axes, floor_spec, rigid=False)
    collider(
        box(
            stage,
            f"{floor.GetPath()}/Slab",
            axes,
            (0.0, 0.0, -0.01),
            (3.0, 3.0, 0.02),
            (0.6, 0.6, 0.6),
        ),
        concrete,
    )

    # The cabinet's origin is the floor point under its centre; its front faces -X (towards a
    # robot standing near the origin).
    width, depth, height, panel = layout.width, layout.depth, layout.height, layout.panel
    door_width = layout.door_width
    cabinet_spec = ObjectSpec(
        "cabinet",
        "cabinet",
        "A low sideboard with one hinged door and an open shelf niche beside it.",
        "articulated_furniture",
        ["Openable"],
        (layout.x, 0.0, 0.0),
        (depth, width, height),
    )
    cab = object_root(stage, axes, cabinet_spec, rigid=False)
    UsdPhysics.ArticulationRootAPI.Apply(cab)
    carcass = UsdGeom.Xform.Define(stage, f"{cab.GetPath()}/Carcass").GetPrim()
    colour = (0.7, 0.6, 0.45)
    hinge_y = -width / 2 + door_width
    inner_depth, inner_width = depth - panel, width - 2 * panel
    boards = {
        "Bottom": ((0.0, 0.0, panel / 2), (depth, width, panel)),
        "Top": ((0.0, 0.0, height - panel / 2), (depth, width, panel)),
        "Left": ((0.0, -width / 2 + panel / 2, height / 2), (depth, panel, height)),
        "Right": ((0.0, width / 2 - panel / 2, height / 2), (depth, panel, height)),
        "Back": ((depth / 2 - panel / 2, 0.0, height / 2), (panel, width, height)),
        "Divider": ((-panel / 2, hinge_y - panel / 2, height / 2), (inner_depth, panel, height)),
        "Shelf": ((-panel / 2, 0.0, height / 2), (inner_depth, inner_width, panel)),
    }
    for name, (centre, dims) in boards.items():
        collider(box(stage, f"{carcass.GetPath()}/{name}", axes, centre, dims, colour), wood)

    # The door hangs on a vertical hinge at its +Y edge, in front of the divider, and opening
    # turns its free (-Y) edge out towards -X: a negative angle about +Z. Its handle is a
    # vertical bar at mid-height near the free edge, standing 2.5 cm off the panel on two posts
    # as a cabinet pull does, so fingers fit behind it.
    hinge = (-depth / 2 - panel / 2, hinge_y, height / 2)
    door = UsdGeom.Xform.Define(stage, f"{cab.GetPath()}/Door")
    door.AddTranslateOp().Set(axes.point(*hinge))
    door_prim = door.GetPrim()
    UsdPhysics.RigidBodyAPI.Apply(door_prim)
    UsdPhysics.MassAPI.Apply(door_prim).CreateMassAttr(1.5)
    collider(
        box(
            stage,
            f"{door.GetPath()}/Panel",
            axes,
            (0.0, -door_width / 2, 0.0),
            (panel, door_width, height - 2 * panel),
            (0.75, 0.65, 0.5),
        ),
        wood,
    )
    handle_y = -(door_width - 0.05)
    collider(
        box(
            stage,
            f"{door.GetPath()}/Handle",
            axes,
            (-panel / 2 - 0.035, handle_y, 0.0),
            (0.02, 0.02, 0.12),
            (0.3, 0.3, 0.3),
        ),
        metal,
    )
    for post, z in (("PostUpper", 0.05), ("PostLower", -0.05)):
        collider(
            box(
                stage,
                f"{door.GetPath()}/{post}",
                axes,
                (-panel / 2 - 0.0125, handle_y, z),
                (0.025, 0.012, 0.012),
                (0.3, 0.3, 0.3),
            ),
            metal,
        )

    joint = UsdPhysics.RevoluteJoint.Define(stage, f"{cab.GetPath()}/DoorHinge")
    joint.CreateBody0Rel().SetTargets([carcass.GetPath()])
    joint.CreateBody1Rel().SetTargets([door_prim.GetPath()])
    joint.CreateLocalPos0Attr(Gf.Vec3f(*hinge))
    joint.CreateLocalRot0Attr(Gf.Quatf(1.0))
    joint.CreateLocalPos1Attr(Gf.Vec3f(0.0))
    joint.CreateLocalRot1Attr(Gf.Quatf(1.0))
    joint.CreateAxisAttr(UsdPhysics.Tokens.z)
    joint.CreateLowerLimitAttr(-layout.door_open_deg)
    joint.CreateUpperLimitAttr(0.0)

    can_spec = ObjectSpec(
        "can",
        "can",
        "A soda can standing on top of the cabinet.",
        "manipulable_object",
        ["Graspable"],
        (*layout.can_xy, height),
        (0.066, 0.066, 0.12),
        mass=0.35,
    )
    can = object_root(stage, axes, can_spec, rigid=True)
    collider(
        cylinder(
            stage, f"{can.GetPath()}/Body", axes, (0.0, 0.0, 0.06), 0.033, 0.12, (0.8, 0.1, 0.1)
        ),
        metal,
    )

    camera_and_light(stage, axes, eye=(-0.6, -0.8, 1.4), target=(layout.x - 0.2, 0.0, 0.45))
    stage.GetRootLayer().Save()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=EXAMPLES,
        help="folder to write kitchen_table/ and cabinet/ into",
    )
    out = parser.parse_args(argv).out
    kitchen_table(out / "kitchen_table")
    cabinet(out / "cabinet")
    for scene in ("kitchen_table", "cabinet"):
        print(f"wrote {out / scene / 'scene.usda'}")


if __name__ == "__main__":
    main()
