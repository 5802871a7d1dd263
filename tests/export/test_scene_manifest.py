"""scene_manifest.json: the typed schema, reconciliation with the USD, and derivation without
one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bp_export.scene.graph import build_scene_graph
from bp_export.scene.manifest import SceneManifest, parse_manifest
from bp_export.scene.reconciliation import derive_manifest, reconcile_scene
from bp_export.usd.scene import load_scene

from .usd_scene_builder import single_object_plan, tabletop_plan


def _scene(tmp_path: Path, up: str = "Z", mpu: float = 1.0) -> Path:
    return single_object_plan().write(tmp_path / "scene.usda", up, mpu)


def test_vectors_as_lists_or_objects_and_either_licence_spelling() -> None:
    manifest = parse_manifest(
        {
            "version": 2,
            "scene_id": "kitchen",
            "scene": {"coordinate_frame": "y_up", "meters_per_unit": 1, "room": {"bounds": [4, 3]}},
            "objects": [
                {
                    "id": "mug",
                    "transform": {
                        "position": [0.1, 0.8, -0.2],
                        "rotation_quaternion": [1, 0, 0, 0],
                        "scale": 1.0,
                    },
                    "asset": {
                        "path": "assets/mug.usd",
                        "licence": "CC-BY-4.0",
                        "author": "someone",
                    },
                    "semantics": {"class": "mug", "affordances": ["Graspable", "Pourable"]},
                },
                {
                    "id": "plate",
                    "transform": {
                        "position": {"x": 0, "y": 0.8, "z": 0},
                        "rotation_euler": {"x": 0, "y": 90, "z": 0},
                    },
                },
            ],
        },
        "kitchen",
    )
    mug, plate = manifest.objects
    assert manifest.version == "2"
    assert mug.transform is not None and mug.transform.scale == (1.0, 1.0, 1.0)
    assert mug.asset is not None and mug.asset.license == "CC-BY-4.0"
    assert mug.asset.model_extra == {"author": "someone", "licence": "CC-BY-4.0"}
    assert plate.transform is not None and plate.transform.rotation_euler == (0.0, 90.0, 0.0)


def test_unknown_sim_role_is_rejected() -> None:
    from bp_export.scene_errors import ManifestInvalid

    with pytest.raises(ManifestInvalid) as caught:
        parse_manifest(
            {"version": "1", "scene_id": "k", "objects": [{"id": "mug", "sim_role": "robot"}]}, "k"
        )
    assert caught.value.context["field"] == "objects[0].sim_role"
    assert caught.value.context["object"] == "mug"


def test_manifest_beside_the_scene_wins_over_inference(tmp_path: Path) -> None:
    path = _scene(tmp_path)
    (tmp_path / "scene_manifest.json").write_text(
        json.dumps(
            {
                "version": "1.0",
                "scene_id": "unit",
                "scene": {"coordinate_frame": "z_up", "meters_per_unit": 1.0},
                "objects": [
                    {"id": "table", "sim_role": "static"},
                    {
                        "id": "obj_mug",
                        "description": "A mug for tea.",
                        "sim_role": "clutter",
                        "semantics": {"class": "teacup", "affordances": ["Graspable", "Pourable"]},
                        "asset": {"license": "MIT", "source": "catalogue"},
                    },
                ],
            }
        )
    )
    scene = load_scene(path, "unit")
    reconciled = reconcile_scene(scene, path)
    assert not reconciled.manifest_derived
    mug = reconciled.objects["mug"]
    assert (mug.manifest_id, mug.semantic, mug.sim_role) == ("obj_mug", "teacup", "clutter")
    assert mug.affordances == ("Graspable", "Pourable")
    assert (mug.licence, mug.source) == ("MIT", "catalogue")
    node = build_scene_graph(scene, reconciled).node("mug")
    assert (node.semantic, node.sim_role) == ("teacup", "clutter")


def test_manifest_positions_far_from_the_usd_are_reported(tmp_path: Path) -> None:
    path = _scene(tmp_path, up="Y", mpu=0.01)
    (tmp_path / "scene_manifest.json").write_text(
        json.dumps(
            {
                "version": "1.0",
                "scene_id": "unit",
                "scene": {"coordinate_frame": "y_up", "meters_per_unit": 0.01},
                # In y_up centimetres: (-35, 75, -25) is the mug's (-0.35, 0.25, 0.75) m, Z up.
                "objects": [
                    {"id": "table", "transform": {"position": [0, 0, 0]}},
                    {"id": "mug", "transform": {"position": [-35, 75, -25]}},
                ],
            }
        )
    )
    reconciled = reconcile_scene(load_scene(path, "unit"), path)
    assert reconciled.warnings == ()
    data = json.loads((tmp_path / "scene_manifest.json").read_text())
    data["objects"][1]["transform"]["position"] = [-35, 95, -25]
    (tmp_path / "scene_manifest.json").write_text(json.dumps(data))
    reconciled = reconcile_scene(load_scene(path, "unit"), path)
    assert reconciled.warnings == ("mug: manifest position is 0.200 m from the USD position",)


def test_derived_manifest_describes_the_usd_in_its_own_frame(tmp_path: Path) -> None:
    path = tabletop_plan().write(tmp_path / "scene.usda", "Y", 0.01)
    scene = load_scene(path, "unit")
    reconciled = reconcile_scene(scene, path)
    assert reconciled.manifest_derived
    manifest = reconciled.manifest
    assert (manifest.scene.coordinate_frame, manifest.scene.meters_per_unit) == ("y_up", 0.01)
    by_id = {o.id: o for o in manifest.objects}
    mug = by_id["mug"]
    assert mug.transform is not None
    assert mug.transform.position == pytest.approx((-35.0, 75.0, -25.0))
    assert mug.sim_role == "manipulable_object"
    assert mug.semantics is not None and mug.semantics.affordances == ["Graspable", "Containable"]
    assert mug.physics is not None and mug.physics.mass == pytest.approx(0.3)
    assert mug.asset is not None and mug.asset.license == "CC0-1.0"
    assert by_id["cabinet"].sim_role == "articulated_furniture"
    assert by_id["table"].sim_role == "static"
    # A derived manifest written out and read back reconciles with the USD it came from.
    again = parse_manifest(json.loads(json.dumps(derive_manifest(scene).to_json())), "unit")
    assert reconcile_scene(scene, manifest=again).objects.keys() == reconciled.objects.keys()


def test_example_manifest_validates_and_matches(tmp_path: Path) -> None:
    examples = Path(__file__).parents[2] / "examples/kitchen_table"
    scene = load_scene(examples / "scene.usda", "kitchen_table")
    reconciled = reconcile_scene(scene, examples / "scene.usda")
    assert not reconciled.manifest_derived
    assert isinstance(reconciled.manifest, SceneManifest)
    assert sorted(reconciled.objects) == ["bottle", "bowl", "cube", "mug", "table"]
    assert reconciled.warnings == ()
