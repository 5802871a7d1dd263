"""Malformed scenes, manifests and licences: each gives its own permanent, typed error that names
the scene, and where there is one, the object and the field at fault."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
from bp_common.errors import InvalidName, PermanentError
from bp_export.assets.asset_index import build_asset_index, enforce_licence_policy
from bp_export.scene.manifest import load_manifest
from bp_export.scene.reconciliation import reconcile_scene
from bp_export.scene_errors import (
    CompositionFailed,
    EmptyScene,
    InvalidJoint,
    InvalidPhysics,
    InvalidStageMetadata,
    LicenceRejected,
    ManifestInvalid,
    ManifestMismatch,
    MissingDefaultPrim,
    NonFiniteValue,
    SceneTooLarge,
    SceneUnparsable,
    UnresolvedAsset,
    UnsupportedSceneFormat,
    ZeroSizeObject,
)
from bp_export.usd.scene import load_scene
from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade

from .usd_scene_builder import single_object_plan

SCENE_ID = "bad_scene"


def _mug_scene(tmp_path: Path, **overrides: object) -> Path:
    return single_object_plan(**overrides).write(tmp_path / "scene.usda")


def _edit(path: Path, change: Callable[[Usd.Stage], object]) -> Path:
    stage = Usd.Stage.Open(str(path))
    change(stage)
    stage.GetRootLayer().Save()
    return path


def _manifest(tmp_path: Path, **object_fields: object) -> dict[str, object]:
    mug: dict[str, object] = {"id": "mug", "name": "mug", "semantics": {"class": "mug"}}
    mug.update(object_fields)
    return {
        "version": "1.0",
        "scene_id": SCENE_ID,
        "scene": {"coordinate_frame": "z_up", "meters_per_unit": 1.0},
        "objects": [{"id": "table"}, mug],
    }


def _write_manifest(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "scene_manifest.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def _load_with_manifest(tmp_path: Path, manifest: object) -> None:
    scene_path = _mug_scene(tmp_path)
    _write_manifest(tmp_path, manifest)
    scene = load_scene(scene_path, SCENE_ID)
    reconcile_scene(scene, scene_path)


def test_unparsable_text_is_scene_unparsable(tmp_path: Path) -> None:
    path = tmp_path / "scene.usda"
    path.write_text('#usda 1.0\ndef Xform "World" {\n    def Cube "c" { double size = 1 }\n')
    with pytest.raises(SceneUnparsable) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.context["scene_id"] == SCENE_ID
    assert caught.value.context["field"] == "scene.usda"


def test_binary_garbage_usdc_is_scene_unparsable(tmp_path: Path) -> None:
    path = tmp_path / "scene.usdc"
    path.write_bytes(b"PXR-USDC" + bytes(range(256)) * 4)
    with pytest.raises(SceneUnparsable):
        load_scene(path, SCENE_ID)


def test_empty_file_is_scene_unparsable(tmp_path: Path) -> None:
    path = tmp_path / "scene.usd"
    path.write_bytes(b"")
    with pytest.raises(SceneUnparsable, match="empty"):
        load_scene(path, SCENE_ID)


def test_other_extension_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "scene.obj"
    path.write_text("v 0 0 0\n")
    with pytest.raises(UnsupportedSceneFormat):
        load_scene(path, SCENE_ID)


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = _mug_scene(tmp_path)
    size = path.stat().st_size
    with pytest.raises(SceneTooLarge) as caught:
        load_scene(path, SCENE_ID, max_bytes=size - 1)
    assert caught.value.context["max_bytes"] == size - 1
    load_scene(path, SCENE_ID, max_bytes=size)


def test_default_prim_naming_a_missing_prim(tmp_path: Path) -> None:
    path = _edit(
        _mug_scene(tmp_path), lambda s: setattr(s.GetRootLayer(), "defaultPrim", "Nowhere")
    )
    with pytest.raises(MissingDefaultPrim) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.context["field"] == "defaultPrim"


def test_missing_default_prim_where_required(tmp_path: Path) -> None:
    path = _edit(_mug_scene(tmp_path), lambda s: s.GetRootLayer().ClearDefaultPrim())
    load_scene(path, SCENE_ID)
    with pytest.raises(MissingDefaultPrim):
        load_scene(path, SCENE_ID, require_default_prim=True)


def test_nan_translate_names_object_and_op(tmp_path: Path) -> None:
    def poison(stage: Usd.Stage) -> None:
        mug = UsdGeom.Xformable(stage.GetPrimAtPath("/World/Objects/obj_mug"))
        op = mug.GetOrderedXformOps()[0]
        op.Set(Gf.Vec3d(math.nan, 0.0, 0.0))

    path = _edit(_mug_scene(tmp_path), poison)
    with pytest.raises(NonFiniteValue) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.context["object"] == "/World/Objects/obj_mug"
    assert caught.value.context["field"] == "/World/Objects/obj_mug.xformOp:translate"


def test_infinite_scale_on_a_part_names_the_part(tmp_path: Path) -> None:
    def poison(stage: Usd.Stage) -> None:
        body = UsdGeom.Xformable(stage.GetPrimAtPath("/World/Objects/obj_table/Leg2"))
        body.GetOrderedXformOps()[1].Set(Gf.Vec3f(1.0, math.inf, 1.0))

    path = _edit(_mug_scene(tmp_path), poison)
    with pytest.raises(NonFiniteValue) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.context["field"] == "/World/Objects/obj_table/Leg2.xformOp:scale"


def test_zero_size_object(tmp_path: Path) -> None:
    def flatten(stage: Usd.Stage) -> None:
        UsdGeom.Cylinder(stage.GetPrimAtPath("/World/Objects/obj_mug/Body")).GetRadiusAttr().Set(
            0.0
        )

    path = _edit(_mug_scene(tmp_path), flatten)
    with pytest.raises(ZeroSizeObject) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.context["object"] == "/World/Objects/obj_mug"
    assert caught.value.context["field"] == "extent"


def test_declared_object_without_geometry(tmp_path: Path) -> None:
    path = _edit(
        _mug_scene(tmp_path), lambda s: UsdGeom.Xform.Define(s, "/World/Objects/obj_ghost")
    )
    with pytest.raises(ZeroSizeObject, match="no geometry") as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.context["object"] == "/World/Objects/obj_ghost"


def test_wrong_up_axis_token(tmp_path: Path) -> None:
    path = _edit(_mug_scene(tmp_path), lambda s: s.SetMetadata("upAxis", "X"))
    with pytest.raises(InvalidStageMetadata) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.context["field"] == "upAxis"


@pytest.mark.parametrize("meters_per_unit", [0.0, -0.01])
def test_non_positive_meters_per_unit(tmp_path: Path, meters_per_unit: float) -> None:
    path = _edit(_mug_scene(tmp_path), lambda s: s.SetMetadata("metersPerUnit", meters_per_unit))
    with pytest.raises(InvalidStageMetadata) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.context["field"] == "metersPerUnit"


def test_negative_mass(tmp_path: Path) -> None:
    path = _mug_scene(tmp_path, mass=-0.3)
    with pytest.raises(InvalidPhysics) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.context["object"] == "/World/Objects/obj_mug"
    assert caught.value.context["field"] == "/World/Objects/obj_mug.physics:mass"


def test_negative_friction(tmp_path: Path) -> None:
    path = _mug_scene(tmp_path, friction=-0.2)
    with pytest.raises(InvalidPhysics) as caught:
        load_scene(path, SCENE_ID)
    field = "/World/Objects/obj_mug/PhysicsMaterial.physics:staticFriction"
    assert caught.value.context["field"] == field


def test_joint_with_lower_above_upper(tmp_path: Path) -> None:
    def hinge(stage: Usd.Stage) -> None:
        joint = UsdPhysics.RevoluteJoint.Define(stage, "/World/Objects/obj_table/Hinge")
        joint.CreateBody1Rel().SetTargets([Sdf.Path("/World/Objects/obj_table/Leg0")])
        joint.CreateLowerLimitAttr(90.0)
        joint.CreateUpperLimitAttr(10.0)

    path = _edit(_mug_scene(tmp_path), hinge)
    with pytest.raises(InvalidJoint) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.context["object"] == "/World/Objects/obj_table/Hinge"
    assert caught.value.context["field"] == "physics:lowerLimit"


def test_joint_body_that_does_not_exist(tmp_path: Path) -> None:
    def hinge(stage: Usd.Stage) -> None:
        joint = UsdPhysics.RevoluteJoint.Define(stage, "/World/Objects/obj_table/Hinge")
        joint.CreateBody1Rel().SetTargets([Sdf.Path("/World/Objects/obj_table/Door")])

    path = _edit(_mug_scene(tmp_path), hinge)
    with pytest.raises(InvalidJoint) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.context["field"] == "physics:body1"


def test_object_name_with_odd_characters(tmp_path: Path) -> None:
    def rename(stage: Usd.Stage) -> None:
        UsdGeom.Cube.Define(stage, "/World/Objects/obj_t\u00e4sse").CreateSizeAttr(0.05)

    path = _edit(_mug_scene(tmp_path), rename)
    with pytest.raises(InvalidName) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.context["object"] == "/World/Objects/obj_t\u00e4sse"
    assert caught.value.context["field"] == "name"


@pytest.mark.parametrize("scene_id", ["../etc", "kitchen/../../x", "Kitchen Table!", "", "a" * 64])
def test_unsafe_scene_id(tmp_path: Path, scene_id: str) -> None:
    path = _mug_scene(tmp_path)
    with pytest.raises(InvalidName):
        load_scene(path, scene_id)


def _texture_package(tmp_path: Path, with_texture: bool) -> Path:
    layer_path = tmp_path / "inner.usda"
    stage = Usd.Stage.CreateNew(str(layer_path))
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    stage.SetDefaultPrim(UsdGeom.Xform.Define(stage, "/World").GetPrim())
    UsdGeom.Cube.Define(stage, "/World/crate").CreateSizeAttr(0.3)
    shader = UsdShade.Shader.Define(stage, "/World/Looks/Crate/Texture")
    shader.CreateIdAttr("UsdUVTexture")
    shader.CreateInput("file", Sdf.ValueTypeNames.Asset).Set("textures/crate.png")
    stage.GetRootLayer().Save()
    package = tmp_path / "scene.usdz"
    writer = Sdf.ZipFileWriter.CreateNew(str(package))
    writer.AddFile(str(layer_path), "inner.usda")
    if with_texture:
        texture = tmp_path / "crate.png"
        texture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
        writer.AddFile(str(texture), "textures/crate.png")
    writer.Save()
    return package


def test_usdz_with_missing_texture(tmp_path: Path) -> None:
    with pytest.raises(UnresolvedAsset) as caught:
        load_scene(_texture_package(tmp_path, with_texture=False), SCENE_ID)
    assert caught.value.assets == ["textures/crate.png"]
    assert "textures/crate.png" in str(caught.value)


def test_usdz_with_its_texture_loads(tmp_path: Path) -> None:
    scene = load_scene(_texture_package(tmp_path, with_texture=True), SCENE_ID)
    assert [o.asset_id for o in scene.objects] == ["crate"]


def test_missing_sublayer(tmp_path: Path) -> None:
    path = _edit(
        _mug_scene(tmp_path), lambda s: s.GetRootLayer().subLayerPaths.append("./lighting.usda")
    )
    with pytest.raises(UnresolvedAsset) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.assets == ["./lighting.usda"]


def test_reference_to_an_absolute_path_elsewhere(tmp_path: Path) -> None:
    elsewhere = "/home/someone/assets/chair.usd"
    path = _edit(
        _mug_scene(tmp_path),
        lambda s: s.DefinePrim("/World/Objects/obj_chair").GetReferences().AddReference(elsewhere),
    )
    with pytest.raises(UnresolvedAsset) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.context["asset"] == elsewhere


def test_remote_payload(tmp_path: Path) -> None:
    remote = "https://assets.example.com/props/chair.usd"
    path = _edit(
        _mug_scene(tmp_path),
        lambda s: s.DefinePrim("/World/Objects/obj_chair").GetPayloads().AddPayload(remote),
    )
    with pytest.raises(UnresolvedAsset) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.context["asset"] == remote


def test_reference_to_an_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "broken.usda").write_text("#usda 1.0\ndef {{\n")
    path = _edit(
        _mug_scene(tmp_path),
        lambda s: (
            s.DefinePrim("/World/Objects/obj_chair").GetReferences().AddReference("./broken.usda")
        ),
    )
    with pytest.raises(CompositionFailed):
        load_scene(path, SCENE_ID)


def test_scene_without_any_physical_object(tmp_path: Path) -> None:
    stage = Usd.Stage.CreateNew(str(tmp_path / "scene.usda"))
    stage.SetDefaultPrim(UsdGeom.Xform.Define(stage, "/World").GetPrim())
    UsdShade.Material.Define(stage, "/World/Looks/Paint")
    stage.GetRootLayer().Save()
    with pytest.raises(EmptyScene):
        load_scene(tmp_path / "scene.usda", SCENE_ID)


def test_manifest_that_is_not_json(tmp_path: Path) -> None:
    with pytest.raises(ManifestInvalid) as caught:
        _load_with_manifest(tmp_path, '{"version": "1.0", "objects": [')
    assert caught.value.context["field"] == "scene_manifest.json"


def test_manifest_with_negative_mass_names_object_and_field(tmp_path: Path) -> None:
    with pytest.raises(ManifestInvalid) as caught:
        _load_with_manifest(tmp_path, _manifest(tmp_path, physics={"mass": -1}))
    assert caught.value.context["object"] == "mug"
    assert caught.value.context["field"] == "objects[1].physics.mass"


def test_manifest_with_two_rotations(tmp_path: Path) -> None:
    transform = {
        "position": [0, 0, 0],
        "rotation_quaternion": [1, 0, 0, 0],
        "rotation_euler": [0, 0, 90],
    }
    with pytest.raises(ManifestInvalid) as caught:
        _load_with_manifest(tmp_path, _manifest(tmp_path, transform=transform))
    assert caught.value.context["field"] == "objects[1].transform"


def test_manifest_object_id_with_path_traversal(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    manifest["objects"] = [{"id": "table"}, {"id": "../../mug"}]
    with pytest.raises(InvalidName) as caught:
        _load_with_manifest(tmp_path, manifest)
    assert caught.value.context["field"] == "objects[1].id"


def test_manifest_asset_path_traversal(tmp_path: Path) -> None:
    with pytest.raises(InvalidName) as caught:
        _load_with_manifest(tmp_path, _manifest(tmp_path, asset={"path": "../../secrets.usd"}))
    assert caught.value.context["object"] == "mug"
    assert caught.value.context["field"] == "objects[1].asset.path"


def test_manifest_for_another_scene(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    manifest["scene_id"] = "other_scene"
    with pytest.raises(ManifestMismatch) as caught:
        _load_with_manifest(tmp_path, manifest)
    assert caught.value.context["field"] == "scene_id"


def test_manifest_and_usd_objects_missing_on_both_sides(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    manifest["objects"] = [{"id": "table"}, {"id": "teapot"}]
    with pytest.raises(ManifestMismatch) as caught:
        _load_with_manifest(tmp_path, manifest)
    assert caught.value.missing_in_usd == ["teapot"]
    assert caught.value.missing_in_manifest == ["mug"]


def test_manifest_with_the_wrong_up_axis(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    manifest["scene"] = {"coordinate_frame": "y_up", "meters_per_unit": 1.0}
    with pytest.raises(ManifestMismatch) as caught:
        _load_with_manifest(tmp_path, manifest)
    assert caught.value.context["field"] == "scene.coordinate_frame"


def test_manifest_mass_that_contradicts_the_usd(tmp_path: Path) -> None:
    with pytest.raises(ManifestMismatch) as caught:
        _load_with_manifest(tmp_path, _manifest(tmp_path, physics={"mass": 3.0}))
    assert caught.value.context["field"] == "objects[mug].physics.mass"


@pytest.mark.parametrize("licence", ["unknown", "CC-BY-NC-4.0", "research only", None])
def test_unusable_licence_blocks_export_in_production(tmp_path: Path, licence: str | None) -> None:
    path = _mug_scene(tmp_path, licence=licence)
    reconciled = reconcile_scene(load_scene(path, SCENE_ID), path)
    index = build_asset_index(reconciled)
    with pytest.raises(LicenceRejected) as caught:
        enforce_licence_policy(index, block_noncommercial=True)
    assert caught.value.offending == ["mug"]
    assert caught.value.context["scene_id"] == SCENE_ID


def test_every_scene_error_is_permanent(tmp_path: Path) -> None:
    path = tmp_path / "scene.usda"
    path.write_text("not usd at all")
    with pytest.raises(PermanentError) as caught:
        load_scene(path, SCENE_ID)
    assert caught.value.permanent
    assert caught.value.to_record()["type"] == "SceneUnparsable"


def test_manifest_loader_reports_the_file(tmp_path: Path) -> None:
    path = _write_manifest(tmp_path, "[1, 2")
    with pytest.raises(ManifestInvalid):
        load_manifest(path, SCENE_ID)
