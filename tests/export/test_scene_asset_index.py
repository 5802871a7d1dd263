"""asset_index.json: sources, licences, content hashes and provenance, and the licence policy."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from bp_export.assets.asset_index import (
    AssetIndex,
    block_noncommercial_for,
    build_asset_index,
    enforce_licence_policy,
    write_asset_index,
)
from bp_export.assets.licences import classify_licence
from bp_export.scene.reconciliation import reconcile_scene
from bp_export.scene_errors import LicenceRejected
from bp_export.usd.scene import load_scene
from pxr import Usd, UsdGeom

from .usd_scene_builder import single_object_plan


def _index(path: Path, scene_id: str = "unit") -> AssetIndex:
    return build_asset_index(reconcile_scene(load_scene(path, scene_id), path))


@pytest.mark.parametrize(
    ("licence", "allowed"),
    [
        ("CC0-1.0", True),
        ("CC0 1.0 Universal", True),
        ("CC-BY-4.0", True),
        ("Creative Commons Attribution 4.0 International", True),
        ("CC-BY-SA-3.0", True),
        ("MIT", True),
        ("Apache-2.0", True),
        ("Apache License, Version 2.0", True),
        ("BSD-3-Clause", True),
        ("MIT OR CC-BY-NC-4.0", True),
        ("CC-BY-NC-4.0", False),
        ("CC BY-NC-SA 4.0", False),
        ("non-commercial use", False),
        ("academic use only", False),
        ("research-only", False),
        ("unknown", False),
        ("proprietary", False),
        ("GPL-3.0", False),
        ("MIT AND CC-BY-NC-4.0", False),
        ("", False),
        (None, False),
    ],
)
def test_commercial_licence_policy(licence: str | None, allowed: bool) -> None:
    assert classify_licence(licence).commercial_use is allowed


def test_missing_licence_is_not_a_yes() -> None:
    verdict = classify_licence(None)
    assert (verdict.commercial_use, verdict.reason) == (False, "missing licence")


def test_inline_objects_hash_their_prim_description(tmp_path: Path) -> None:
    first = single_object_plan().write(tmp_path / "a.usda")
    second = single_object_plan().write(tmp_path / "b.usda")
    moved = single_object_plan(position=(0.1, 0.25, 0.75)).write(tmp_path / "c.usda")
    a, b, c = (_index(p).assets[1] for p in (first, second, moved))
    assert (a.asset_id, a.hash_of, a.files) == ("mug", "prim", [])
    assert a.content_hash.startswith("sha256:") and len(a.content_hash) == 71
    assert a.content_hash == b.content_hash
    assert a.content_hash != c.content_hash


def test_referenced_assets_hash_their_file(tmp_path: Path) -> None:
    (tmp_path / "props").mkdir()
    prop = Usd.Stage.CreateNew(str(tmp_path / "props/vase.usda"))
    root = UsdGeom.Xform.Define(prop, "/Vase")
    prop.SetDefaultPrim(root.GetPrim())
    UsdGeom.Cylinder.Define(prop, "/Vase/Body").CreateHeightAttr(0.3)
    root.GetPrim().SetCustomDataByKey("license", "CC-BY-4.0")
    root.GetPrim().SetCustomDataByKey("source", "props library")
    prop.GetRootLayer().Save()
    path = single_object_plan().write(tmp_path / "scene.usda")
    stage = Usd.Stage.Open(str(path))
    stage.DefinePrim("/World/Objects/obj_vase").GetReferences().AddReference("./props/vase.usda")
    stage.GetRootLayer().Save()

    index = _index(path)
    vase = next(a for a in index.assets if a.asset_id == "vase")
    expected = hashlib.sha256((tmp_path / "props/vase.usda").read_bytes()).hexdigest()
    assert (vase.hash_of, vase.content_hash) == ("file", f"sha256:{expected}")
    assert [f.path for f in vase.files] == ["props/vase.usda"]
    assert (vase.licence, vase.licence_status, vase.source) == (
        "CC-BY-4.0",
        "allowed",
        "props library",
    )
    assert vase.licence_obligations == ["attribution"]
    assert vase.provenance.defined_in == "scene.usda"
    assert vase.provenance.manifest_derived is True
    assert index.scene_file.path == "scene.usda"
    assert [layer.path for layer in index.layers] == ["scene.usda", "props/vase.usda"]


def test_index_file_leaks_no_machine_paths(tmp_path: Path) -> None:
    path = single_object_plan().write(tmp_path / "scene.usda")
    out = tmp_path / "out"
    out.mkdir()
    text = write_asset_index(_index(path), out).read_text()
    assert str(tmp_path) not in text
    assert AssetIndex.model_validate(json.loads(text)).scene_id == "unit"


def test_policy_blocks_only_where_asked(tmp_path: Path) -> None:
    path = single_object_plan(licence="CC-BY-NC-4.0").write(tmp_path / "scene.usda")
    index = _index(path)
    report = enforce_licence_policy(index, block_noncommercial=False)
    assert report.rejected == {"mug": "non-commercial licence ('CC-BY-NC-4.0')"}
    assert report.allowed == ("table",)
    with pytest.raises(LicenceRejected) as caught:
        enforce_licence_policy(index, block_noncommercial=True)
    assert caught.value.offending == ["mug"]
    assert "non-commercial" in str(caught.value)


def test_production_blocks_non_commercial_licences() -> None:
    assert block_noncommercial_for("production") is True
    assert block_noncommercial_for("dev") is False
