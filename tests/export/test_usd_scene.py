"""Reading a USD scene into the pipeline frame: objects, geometry, semantics, physics, joints,
cameras, lights, references and payloads."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from bp_export.scene.model import SceneModel
from bp_export.usd.scene import load_scene
from bp_export.usd.world_frame import StageFrame, object_orientation, rotation_of, transform_point
from pxr import Gf, Sdf, Usd, UsdGeom, UsdLux, UsdPhysics, UsdSemantics

from .usd_scene_builder import single_object_plan


def _stage(path: Path, up: str = "Z", mpu: float = 1.0, default_prim: bool = True) -> Usd.Stage:
    stage = Usd.Stage.CreateNew(str(path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.y if up == "Y" else UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, mpu)
    world = UsdGeom.Xform.Define(stage, "/World")
    if default_prim:
        stage.SetDefaultPrim(world.GetPrim())
    return stage


def _cube(stage: Usd.Stage, path: str, size: float, at: tuple[float, float, float]) -> Usd.Prim:
    cube = UsdGeom.Cube.Define(stage, path)
    cube.CreateSizeAttr(size)
    cube.AddTranslateOp().Set(Gf.Vec3d(*at))
    return cube.GetPrim()


def _save_and_load(stage: Usd.Stage, *, include_points: bool = False) -> SceneModel:
    stage.GetRootLayer().Save()
    return load_scene(stage.GetRootLayer().realPath, "unit", include_points=include_points)


def test_y_up_point_maps_to_z_up_and_units_to_metres() -> None:
    frame = StageFrame("Y", 0.01)
    assert transform_point(frame.to_pipeline, (100.0, 200.0, 300.0)) == pytest.approx(
        (1.0, -3.0, 2.0)
    )
    assert transform_point(StageFrame("Z", 0.01).to_pipeline, (100.0, 0.0, 5.0)) == (
        pytest.approx((1.0, 0.0, 0.05))
    )


def test_upright_object_has_identity_orientation_in_either_up_axis() -> None:
    assert object_orientation(Gf.Matrix4d(1.0), StageFrame("Y", 1.0)) == pytest.approx(
        (1.0, 0.0, 0.0, 0.0)
    )
    turned = Gf.Matrix4d().SetRotate(Gf.Rotation(Gf.Vec3d(0, 1, 0), 90.0))
    # 90 degrees about Y-up's vertical is 90 degrees about Z in the pipeline frame.
    expected = (math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4))
    assert object_orientation(turned, StageFrame("Y", 1.0)) == pytest.approx(expected)


def test_mirrored_matrix_gives_a_proper_rotation() -> None:
    mirrored = Gf.Matrix4d().SetScale(Gf.Vec3d(-2.0, 1.0, 3.0))
    assert rotation_of(mirrored) == pytest.approx((1.0, 0.0, 0.0, 0.0))


def test_object_pose_box_mass_friction_and_labels(tmp_path: Path) -> None:
    scene = load_scene(single_object_plan().write(tmp_path / "scene.usda"), "unit")
    mug = scene.object("mug")
    assert mug.usd_path == "/World/Objects/obj_mug"
    assert mug.pose.position == pytest.approx((-0.35, 0.25, 0.75))
    assert mug.bbox.min == pytest.approx((-0.385, 0.215, 0.75))
    assert mug.bbox.max == pytest.approx((-0.315, 0.285, 0.84))
    assert mug.physics.mass_kg == pytest.approx(0.3)
    assert mug.physics.friction == pytest.approx(0.6)
    assert mug.semantics.primary_class == "mug"
    assert mug.semantics.sources == ("UsdSemantics",)
    assert mug.custom_data == {"license": "CC0-1.0"}
    assert mug.motion == "free"
    assert scene.object("table").motion == "static"
    assert [p.usd_path.rsplit("/", 1)[-1] for p in scene.object("table").parts] == [
        "Top",
        "Leg0",
        "Leg1",
        "Leg2",
        "Leg3",
    ]


def test_isaac_semantics_with_random_instance_names(tmp_path: Path) -> None:
    stage = _stage(tmp_path / "scene.usda")
    prim = _cube(stage, "/World/Thing", 0.1, (0, 0, 0.05))
    for instance, kind, data in (
        ("Semantics_Ab3x", "class", "prop_general"),
        ("QWQL", "class", "sponge"),
        ("Semantics_zz", "hierarchy", "cleaning/sponge"),
    ):
        prim.CreateAttribute(
            f"semantic:{instance}:params:semanticType", Sdf.ValueTypeNames.String
        ).Set(kind)
        prim.CreateAttribute(
            f"semantic:{instance}:params:semanticData", Sdf.ValueTypeNames.String
        ).Set(data)
    semantics = _save_and_load(stage).object("Thing").semantics
    assert semantics.primary_class == "sponge"
    assert set(semantics.labels["class"]) == {"prop_general", "sponge"}
    assert semantics.sources == ("IsaacSemantics",)


def test_custom_data_semantics_and_nearest_labelled_descendant(tmp_path: Path) -> None:
    stage = _stage(tmp_path / "scene.usda")
    jar = _cube(stage, "/World/Jar", 0.1, (0, 0, 0.05))
    jar.SetCustomDataByKey("class", "jar")
    UsdGeom.Xform.Define(stage, "/World/Lamp")
    shade = _cube(stage, "/World/Lamp/Shade", 0.2, (1, 0, 0.1))
    UsdSemantics.LabelsAPI.Apply(shade, "class").CreateLabelsAttr(["lamp"])
    scene = _save_and_load(stage)
    assert scene.object("Jar").semantics.primary_class == "jar"
    assert scene.object("Jar").semantics.sources == ("customData",)
    # A plain Xform holding one labelled shape is one object named after the Xform.
    assert scene.object("Lamp").semantics.primary_class == "lamp"


def test_mass_in_grams_and_density(tmp_path: Path) -> None:
    stage = _stage(tmp_path / "scene.usda", mpu=0.01)
    UsdPhysics.SetStageKilogramsPerUnit(stage, 0.001)
    block = _cube(stage, "/World/Block", 5.0, (0, 0, 2.5))
    UsdPhysics.RigidBodyAPI.Apply(block)
    mass = UsdPhysics.MassAPI.Apply(block)
    mass.CreateMassAttr(250.0)
    mass.CreateDensityAttr(0.8)
    physics = _save_and_load(stage).object("Block").physics
    assert physics.mass_kg == pytest.approx(0.25)
    assert physics.density_kg_m3 == pytest.approx(800.0)


def test_revolute_joint_in_a_y_up_centimetre_stage(tmp_path: Path) -> None:
    stage = _stage(tmp_path / "scene.usda", up="Y", mpu=0.01)
    UsdGeom.Xform.Define(stage, "/World/Box")
    _cube(stage, "/World/Box/Body", 40.0, (0, 20, 0))
    lid = UsdGeom.Xform.Define(stage, "/World/Box/Lid")
    lid.AddTranslateOp().Set(Gf.Vec3d(0, 41, -20))
    lid_panel = _cube(stage, "/World/Box/Lid/Panel", 2.0, (0, 0, 20))
    UsdGeom.Xformable(lid_panel).AddScaleOp().Set(Gf.Vec3f(20, 1, 20))
    UsdPhysics.RigidBodyAPI.Apply(lid.GetPrim())
    joint = UsdPhysics.RevoluteJoint.Define(stage, "/World/Box/LidHinge")
    joint.CreateBody0Rel().SetTargets([Sdf.Path("/World/Box/Body")])
    joint.CreateBody1Rel().SetTargets([Sdf.Path("/World/Box/Lid")])
    joint.CreateLocalPos0Attr(Gf.Vec3f(0, 21, -20))
    joint.CreateAxisAttr("X")
    joint.CreateLowerLimitAttr(0.0)
    joint.CreateUpperLimitAttr(120.0)
    scene = _save_and_load(stage)
    assert [o.asset_id for o in scene.objects] == ["Box"]
    (hinge,) = scene.joints_of("Box")
    assert hinge.type == "revolute"
    assert hinge.axis == pytest.approx((1.0, 0.0, 0.0))
    # Stage (0, 41, -20) cm in Y-up is (0, 0.2, 0.41) m in the pipeline frame.
    assert hinge.anchor == pytest.approx((0.0, 0.2, 0.41))
    assert (hinge.lower, hinge.upper) == pytest.approx((0.0, math.radians(120.0)))
    assert hinge.moving_part_bbox is not None
    assert hinge.moving_part_bbox.min[2] == pytest.approx(0.40)
    assert scene.object("Box").motion == "static"


def test_cameras_and_lights(tmp_path: Path) -> None:
    stage = _stage(tmp_path / "scene.usda", up="Y", mpu=0.01)
    _cube(stage, "/World/Crate", 30.0, (0, 15, 0))
    camera = UsdGeom.Camera.Define(stage, "/World/Cam")
    camera.AddTranslateOp().Set(Gf.Vec3d(0, 150, 200))
    camera.CreateClippingRangeAttr(Gf.Vec2f(1, 1000))
    camera.CreateFocalLengthAttr(24.0)
    UsdLux.SphereLight.Define(stage, "/World/Bulb").CreateIntensityAttr(500.0)
    scene = _save_and_load(stage)
    (cam,) = scene.cameras
    assert cam.pose.position == pytest.approx((0.0, -2.0, 1.5))
    assert cam.clipping_range_m == pytest.approx((0.01, 10.0))
    assert cam.focal_length_mm == pytest.approx(24.0)
    assert [(light.usd_path, light.type_name, light.intensity) for light in scene.lights] == [
        ("/World/Bulb", "SphereLight", 500.0)
    ]
    assert [o.asset_id for o in scene.objects] == ["Crate"]


def test_no_default_prim_nested_bodies_and_groups(tmp_path: Path) -> None:
    stage = _stage(tmp_path / "scene.usda", default_prim=False)
    UsdGeom.Xform.Define(stage, "/Props")
    cart = UsdGeom.Xform.Define(stage, "/Props/Cart").GetPrim()
    UsdPhysics.RigidBodyAPI.Apply(cart)
    _cube(stage, "/Props/Cart/Frame", 0.5, (0, 0, 0.25))
    wheel = _cube(stage, "/Props/Cart/Wheel", 0.1, (0.2, 0.2, 0.05))
    UsdPhysics.RigidBodyAPI.Apply(wheel)
    _cube(stage, "/Props/Crate", 0.3, (2, 0, 0.15))
    UsdGeom.Xform.Define(stage, "/Floor")
    _cube(stage, "/Floor/Slab", 1.0, (0, 0, -0.5))
    UsdPhysics.CollisionAPI.Apply(_cube(stage, "/Floor/Guide", 1.0, (0, 0, -0.5)))
    anchor = UsdGeom.Xform.Define(stage, "/Anchor").GetPrim()
    UsdPhysics.RigidBodyAPI.Apply(anchor)
    scene = _save_and_load(stage)
    assert scene.default_prim is None
    # /Props has a rigid body among several children: split. /Floor has no independent part:
    # one object. /Anchor is a body with no geometry: not an object, reported.
    assert sorted(o.asset_id for o in scene.objects) == ["Cart", "Crate", "Floor"]
    assert scene.object("Cart").physics.rigid_bodies == ("/Props/Cart", "/Props/Cart/Wheel")
    assert any("/Anchor has no geometry" in w for w in scene.warnings)


def test_references_and_payloads_resolve_relative_to_their_layer(tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    assets.mkdir()
    mug = _stage(assets / "mug.usda")
    _cube(mug, "/World/Shape", 0.08, (0, 0, 0.04))
    mug.GetPrimAtPath("/World").SetCustomDataByKey("license", "MIT")
    mug.GetRootLayer().Save()
    shelf = Usd.Stage.CreateNew(str(assets / "shelf.usda"))
    shelf_root = UsdGeom.Xform.Define(shelf, "/Shelf")
    shelf.SetDefaultPrim(shelf_root.GetPrim())
    # Relative to shelf.usda, not to the scene: the resolver must use the referencing layer.
    shelf.DefinePrim("/Shelf/Mug").GetReferences().AddReference("./mug.usda")
    _cube(shelf, "/Shelf/Board", 1.0, (0, 0, -0.5))
    shelf.GetRootLayer().Save()
    stage = _stage(tmp_path / "scene.usda")
    stage.DefinePrim("/World/Shelf").GetPayloads().AddPayload("./assets/shelf.usda")
    scene = _save_and_load(stage)
    (shelf_object,) = scene.objects
    assert shelf_object.asset_id == "Shelf"
    assert sorted(Path(f).name for f in shelf_object.asset_files) == ["mug.usda", "shelf.usda"]
    assert shelf_object.bbox.max[2] == pytest.approx(0.08)


def test_meshes_report_counts_and_points_on_request(tmp_path: Path) -> None:
    stage = _stage(tmp_path / "scene.usda", up="Y")
    mesh = UsdGeom.Mesh.Define(stage, "/World/Ramp")
    mesh.CreatePointsAttr([(0, 0, 0), (1, 0, 0), (1, 0.5, 0), (0, 0, -1)])
    mesh.CreateFaceVertexCountsAttr([3, 3])
    mesh.CreateFaceVertexIndicesAttr([0, 1, 2, 0, 2, 3])
    scene = _save_and_load(stage, include_points=True)
    (info,) = scene.object("Ramp").meshes
    assert (info.vertex_count, info.face_count) == (4, 2)
    assert info.points is not None
    assert info.points[2] == pytest.approx((1.0, 0.0, 0.5))
    assert info.points[3] == pytest.approx((0.0, 1.0, 0.0))


def test_a_rewritten_file_is_read_afresh(tmp_path: Path) -> None:
    path = single_object_plan().write(tmp_path / "scene.usda")
    held = Usd.Stage.Open(str(path))
    assert load_scene(path, "unit").object("mug").pose.position[0] == pytest.approx(-0.35)
    replaced = single_object_plan(position=(0.2, 0.25, 0.75))
    replaced.write(tmp_path / "elsewhere.usda")
    path.write_text((tmp_path / "elsewhere.usda").read_text())
    assert load_scene(path, "unit").object("mug").pose.position[0] == pytest.approx(0.2)
    assert held.GetRootLayer().realPath == str(path)


def test_tilted_sphere_box_is_tight(tmp_path: Path) -> None:
    stage = _stage(tmp_path / "scene.usda")
    ball = UsdGeom.Sphere.Define(stage, "/World/Ball")
    ball.CreateRadiusAttr(0.05)
    ball.AddTranslateOp().Set(Gf.Vec3d(0, 0, 0.05))
    ball.AddRotateXYZOp().Set(Gf.Vec3f(35, 20, 10))
    box = _save_and_load(stage).object("Ball").bbox
    assert box.min == pytest.approx((-0.05, -0.05, 0.0))
    assert box.max == pytest.approx((0.05, 0.05, 0.1))


def test_a_scope_groups_its_prims_and_is_never_one_object(tmp_path: Path) -> None:
    # Two pallets filed under one Scope, no bodies or labels anywhere: without the Scope rule
    # they would merge into one box spanning both.
    stage = _stage(tmp_path / "scene.usda")
    UsdGeom.Scope.Define(stage, "/World/Pallets")
    for name, x in (("PalletA", 0.0), ("PalletB", 2.5)):
        UsdGeom.Xform.Define(stage, f"/World/Pallets/{name}")
        UsdPhysics.CollisionAPI.Apply(_cube(stage, f"/World/Pallets/{name}/Deck", 1.0, (x, 0, 0.1)))
    scene = _save_and_load(stage)
    assert sorted(o.asset_id for o in scene.objects) == ["PalletA", "PalletB"]
    assert all(o.bbox.size[0] == pytest.approx(1.0) for o in scene.objects)
