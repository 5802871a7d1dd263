"""scene_graph.json: nodes, geometric relations, and the same graph whatever the stage's up axis
and unit."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from bp_export.scene.graph import build_scene_graph, scene_graph_json, write_scene_graph
from bp_export.usd.scene import load_scene
from bp_scene_contract import SceneGraph, read_scene_graph

from .usd_scene_builder import PlannedObject, ScenePlan, Shape, single_object_plan, tabletop_plan


def _graph(tmp_path: Path, plan: ScenePlan, up: str = "Z", mpu: float = 1.0) -> SceneGraph:
    path = plan.write(tmp_path / f"scene_{up}_{mpu}.usda", up, mpu)
    return build_scene_graph(load_scene(path, "tabletop"))


@pytest.fixture(scope="module")
def tabletop(tmp_path_factory: pytest.TempPathFactory) -> SceneGraph:
    return _graph(tmp_path_factory.mktemp("tabletop"), tabletop_plan())


def test_support_relations(tabletop: SceneGraph) -> None:
    on_table = {"mug", "block", "bin", "can0", "can1", "can2"}
    assert tabletop.relations("on") == {(o, "table") for o in on_table} | {("ball", "bin")}


def test_a_free_body_on_a_free_body_is_stacked(tabletop: SceneGraph) -> None:
    assert tabletop.relations("stacked") == {("topper", "block")}


def test_containment(tabletop: SceneGraph) -> None:
    assert tabletop.relations("in") == {("ball", "bin")}


def test_neighbours_and_rows(tabletop: SceneGraph) -> None:
    assert tabletop.relations("adjacent") == {("can0", "can1"), ("can1", "can2")}
    assert tabletop.relations("aligned") == {("can0", "can1"), ("can1", "can2")}


def test_nodes_carry_size_pose_physics_and_roles(tabletop: SceneGraph) -> None:
    mug = tabletop.node("mug")
    assert mug.semantic == "mug"
    assert mug.size == pytest.approx((0.07, 0.07, 0.09))
    assert mug.pose.position == pytest.approx((-0.35, 0.25, 0.75))
    assert mug.bbox.min == pytest.approx((-0.385, 0.215, 0.75))
    assert (mug.properties.mass, mug.properties.friction) == (0.3, 0.6)
    assert (mug.sim_role, mug.affordances, mug.is_static) == (
        "manipulable_object",
        ("Graspable", "Containable"),
        False,
    )
    assert mug.usd_path == "/World/Objects/obj_mug"
    block = tabletop.node("block")
    half_yaw = math.radians(30) / 2
    assert block.pose.orientation == pytest.approx((math.cos(half_yaw), 0, 0, math.sin(half_yaw)))
    # A 6 cm block turned 30 degrees fills a wider world box.
    assert block.size[0] == pytest.approx(0.06 * (math.cos(math.radians(30)) + 0.5), abs=1e-6)
    table = tabletop.node("table")
    assert (table.sim_role, table.is_static, table.articulation) == ("static", True, None)


def test_prismatic_drawer(tabletop: SceneGraph) -> None:
    cabinet = tabletop.node("cabinet")
    assert (cabinet.sim_role, cabinet.affordances) == ("articulated_furniture", ("Openable",))
    assert cabinet.articulation is not None
    (drawer,) = cabinet.articulation.joints
    assert (drawer.name, drawer.type) == ("DrawerSlide", "prismatic")
    assert drawer.axis == pytest.approx((1.0, 0.0, 0.0))
    assert drawer.anchor == pytest.approx((0.95, 0.0, 0.6))
    assert (drawer.lower, drawer.upper) == pytest.approx((-0.3, 0.0))
    assert drawer.moving_part_bbox.min == pytest.approx((0.9, -0.2, 0.525))


def _close(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in _close(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _close(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, float) and isinstance(b, float):
        return [] if math.isclose(a, b, abs_tol=2e-6) else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


@pytest.mark.parametrize(("up", "mpu"), [("Y", 1.0), ("Z", 0.01), ("Y", 0.01)])
def test_same_graph_whatever_the_up_axis_and_unit(
    tmp_path: Path, tabletop: SceneGraph, up: str, mpu: float
) -> None:
    variant = _graph(tmp_path, tabletop_plan(), up, mpu)
    reference = tabletop.model_dump(mode="json")
    assert _close(reference, variant.model_dump(mode="json")) == []


def test_file_has_exactly_the_contract_shape(tmp_path: Path, tabletop: SceneGraph) -> None:
    path = write_scene_graph(tabletop, tmp_path)
    data = json.loads(path.read_text())
    top = {"schema_version", "scene_id", "frame", "nodes", "edges", "lights", "cameras"}
    assert set(data) == top
    assert data["schema_version"] == 1
    assert data["frame"] == {"up_axis": "z", "units": "m", "handedness": "right"}
    node_keys = {
        "asset_id",
        "semantic",
        "size",
        "pose",
        "bbox",
        "sim_role",
        "affordances",
        "properties",
        "is_static",
        "usd_path",
        "articulation",
        "shapes",
    }
    assert all(set(node) == node_keys for node in data["nodes"])
    assert all(set(node["pose"]) == {"position", "orientation"} for node in data["nodes"])
    assert all(set(node["properties"]) == {"mass", "friction"} for node in data["nodes"])
    joint = next(n for n in data["nodes"] if n["articulation"])["articulation"]["joints"][0]
    assert set(joint) == {
        "name", "type", "axis", "anchor", "lower", "upper", "moving_part_bbox", "moving_part"
    }  # fmt: skip
    assert all(
        set(edge) == {"source", "target", "relation", "confidence"} for edge in data["edges"]
    )
    assert all(0.0 <= edge["confidence"] <= 1.0 for edge in data["edges"])
    assert SceneGraph.model_validate_json(path.read_text()) == tabletop


def test_what_export_writes_reads_back_through_the_scene_contract(tabletop: SceneGraph) -> None:
    assert read_scene_graph(scene_graph_json(tabletop)) == tabletop


def test_free_body_in_the_air_lands_on_what_is_below(tmp_path: Path) -> None:
    plan = single_object_plan(position=(0.0, 0.0, 1.2))
    graph = _graph(tmp_path, plan)
    (edge,) = graph.edges
    assert (edge.source, edge.target, edge.relation) == ("mug", "table", "on")
    assert edge.confidence < 0.6


def test_a_static_object_in_the_air_rests_on_nothing(tmp_path: Path) -> None:
    plan = single_object_plan(position=(0.0, 0.0, 1.2), rigid=False)
    assert _graph(tmp_path, plan).edges == ()


def test_object_beside_the_table_is_not_on_it(tmp_path: Path) -> None:
    plan = single_object_plan(position=(0.8, 0.0, 0.0))
    graph = _graph(tmp_path, plan)
    assert graph.relations("on") == set()
    assert graph.relations("adjacent") == {("mug", "table")}


def test_object_on_a_shelf_inside_a_cabinet(tmp_path: Path) -> None:
    shelf_unit = PlannedObject(
        "obj_shelf",
        (0.0, 0.0, 0.0),
        [
            Shape("Bottom", "box", (0.0, 0.0, 0.01), (0.4, 0.6, 0.02)),
            Shape("Board", "box", (0.0, 0.0, 0.45), (0.4, 0.6, 0.02)),
            Shape("Top", "box", (0.0, 0.0, 0.89), (0.4, 0.6, 0.02)),
            Shape("Left", "box", (0.0, -0.29, 0.45), (0.4, 0.02, 0.9)),
            Shape("Right", "box", (0.0, 0.29, 0.45), (0.4, 0.02, 0.9)),
        ],
        label="shelf",
    )
    can = PlannedObject(
        "obj_can",
        (0.0, 0.1, 0.46),
        [Shape("Body", "cylinder", (0.0, 0.0, 0.06), (0.066, 0.066, 0.12))],
        rigid=True,
        mass=0.35,
        label="can",
    )
    graph = _graph(tmp_path, ScenePlan(objects=[shelf_unit, can]))
    assert graph.relations("on") == {("can", "shelf")}
    assert graph.relations("in") == {("can", "shelf")}
