"""Task generation: which tasks a scene affords, their goals, predicates, words and ids."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bp_common.errors import InvalidInput
from bp_export.graph_model import Aabb
from bp_export.task_config import ObjectState, Observation, TaskConfig, predicate_holds
from bp_export.tasks import generate_tasks, select_robots

from tests.export import task_scenes as scenes


@pytest.fixture(scope="module")
def kitchen() -> dict[str, Any]:
    return scenes.kitchen_table()


@pytest.fixture(scope="module")
def kitchen_config(kitchen: dict[str, Any]) -> dict[str, Any]:
    return generate_tasks(kitchen, ["franka_panda", "ur5e"])


@pytest.fixture(scope="module")
def cabinet_config() -> dict[str, Any]:
    return generate_tasks(scenes.cabinet_with_door(), ["franka_panda"])


def _nodes(scene: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["asset_id"]: n for n in scene["nodes"]}


def _box(raw: dict[str, Any]) -> Aabb:
    return Aabb.model_validate(raw)


def _moved_to(node: dict[str, Any], region: Aabb) -> Aabb:
    """The node's box standing in the middle of `region`, resting on its floor."""
    sx, sy, sz = node["size"]
    cx, cy, _ = region.centre
    bottom = region.min[2] + 0.01
    return Aabb(min=(cx - sx / 2, cy - sy / 2, bottom), max=(cx + sx / 2, cy + sy / 2, bottom + sz))


def _tasks(config: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [t for t in config["tasks"] if t["kind"] == kind]


def test_output_has_the_documented_shape_and_is_json(kitchen_config: dict[str, Any]) -> None:
    TaskConfig.model_validate(kitchen_config)
    assert json.loads(json.dumps(kitchen_config)) == kitchen_config
    assert kitchen_config["schema_version"] == 1
    assert kitchen_config["scene_id"] == "kitchen_table"
    assert [r["robot"] for r in kitchen_config["robots"]] == ["franka_panda", "ur5e"]


def test_every_graspable_object_gets_a_pick_place_onto_the_table(
    kitchen_config: dict[str, Any],
) -> None:
    targets = {t["target"] for t in _tasks(kitchen_config, "pick_place")}
    assert targets == {"mug_01", "apple_01", "block_01", "cube_01", "bowl_01"}
    assert {t["destination"] for t in _tasks(kitchen_config, "pick_place")} == {"table_01"}


def test_pick_place_goal_is_free_table_top_that_the_predicate_accepts(
    kitchen: dict[str, Any], kitchen_config: dict[str, Any]
) -> None:
    nodes = _nodes(kitchen)
    table = _box(nodes["table_01"]["bbox"])
    for task in _tasks(kitchen_config, "pick_place"):
        region = _box(task["goal_region"])
        assert region.min[2] == pytest.approx(table.max[2], abs=0.011)
        assert table.min[0] <= region.min[0] and region.max[0] <= table.max[0]
        assert table.min[1] <= region.min[1] and region.max[1] <= table.max[1]
        for other_id, other in nodes.items():
            if other_id in ("table_01", "floor"):
                continue
            assert not region.overlaps(_box(other["bbox"])), (task["target"], other_id)
        item = nodes[task["target"]]
        placed = Observation(objects={task["target"]: ObjectState(bbox=_moved_to(item, region))})
        untouched = Observation(objects={task["target"]: ObjectState(bbox=_box(item["bbox"]))})
        assert task["success"]["predicate"] == "object_in_region"
        assert predicate_holds(task["success"], placed)
        assert not predicate_holds(task["success"], untouched)


def test_a_moving_object_has_not_succeeded_yet(
    kitchen: dict[str, Any], kitchen_config: dict[str, Any]
) -> None:
    task = _tasks(kitchen_config, "pick_place")[0]
    item = _nodes(kitchen)[task["target"]]
    region = _box(task["goal_region"])
    sliding = ObjectState(bbox=_moved_to(item, region), speed=0.5)
    assert not predicate_holds(task["success"], Observation(objects={task["target"]: sliding}))


def test_instructions_paraphrase_using_semantic_names(kitchen_config: dict[str, Any]) -> None:
    mug_task = next(t for t in _tasks(kitchen_config, "pick_place") if t["target"] == "mug_01")
    assert len(mug_task["instructions"]) >= 3
    assert len(set(mug_task["instructions"])) == len(mug_task["instructions"])
    assert all("coffee mug" in text and "dining table" in text for text in mug_task["instructions"])


def test_objects_that_fit_go_into_the_bowl(
    kitchen: dict[str, Any], kitchen_config: dict[str, Any]
) -> None:
    place_in = {t["target"]: t for t in _tasks(kitchen_config, "place_in")}
    assert set(place_in) == {"mug_01", "apple_01", "block_01", "cube_01"}
    task = place_in["apple_01"]
    assert task["destination"] == "bowl_01"
    assert task["success"] == {
        "predicate": "object_inside",
        "object": "apple_01",
        "container": "bowl_01",
        "tolerance": 0.02,
        "max_speed": 0.05,
    }
    nodes = _nodes(kitchen)
    bowl = _box(nodes["bowl_01"]["bbox"])
    inside = _moved_to(nodes["apple_01"], bowl)
    observation = Observation(
        objects={"apple_01": ObjectState(bbox=inside), "bowl_01": ObjectState(bbox=bowl)}
    )
    assert predicate_holds(task["success"], observation)
    assert any("bowl" in text for text in task["instructions"])


def test_the_small_block_stacks_on_the_larger_cube_only(kitchen_config: dict[str, Any]) -> None:
    stacks = [(t["target"], t["destination"]) for t in _tasks(kitchen_config, "stack")]
    assert stacks == [("block_01", "cube_01")]


def test_cabinet_door_gets_open_and_close_tasks(cabinet_config: dict[str, Any]) -> None:
    tasks = {t["action"]: t for t in _tasks(cabinet_config, "open_close")}
    assert set(tasks) == {"open", "close"}
    opening, closing = tasks["open"], tasks["close"]
    assert opening["target"] == "cabinet_01"
    assert opening["joint_goal"]["joint"] == "door_hinge"
    assert opening["joint_goal"]["initial_value"] == 0.0
    assert 0.5 < opening["joint_goal"]["value"] <= 1.57
    assert opening["success"] == {
        "predicate": "joint_at_least",
        "object": "cabinet_01",
        "joint": "door_hinge",
        "value": opening["joint_goal"]["value"],
    }
    assert closing["success"]["predicate"] == "joint_at_most"
    assert closing["joint_goal"]["initial_value"] > closing["joint_goal"]["value"]
    assert any("Open the door of the kitchen cabinet" in s for s in opening["instructions"])

    half_open = Observation(joints={"cabinet_01": {"door_hinge": 1.2}})
    assert predicate_holds(opening["success"], half_open)
    assert not predicate_holds(closing["success"], half_open)
    assert not predicate_holds(opening["success"], Observation())


def test_the_cabinet_robot_keeps_both_door_tasks(cabinet_config: dict[str, Any]) -> None:
    (panda,) = cabinet_config["robots"]
    assert sorted(panda["tasks"]) == sorted(t["task_id"] for t in cabinet_config["tasks"])
    assert panda["base_pose"] is not None


@pytest.mark.parametrize(
    "scene", [scenes.bare_table(), scenes.scene("empty_room", [scenes.floor()], [])]
)
def test_a_scene_with_nothing_to_do_has_zero_tasks(scene: dict[str, Any]) -> None:
    config = generate_tasks(scene)
    assert config["tasks"] == []
    assert config["dropped"] == []
    assert [r["robot"] for r in config["robots"]] == ["franka_panda", "ur5e", "fetch"]
    assert all(r["tasks"] == [] and r["base_pose"] is None for r in config["robots"])


def test_task_ids_are_deterministic_and_unique(kitchen: dict[str, Any]) -> None:
    first = generate_tasks(kitchen, ["ur5e"])
    second = generate_tasks(kitchen, ["ur5e"])
    assert first == second
    ids = [t["task_id"] for t in first["tasks"]]
    assert len(ids) == len(set(ids))
    renamed = dict(kitchen, scene_id="another_kitchen")
    assert {t["task_id"] for t in generate_tasks(renamed, ["ur5e"])["tasks"]}.isdisjoint(ids)


def test_difficulty_grows_with_clutter() -> None:
    crowded = [
        scenes.item_on("mug_01", "coffee_mug", (-0.3, 0.0), scenes.TABLE_TOP, (0.07, 0.07, 0.1)),
        *(
            scenes.item_on(f"can_{i}", "soda_can", (x, y), scenes.TABLE_TOP, (0.06, 0.06, 0.12))
            for i, (x, y) in enumerate([(-0.38, 0.0), (-0.22, 0.0), (-0.3, 0.08), (-0.3, -0.08)])
        ),
        scenes.item_on("pear_01", "pear", (0.35, 0.2), scenes.TABLE_TOP, (0.07, 0.07, 0.1)),
    ]
    scene = scenes.scene("crowded", [scenes.floor(), scenes.table(), *crowded], [])
    config = generate_tasks(scene, ["ur5e"])
    by_target = {t["target"]: t["difficulty"] for t in _tasks(config, "pick_place")}
    assert by_target["mug_01"]["clutter"] >= 4
    assert by_target["pear_01"]["clutter"] == 0
    assert by_target["mug_01"]["score"] > by_target["pear_01"]["score"]


def test_repeated_names_are_told_apart_in_instructions() -> None:
    items = [
        scenes.item_on("mug_a", "mug", (-0.3, 0.1), scenes.TABLE_TOP, (0.08, 0.08, 0.1)),
        scenes.item_on("mug_b", "mug", (0.3, -0.1), scenes.TABLE_TOP, (0.08, 0.08, 0.1)),
        scenes.item_on("plate_01", "plate", (0.45, -0.25), scenes.TABLE_TOP, (0.15, 0.15, 0.02)),
    ]
    config = generate_tasks(scenes.scene("two_mugs", [scenes.floor(), scenes.table(), *items], []))
    texts = {t["target"]: t["instructions"][0] for t in _tasks(config, "pick_place")}
    assert texts["mug_a"] != texts["mug_b"]
    assert "next to the plate" in texts["mug_b"]


def test_robot_list_defaults_to_all_three_and_follows_the_scene_first() -> None:
    assert select_robots() == ["franka_panda", "ur5e", "fetch"]
    assert select_robots(None, ["fetch", "ur5e", "fetch"]) == ["fetch", "ur5e"]
    assert select_robots(["ur5e"], ["fetch"]) == ["ur5e"]


def test_an_unknown_robot_is_invalid_input_naming_the_scene(kitchen: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput) as caught:
        generate_tasks(kitchen, ["franka_panda", "wall-e"])
    assert caught.value.context == {"scene_id": "kitchen_table", "robot": "wall-e"}


def test_a_malformed_scene_graph_names_the_field() -> None:
    scene = scenes.kitchen_table()
    scene["nodes"][2]["bbox"]["min"] = [0.0, "left", 0.0]
    with pytest.raises(InvalidInput) as caught:
        generate_tasks(scene)
    assert caught.value.context["scene_id"] == "kitchen_table"
    assert caught.value.context["field"].startswith("nodes.2.bbox.min")


def test_an_edge_to_a_missing_node_is_invalid_input() -> None:
    scene = scenes.kitchen_table()
    scene["edges"].append(scenes.on("mug_01", "ghost_table"))
    with pytest.raises(InvalidInput) as caught:
        generate_tasks(scene)
    assert caught.value.context["object"] == "ghost_table"
