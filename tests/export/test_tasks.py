"""Task generation: which tasks a scene affords, their goals, predicates, words and ids."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import pytest
from bp_common.errors import InvalidInput
from bp_export.tasks.kinematics import joint_frames
from bp_export.tasks.layout import build_layout
from bp_export.tasks.planning import PlannedTask, generate_tasks, plan_tasks, select_robots
from bp_export.tasks.reach import BASE_CLEARANCE
from bp_export.tasks.robots import get_robot
from bp_scene_contract import (
    BodyState,
    Box,
    Observation,
    TaskSpec,
    judge,
    read_scene_graph,
    read_task_config,
)

from tests.export import task_scenes as scenes


@pytest.fixture(scope="module")
def kitchen() -> dict[str, Any]:
    return scenes.kitchen_table()


@pytest.fixture(scope="module")
def kitchen_config(kitchen: dict[str, Any]) -> dict[str, Any]:
    return generate_tasks(kitchen, ["franka_panda", "ur5e"])


@pytest.fixture(scope="module")
def cabinet_config() -> dict[str, Any]:
    return generate_tasks(scenes.cabinet_with_door(), ["franka_panda", "ur5e"])


def _nodes(scene: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["asset_id"]: n for n in scene["nodes"]}


def _box(raw: dict[str, Any]) -> Box:
    return Box.model_validate(raw)


def _standing_in(node: dict[str, Any], region: Box, speed: float = 0.0) -> BodyState:
    """The node's object standing in the middle of `region`, on its floor, moving at `speed`."""
    cx, cy, _ = region.centre
    half_height = node["size"][2] / 2
    return BodyState((cx, cy, region.min[2] + half_height), half_height, speed, 0.0)


def _where_it_is(node: dict[str, Any]) -> BodyState:
    return BodyState(_box(node["bbox"]).centre, node["size"][2] / 2, 0.0, 0.0)


def _holds(task: dict[str, Any], observation: Observation) -> bool:
    return judge(TaskSpec.model_validate(task).success, observation).success


def _tasks(config: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [t for t in config["tasks"] if t["kind"] == kind]


def test_output_has_the_documented_shape_and_is_json(kitchen_config: dict[str, Any]) -> None:
    read_task_config(kitchen_config)
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
        item = nodes[task["target"]]
        assert region.min[2] == pytest.approx(table.max[2], abs=0.011)
        # Wherever in the region the object's centre comes to rest, all of the object stands
        # on the table top and touches nothing else.
        half_x, half_y, _ = (v / 2 for v in item["size"])
        landed = Box(
            min=(region.min[0] - half_x, region.min[1] - half_y, table.max[2] + 0.001),
            max=(region.max[0] + half_x, region.max[1] + half_y, table.max[2] + item["size"][2]),
        )
        assert table.min[0] <= landed.min[0] and landed.max[0] <= table.max[0]
        assert table.min[1] <= landed.min[1] and landed.max[1] <= table.max[1]
        for other_id, other in nodes.items():
            if other_id in ("table_01", "floor", task["target"]):
                continue
            assert not landed.overlaps(_box(other["bbox"])), (task["target"], other_id)
        placed = Observation(bodies={task["target"]: _standing_in(item, region)})
        untouched = Observation(bodies={task["target"]: _where_it_is(item)})
        assert task["success"]["predicate"] == "object_in_region"
        assert _holds(task, placed)
        assert not _holds(task, untouched)


def test_a_moving_object_has_not_succeeded_yet(
    kitchen: dict[str, Any], kitchen_config: dict[str, Any]
) -> None:
    task = _tasks(kitchen_config, "pick_place")[0]
    item = _nodes(kitchen)[task["target"]]
    region = _box(task["goal_region"])
    sliding = _standing_in(item, region, speed=0.5)
    assert not _holds(task, Observation(bodies={task["target"]: sliding}))


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
    inside = _standing_in(nodes["apple_01"], bowl)
    observation = Observation(bodies={"apple_01": inside}, boxes={"bowl_01": bowl})
    assert _holds(task, observation)
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

    half_open = Observation(joints={("cabinet_01", "door_hinge"): 1.2})
    assert _holds(opening, half_open)
    assert not _holds(closing, half_open)
    assert not _holds(opening, Observation())


def test_a_robot_standing_clear_of_the_door_keeps_both_door_tasks(
    cabinet_config: dict[str, Any],
) -> None:
    ur5e = next(r for r in cabinet_config["robots"] if r["robot"] == "ur5e")
    assert sorted(ur5e["tasks"]) == sorted(t["task_id"] for t in cabinet_config["tasks"])
    assert ur5e["base_pose"] is not None


@pytest.mark.parametrize(
    "scene", [scenes.bare_table(), scenes.scene("empty_room", [scenes.floor()], [])]
)
def test_a_scene_with_nothing_to_do_has_zero_tasks(scene: dict[str, Any]) -> None:
    config = generate_tasks(scene)
    assert config["tasks"] == []
    assert config["dropped"] == []
    assert [r["robot"] for r in config["robots"]] == ["franka_panda", "ur5e", "ur10", "fetch"]
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


def test_robot_list_defaults_to_all_but_gr1_and_follows_the_scene_first() -> None:
    assert select_robots() == ["franka_panda", "ur5e", "ur10", "fetch"]
    assert select_robots(["gr1"]) == ["gr1"]
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


def _kept(config: dict[str, Any]) -> set[str]:
    return {task_id for robot in config["robots"] for task_id in robot["tasks"]}


def _reasons(config: dict[str, Any], task_id: str) -> dict[str, str]:
    return {d["robot"]: d["reason"] for d in config["dropped"] if d["task_id"] == task_id}


def _planned(scene: dict[str, Any]) -> list[PlannedTask]:
    return plan_tasks(build_layout(read_scene_graph(scene)))


def _find(planned: list[PlannedTask], kind: str, target: str, destination: str) -> PlannedTask:
    (match,) = [
        p
        for p in planned
        if (p.spec.kind, p.spec.target, p.spec.destination) == (kind, target, destination)
    ]
    return match


@pytest.fixture(scope="module")
def closed_cabinet_config() -> dict[str, Any]:
    return generate_tasks(scenes.cabinet_with_contents(), ["franka_panda", "ur5e"])


def test_an_object_behind_a_closed_door_is_dropped_for_every_robot(
    closed_cabinet_config: dict[str, Any],
) -> None:
    config = closed_cabinet_config
    can_moves = [t for t in config["tasks"] if t["target"] == "can_01"]
    assert "table_01" in {t["destination"] for t in can_moves}
    for task in can_moves:
        assert task["task_id"] not in _kept(config)
        reasons = _reasons(config, task["task_id"])
        assert set(reasons) == {"franka_panda", "ur5e"}
        assert all("enclosed behind a closed door" in r for r in reasons.values()), reasons


def test_nothing_is_put_into_a_container_behind_a_closed_door(
    closed_cabinet_config: dict[str, Any],
) -> None:
    config = closed_cabinet_config
    (into_bowl,) = [
        t
        for t in _tasks(config, "place_in")
        if (t["target"], t["destination"]) == ("mug_01", "bowl_01")
    ]
    assert into_bowl["task_id"] not in _kept(config)
    for reason in _reasons(config, into_bowl["task_id"]).values():
        assert "enclosed behind a closed door" in reason


def test_an_object_behind_an_open_door_is_not_enclosed() -> None:
    planned = _planned(scenes.cabinet_with_contents(door_open=True))
    can_move = _find(planned, "pick_place", "can_01", "table_01")
    assert can_move.infeasible is not None
    assert "enclosed" not in can_move.infeasible
    # The door is out of the way, but the cabinet's top still hangs over the can: a top-down
    # grasp, the only kind the tasks' gripper poses describe, cannot reach it.
    assert "no room above the soda can" in can_move.infeasible
    assert "cabinet_01" in can_move.infeasible


def _containers_scene() -> dict[str, Any]:
    top = scenes.TABLE_TOP
    items = [
        scenes.item_on("bottle_01", "bottle", (-0.4, 0.2), top, (0.06, 0.06, 0.28)),
        scenes.item_on("cube_01", "red_cube", (-0.2, 0.25), top, (0.05, 0.05, 0.05)),
        scenes.item_on("jar_01", "jar", (0.0, 0.25), top, (0.09, 0.09, 0.10)),
        scenes.item_on(
            "dish_01", "dish", (-0.3, -0.15), top, (0.20, 0.20, 0.045),
            affordances=("Graspable", "Containable"),
        ),
        scenes.item_on(
            "pot_01", "pot", (0.3, -0.15), top, (0.10, 0.10, 0.12),
            affordances=("Graspable", "Containable"),
        ),
    ]  # fmt: skip
    return scenes.scene(
        "containers",
        [scenes.floor(), scenes.table(), *items],
        [scenes.on(i["asset_id"], "table_01") for i in items],
    )


def test_a_tall_object_is_not_put_into_a_shallow_dish() -> None:
    planned = _planned(_containers_scene())
    bottle_in_dish = _find(planned, "place_in", "bottle_01", "dish_01")
    assert bottle_in_dish.infeasible is not None
    assert "topple" in bottle_in_dish.infeasible
    assert "footprint" not in bottle_in_dish.infeasible
    assert _find(planned, "place_in", "cube_01", "dish_01").infeasible is None


def test_an_object_wider_than_a_container_inside_is_not_put_into_it() -> None:
    planned = _planned(_containers_scene())
    jar_in_pot = _find(planned, "place_in", "jar_01", "pot_01")
    assert jar_in_pot.infeasible is not None
    assert "9.0 cm x 9.0 cm footprint does not fit the 8.0 cm x 8.0 cm inside" in (
        jar_in_pot.infeasible
    )
    assert "topple" not in jar_in_pot.infeasible
    assert _find(planned, "place_in", "cube_01", "pot_01").infeasible is None


def test_an_object_that_does_not_fit_is_listed_but_kept_by_no_robot() -> None:
    config = generate_tasks(_containers_scene(), ["ur5e"])
    (bottle_in_dish,) = [
        t
        for t in _tasks(config, "place_in")
        if (t["target"], t["destination"]) == ("bottle_01", "dish_01")
    ]
    assert bottle_in_dish["task_id"] not in _kept(config)
    assert "does not fit in the dish" in _reasons(config, bottle_in_dish["task_id"])["ur5e"]
    cube_in_dish = next(
        t
        for t in _tasks(config, "place_in")
        if (t["target"], t["destination"]) == ("cube_01", "dish_01")
    )
    assert cube_in_dish["task_id"] in _kept(config)


def test_a_goal_already_occupied_is_not_used() -> None:
    kitchen = scenes.kitchen_table()
    bowl = _box(_nodes(kitchen)["bowl_01"]["bbox"])
    inside = scenes.item_on(
        "plum_01", "plum", (bowl.centre[0], bowl.centre[1]), bowl.min[2] + 0.007,
        (0.05, 0.05, 0.05),
    )  # fmt: skip
    kitchen["nodes"].append(inside)
    kitchen["edges"].append({**scenes.on("plum_01", "bowl_01"), "relation": "in"})
    cube_in_bowl = _find(_planned(kitchen), "place_in", "cube_01", "bowl_01")
    assert cube_in_bowl.infeasible is not None
    assert "not free" in cube_in_bowl.infeasible and "plum_01" in cube_in_bowl.infeasible


def test_a_door_that_would_hit_a_chair_gets_no_open_or_close_task() -> None:
    chair = scenes.node(
        "chair_01", "chair", (0.55, -0.05, 0.0), (0.85, 0.25, 0.9),
        role="static", affordances=(), static=True,
    )  # fmt: skip
    scene = scenes.cabinet_with_door()
    scene["nodes"].append(chair)
    door_tasks = [p for p in _planned(scene) if p.spec.kind == "open_close"]
    assert {p.spec.action for p in door_tasks} == {"open", "close"}
    for task in door_tasks:
        assert task.infeasible is not None and "chair_01" in task.infeasible


def _door_swing_points(scene: dict[str, Any]) -> np.ndarray:
    """Points of the cabinet door (0.6 m wide, hinge at (0.99, -0.3)) over its whole swing."""
    joint = _nodes(scene)["cabinet_01"]["articulation"]["joints"][0]
    hinge = np.array(joint["anchor"][:2])
    angles = np.linspace(joint["lower"], joint["upper"], 91)
    along = np.linspace(0.0, 0.6, 61)
    return np.array(
        [hinge + r * np.array([-math.sin(a), math.cos(a)]) for a in angles for r in along]
    )


def _home_posture_world(name: str, pose: dict[str, Any]) -> np.ndarray:
    robot = get_robot(name)
    frames, tcp = joint_frames(robot.chain, robot.home)
    points = np.array([np.zeros(3), *(f[:3, 3] for f in frames), tcp[:3, 3]])
    dense = np.vstack([a + (b - a) * t for a, b in itertools.pairwise(points)
                       for t in np.linspace(0.0, 1.0, 20)])  # fmt: skip
    w, _, _, z = pose["orientation"]
    yaw = 2 * math.atan2(z, w) + robot.chain_yaw
    turn = np.array([[math.cos(yaw), -math.sin(yaw), 0], [math.sin(yaw), math.cos(yaw), 0],
                     [0, 0, 1]])  # fmt: skip
    return np.asarray(dense @ turn.T + np.array(pose["position"]))


def test_robots_stand_clear_of_the_cabinet_and_its_door_swing(
    cabinet_config: dict[str, Any],
) -> None:
    scene = scenes.cabinet_with_door()
    cabinet_box = _box(_nodes(scene)["cabinet_01"]["bbox"])
    swing = _door_swing_points(scene)
    placed = [r for r in cabinet_config["robots"] if r["base_pose"] is not None]
    assert placed
    for entry in placed:
        robot = get_robot(entry["robot"])
        x, y, _ = entry["base_pose"]["position"]
        keep_off = robot.footprint_radius + BASE_CLEARANCE
        assert cabinet_box.distance_xy_to_point(x, y) >= keep_off - 1e-6
        # The door is 2 cm thick and sampled every centimetre: allow for both.
        assert np.min(np.hypot(*(swing - [x, y]).T)) >= keep_off - 0.02
        arm = _home_posture_world(entry["robot"], entry["base_pose"])
        gaps = np.maximum(np.maximum(np.array(cabinet_box.min) - arm, arm - cabinet_box.max), 0)
        assert np.min(np.linalg.norm(gaps, axis=1)) >= robot.link_radius


def test_a_door_task_out_of_reach_from_clear_floor_is_dropped_with_where_and_why(
    cabinet_config: dict[str, Any],
) -> None:
    panda = next(r for r in cabinet_config["robots"] if r["robot"] == "franka_panda")
    (close,) = [t for t in _tasks(cabinet_config, "open_close") if t["action"] == "close"]
    assert close["task_id"] not in panda["tasks"]
    reason = _reasons(cabinet_config, close["task_id"])["franka_panda"]
    assert reason.startswith("franka_panda from base at (")
    assert "handle" in reason


def _grip_scene() -> dict[str, Any]:
    top = scenes.TABLE_TOP
    items = [
        scenes.item_on(
            "small_bowl", "small_bowl", (-0.3, 0.2), top, (0.08, 0.08, 0.045),
            affordances=("Graspable", "Containable"),
        ),
        scenes.item_on(
            "salad_bowl", "salad_bowl", (0.25, -0.15), top, (0.18, 0.18, 0.07),
            affordances=("Graspable", "Containable"),
        ),
        scenes.item_on("block_01", "wooden_block", (-0.1, -0.2), top, (0.071, 0.071, 0.05)),
    ]  # fmt: skip
    return scenes.scene(
        "grips", [scenes.floor(), scenes.table(), *items],
        [scenes.on(i["asset_id"], "table_01") for i in items],
    )  # fmt: skip


@pytest.fixture(scope="module")
def grip_config() -> dict[str, Any]:
    return generate_tasks(_grip_scene(), ["franka_panda", "ur5e", "fetch"])


def _grip_reason(config: dict[str, Any], target: str, robot: str) -> str | None:
    (move,) = [t for t in _tasks(config, "pick_place") if t["target"] == target]
    reason = _reasons(config, move["task_id"]).get(robot)
    return reason if reason is not None and "gripper opening" in reason else None


def test_an_object_as_wide_as_the_gripper_opening_is_not_grasped(
    grip_config: dict[str, Any],
) -> None:
    panda_bowl = _grip_reason(grip_config, "small_bowl", "franka_panda")
    assert panda_bowl is not None
    assert "8.0 cm across" in panda_bowl and "8.0 cm gripper opening less a 1 cm margin" in (
        panda_bowl
    )
    assert _grip_reason(grip_config, "small_bowl", "ur5e") is not None
    assert _grip_reason(grip_config, "small_bowl", "fetch") is None


def test_the_margin_decides_between_grippers_a_few_millimetres_apart(
    grip_config: dict[str, Any],
) -> None:
    assert _grip_reason(grip_config, "block_01", "franka_panda") is not None
    assert _grip_reason(grip_config, "block_01", "ur5e") is None


def test_a_wide_container_is_taken_by_its_wall(grip_config: dict[str, Any]) -> None:
    for robot in ("franka_panda", "ur5e", "fetch"):
        assert _grip_reason(grip_config, "salad_bowl", robot) is None
