"""The sample scenes under examples/: reproducible from their script, and read as intended."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest
from bp_export.assets.asset_index import build_asset_index, enforce_licence_policy
from bp_export.scene.graph import build_scene_graph
from bp_export.scene.reconciliation import reconcile_scene
from bp_export.usd.scene import load_scene
from bp_scene_contract import SceneGraph

EXAMPLES = Path(__file__).parents[2] / "examples"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_scenes", EXAMPLES / "make_scenes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_scenes"] = module
    spec.loader.exec_module(module)
    return module


def _graph(name: str) -> SceneGraph:
    path = EXAMPLES / name / "scene.usda"
    scene = load_scene(path, name, require_default_prim=True)
    reconciled = reconcile_scene(scene, path)
    enforce_licence_policy(build_asset_index(reconciled), block_noncommercial=True)
    return build_scene_graph(scene, reconciled)


def test_committed_scenes_are_what_the_script_writes(tmp_path: Path) -> None:
    _script().main(["--out", str(tmp_path)])
    for relative in (
        "kitchen_table/scene.usda",
        "kitchen_table/scene_manifest.json",
        "cabinet/scene.usda",
    ):
        assert (tmp_path / relative).read_text() == (EXAMPLES / relative).read_text(), relative


def test_kitchen_table_has_four_graspable_objects_on_the_table() -> None:
    graph = _graph("kitchen_table")
    graspable = {n.asset_id for n in graph.nodes if "Graspable" in n.affordances}
    assert graspable == {"mug", "cube", "bowl", "bottle"}
    assert graph.relations("on") == {(g, "table") for g in graspable}
    table = graph.node("table")
    assert table.bbox.max[2] == pytest.approx(0.75)
    for asset_id in graspable:
        node = graph.node(asset_id)
        assert min(node.size[:2]) <= 0.08, f"{asset_id} is too wide for a Panda's gripper"
        assert node.pose.orientation == pytest.approx((1.0, 0.0, 0.0, 0.0))
        assert node.properties.mass is not None and node.properties.friction is not None


def test_cabinet_door_and_the_can_on_its_top() -> None:
    graph = _graph("cabinet")
    cabinet = graph.node("cabinet")
    assert cabinet.sim_role == "articulated_furniture" and "Openable" in cabinet.affordances
    assert cabinet.bbox.max[2] == pytest.approx(0.75)
    assert cabinet.articulation is not None
    (door,) = cabinet.articulation.joints
    assert (door.type, door.lower, door.upper) == pytest.approx(("revolute", -math.pi / 2, 0.0))
    assert door.axis == pytest.approx((0.0, 0.0, 1.0))
    assert door.anchor == pytest.approx((0.59, 0.035, 0.375))
    part = door.moving_part_bbox
    assert part.max[1] - part.min[1] == pytest.approx(0.325)
    # The can stands on the cabinet's top, not shut inside it.
    assert graph.relations("on") == {("can", "cabinet"), ("cabinet", "floor")}
    assert graph.relations("in") == set()
    assert graph.node("can").bbox.min[2] == pytest.approx(cabinet.bbox.max[2])
    assert graph.node("floor").sim_role == "scene_shell"
