"""The expert's grasps come from the object's shape as built: antipodal pinches that fit the
jaw, scored, checked for collision of the open hand before it commits to one. Shapes are the
kitchen sample's own (its cube, bottle, mug and bowl) and a plain cylinder."""

from __future__ import annotations

import json
from pathlib import Path

import mujoco
import numpy as np
import pytest
from bp_collector.mujoco.episode import simulate_episode
from bp_collector.mujoco.expert import ScriptedExpert, jaw
from bp_collector.mujoco.grasps import (
    Grasp,
    Hand,
    ObjectShape,
    object_shape,
    primitive_solid,
    sample_grasps,
)
from bp_collector.mujoco.randomization import RandomizationRanges, draw_randomization
from bp_collector.mujoco.world import World, WorldOptions, build_world
from bp_export.export import export_scene
from bp_scene_contract import SceneGraph, TaskConfig, read_scene_graph, read_task_config

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kitchen_table" / "scene.usda"
TABLE_TOP = 0.75


@pytest.fixture(scope="module")
def kitchen() -> tuple[SceneGraph, TaskConfig]:
    export = export_scene(SAMPLE, "kitchen_table", environment="local", require_embeddings=False)
    return (
        read_scene_graph(export.files["scene_graph.json"]),
        read_task_config(export.files["task_config.json"]),
    )


def _world(kitchen: tuple[SceneGraph, TaskConfig], robot: str) -> tuple[World, mujoco.MjData]:
    graph, config = kitchen
    assignment = config.assignment(robot)
    task = config.task(assignment.tasks[0])
    rand = draw_randomization(0, [], [], [], RandomizationRanges.none())
    world = build_world(graph, assignment, task, WorldOptions(cameras=()), rand)
    data = mujoco.MjData(world.model)
    mujoco.mj_resetDataKeyframe(world.model, data, 0)
    mujoco.mj_forward(world.model, data)
    return world, data


@pytest.fixture(scope="module")
def panda(kitchen: tuple[SceneGraph, TaskConfig]) -> tuple[World, mujoco.MjData]:
    return _world(kitchen, "franka_panda")


@pytest.fixture(scope="module")
def ur5e(kitchen: tuple[SceneGraph, TaskConfig]) -> tuple[World, mujoco.MjData]:
    return _world(kitchen, "ur5e")


def _shape(world: World, data: mujoco.MjData, asset: str) -> ObjectShape:
    obj = world.free_objects[asset]
    body = world.model.body(obj.body).id
    return object_shape(world.model, data, body, TABLE_TOP, obj.shape == "container")


def _grasps(world: World, data: mujoco.MjData, asset: str) -> list[Grasp]:
    base = data.xpos[world.model.body(world.robot.base_body).id]
    return sample_grasps(_shape(world, data, asset), jaw(world), base)


def test_a_cylinder_is_pinched_across_its_axis_with_both_normals_opposed() -> None:
    upright = np.eye(3)
    can = ObjectShape(
        (primitive_solid("cylinder", (0.03, 0.06, 0.0), np.array([0.5, 0.0, 0.06]), upright),),
        centre_of_mass=np.array([0.5, 0.0, 0.06]),
        support_z=0.0,
    )
    hand = Hand(opening_m=0.08, tip_depth_m=0.016, palm_m=0.05)
    grasps = sample_grasps(can, hand, np.array([0.0, 0.0, 0.0]))
    assert grasps
    best = grasps[0]
    assert best.kind == "top"
    assert best.width_m == pytest.approx(0.06, abs=0.001)
    assert best.point[:2] == pytest.approx([0.5, 0.0], abs=1e-3)
    # Low enough to hold it near its centre, high enough that the fingertips clear the table.
    assert 0.016 <= best.point[2] <= 0.11
    # Too wide for the jaw: nothing to grasp.
    fat = Hand(opening_m=0.06, tip_depth_m=0.016, palm_m=0.05)
    assert sample_grasps(can, fat, np.zeros(3)) == []


def test_the_cube_is_taken_from_above_across_two_opposite_faces(
    panda: tuple[World, mujoco.MjData],
) -> None:
    world, data = panda
    best = _grasps(world, data, "cube")[0]
    assert best.kind == "top"
    assert best.width_m == pytest.approx(0.05, abs=0.001)
    cube = data.xpos[world.model.body("node/cube").id]
    assert best.point[:2] == pytest.approx(cube[:2], abs=0.002)
    assert best.point[2] - world.robot.tip_depth > TABLE_TOP


def test_the_bottle_is_held_at_its_body_where_the_jaw_is_deep_enough(
    panda: tuple[World, mujoco.MjData], ur5e: tuple[World, mujoco.MjData]
) -> None:
    world, data = ur5e
    grasps = _grasps(world, data, "bottle")
    best = grasps[0]
    body_top = TABLE_TOP + 0.2
    assert best.point[2] < body_top and best.width_m == pytest.approx(0.06, abs=0.001)
    # From above only the neck fits between the fingers (the palm would meet its top), and
    # held by its neck it would hang and swing: no grasp from above is offered.
    assert [g for g in grasps if g.kind == "top"] == []
    # The Panda's jaw is too shallow to close level round the 6 cm body at its middle.
    world, data = panda
    level = [g for g in _grasps(world, data, "bottle") if g.kind == "side" and g.approach[2] == 0]
    assert all(g.point[2] > body_top for g in level)


def test_the_mug_and_the_bowl_are_taken_by_the_rim(panda: tuple[World, mujoco.MjData]) -> None:
    world, data = panda
    for asset, wall in (("mug", 0.0061), ("bowl", 0.02)):
        shape = _shape(world, data, asset)
        best = _grasps(world, data, asset)[0]
        assert best.kind == "rim", asset
        assert best.width_m <= wall, asset
        assert shape.top - 0.03 < best.point[2] < shape.top, asset
        # At the wall, away from the axis: one pad inside, one outside.
        assert np.linalg.norm((best.point - shape.centre_of_mass)[:2]) > 0.025, asset


def test_a_grasp_the_open_hand_would_collide_with_is_refused(
    kitchen: tuple[SceneGraph, TaskConfig], panda: tuple[World, mujoco.MjData]
) -> None:
    world, data = panda
    _, config = kitchen
    task = next(
        config.task(t)
        for t in config.assignment("franka_panda").tasks
        if config.task(t).target == "bottle"
    )
    expert = ScriptedExpert(world, task, data)
    bottle = data.xpos[world.model.body("node/bottle").id]
    down = np.array([0.0, 0.0, -1.0])
    across = np.array([1.0, 0.0, 0.0])
    # Down over the bottle to its middle: the palm would go through the neck.
    through_neck = Grasp("top", bottle.copy(), across, down, 0.06, 0.0)
    assert not expert.clear(through_neck)
    # Near the top of the neck the jaw closes around it and the palm stays clear.
    top = _shape(world, data, "bottle").top
    at_neck = Grasp("top", np.array([*bottle[:2], top - 0.02]), across, down, 0.026, 0.0)
    assert expert.clear(at_neck)


def test_the_episode_records_the_grasp_it_chose(
    kitchen: tuple[SceneGraph, TaskConfig], tmp_path: Path
) -> None:
    graph, config = kitchen
    task = next(t for t in config.assignment("ur5e").tasks if config.task(t).target == "mug")
    result = simulate_episode(graph, config, "ur5e", task, 1, tmp_path / "ep", render=False)
    manifest = json.loads((tmp_path / "ep" / "episode.json").read_text())
    grasp = manifest["expert"]["grasp"]
    assert grasp["kind"] == "rim"
    assert grasp["width_m"] <= 0.01
    assert len(grasp["point"]) == 3
    assert manifest["expert"]["grasp_candidates"] > 0
    assert result.success, result.reason
