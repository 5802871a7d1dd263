"""Scenes as users author them, exported by the export stage and collected by every robot.

- The kitchen sample: every robot the export places within reach of a pick-and-place completes
  one (each of its pick-and-places is tried once; success rates are measured by
  benchmarks/collect.py).
- The cabinet sample: its carcass, door and handle are simulated as authored, and the door
  opens by its authored handle.
- A mesh made by another tool (the public Newton fixture's convex-hull bottle, referenced into
  the kitchen in place of its own bottle and scaled to hand size, since the fixture's is 20 cm
  tall and falls from the air): exported from its authored points and taken by every robot the
  export keeps a task for, each grasping the mesh's own shape.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import mujoco
import numpy as np
import pytest
from bp_collector.mujoco.episode import simulate_episode
from bp_collector.mujoco.randomization import RandomizationRanges, draw_randomization
from bp_collector.mujoco.world import WorldOptions, build_world
from bp_export.export import export_scene
from bp_export.tasks.layout import closed_and_open, handle_closing, handle_pose
from bp_robot_models import ROBOT_IDS
from bp_scene_contract import (
    SceneGraph,
    TaskConfig,
    authored_handle,
    read_scene_graph,
    read_task_config,
)
from pxr import Gf, Usd, UsdGeom

REPO = Path(__file__).parents[2]
KITCHEN = REPO / "examples" / "kitchen_table" / "scene.usda"
CABINET = REPO / "examples" / "cabinet" / "scene.usda"
FIXTURE = (
    REPO.parent
    / "shared/fixtures/public-usd/newton_bottle_on_crate/newton/tests/assets/cube_cylinder.usda"
)
Exported = tuple[SceneGraph, TaskConfig]


def _export(scene: Path, scene_id: str) -> Exported:
    outputs = export_scene(
        scene, scene_id, environment="local", require_embeddings=False, robots=list(ROBOT_IDS)
    )
    return (
        read_scene_graph(outputs.files["scene_graph.json"]),
        read_task_config(outputs.files["task_config.json"]),
    )


@pytest.fixture(scope="module")
def kitchen() -> Exported:
    return _export(KITCHEN, "kitchen_table")


@pytest.fixture(scope="module")
def cabinet() -> Exported:
    return _export(CABINET, "cabinet")


@pytest.fixture(scope="module")
def fixture_bottle(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """The kitchen with its bottle made of the fixture's mesh (a scene composes only files in
    its own folder, so the fixture file is put beside it)."""
    folder = tmp_path_factory.mktemp("fixture-bottle")
    shutil.copy(KITCHEN, folder / "scene.usda")
    shutil.copy(FIXTURE, folder / "bottle.usda")
    stage = Usd.Stage.Open(str(folder / "scene.usda"))
    for part in ("Body", "Neck"):
        stage.GetPrimAtPath(f"/World/Objects/obj_bottle/{part}").SetActive(False)
    mesh = stage.DefinePrim("/World/Objects/obj_bottle/Mesh", "Xform")
    mesh.GetReferences().AddReference("./bottle.usda", "/World/Cylinder_dynamic/cylinder_reverse")
    placed = UsdGeom.Xformable(mesh)
    placed.ClearXformOpOrder()
    # The kitchen is Y up; the fixture's cylinder runs along its own y: upright, 4 x 8 cm.
    placed.AddTranslateOp(opSuffix="place").Set(Gf.Vec3d(0.0, 0.04, 0.0))
    placed.AddScaleOp(opSuffix="place").Set(Gf.Vec3f(0.4, 0.4, 0.4))
    stage.GetRootLayer().Save()
    return _export(folder / "scene.usda", "fixture-bottle")


def _pick_places(exported: Exported, robot: str, target: str | None = None) -> list[str]:
    _, config = exported
    assignment = config.assignment(robot)
    return [
        t
        for t in assignment.tasks
        if config.task(t).kind == "pick_place"
        and (target is None or config.task(t).target == target)
    ]


@pytest.mark.parametrize("robot", ROBOT_IDS)
def test_every_robot_placed_within_reach_picks_and_places_on_the_kitchen_sample(
    kitchen: Exported, robot: str, tmp_path: Path
) -> None:
    graph, config = kitchen
    tasks = _pick_places(kitchen, robot)
    assert tasks, f"the export placed {robot} within reach of no pick-and-place"
    outcomes = {}
    for task in tasks:
        result = simulate_episode(graph, config, robot, task, 1, tmp_path / task, render=False)
        outcomes[config.task(task).target] = (result.success, result.collision_count)
    # Each robot completes one cleanly; how often each task succeeds is benchmarks/collect.py's.
    assert (True, 0) in outcomes.values(), outcomes


def test_the_fixture_mesh_is_exported_as_its_authored_points(fixture_bottle: Exported) -> None:
    graph, _ = fixture_bottle
    (shape,) = graph.node("bottle").shapes
    assert shape.kind == "mesh" and shape.collision and shape.mesh is not None
    assert shape.usd_path == "/World/Objects/obj_bottle/Mesh/mesh_0"
    # The fixture's 10 x 20 cm cylinder at 0.4 scale, standing on the table top (0.75 m).
    box = graph.node("bottle").bbox
    assert box.size == pytest.approx((0.04, 0.04, 0.08), abs=2e-3)
    assert box.min[2] == pytest.approx(0.75, abs=1e-3)


@pytest.mark.parametrize("robot", ROBOT_IDS)
def test_every_robot_with_a_task_takes_the_fixture_mesh_by_its_shape(
    fixture_bottle: Exported, robot: str, tmp_path: Path
) -> None:
    graph, config = fixture_bottle
    tasks = _pick_places(fixture_bottle, robot, "bottle")
    if not tasks:
        reasons = [d.reason for d in config.dropped if d.robot == robot]
        pytest.skip(f"the export keeps no pick-and-place of the bottle for {robot}: {reasons}")
    result = simulate_episode(graph, config, robot, tasks[0], 1, tmp_path / "ep", render=False)
    assert result.success, result.reason
    assert result.collision_count == 0
    expert = json.loads((result.out_dir / "episode.json").read_text())["expert"]
    assert expert["grasp"] is not None, "sampled on the mesh's hulls, not the box rule"


def test_the_cabinet_is_simulated_as_authored_and_opens_by_its_handle(
    cabinet: Exported, tmp_path: Path
) -> None:
    graph, config = cabinet
    node = graph.node("cabinet")
    (hinge,) = node.articulation.joints if node.articulation else ()
    assert hinge.moving_part == "/World/Objects/obj_cabinet/Door"
    opening = next(
        t
        for t in config.assignment("franka_panda").tasks
        if config.task(t).kind == "open_close"
        and config.task(t).success.predicate == "joint_at_most"
    )
    rand = draw_randomization(0, [], [], [], RandomizationRanges.none())
    world = build_world(
        graph, config.assignment("franka_panda"), config.task(opening), WorldOptions(()), rand
    )
    model = world.model

    def colliding(body: str) -> list[int]:
        b = model.body(body).id
        return [
            g for g in range(model.ngeom) if model.geom_bodyid[g] == b and model.geom_contype[g]
        ]

    moved = [s for s in node.shapes if s.usd_path.startswith(hinge.moving_part + "/")]
    # Carcass boards on the shell (no invented walls or shelves), the door's panel and posts on
    # the door, the authored bar on the handle body the expert takes.
    assert len(colliding("node/cabinet")) == len(node.shapes) - len(moved) == 7
    assert len(colliding("node/cabinet/DoorHinge")) == 3
    (bar,) = colliding("node/cabinet/DoorHinge/handle")
    assert model.geom_type[bar] == mujoco.mjtGeom.mjGEOM_BOX
    np.testing.assert_allclose(sorted(model.geom_size[bar]), [0.01, 0.01, 0.06], atol=1e-6)
    part = world.parts[("cabinet", "DoorHinge")]
    assert part.handle_geom == model.geom(bar).name and part.handle_along_z

    result = simulate_episode(
        graph, config, "franka_panda", opening, 1, tmp_path / "ep", render=False
    )
    assert result.success, result.reason
    assert result.collision_count == 0


def test_a_part_without_an_authored_handle_is_built_as_authored_with_a_bar(
    cabinet: Exported,
) -> None:
    graph, config = cabinet
    node = graph.node("cabinet")
    renamed = tuple(
        s.model_copy(update={"usd_path": s.usd_path.replace("/Handle", "/Grip")})
        for s in node.shapes
    )
    plain = graph.model_copy(
        update={
            "nodes": tuple(
                n.model_copy(update={"shapes": renamed}) if n is node else n for n in graph.nodes
            )
        }
    )
    task = config.assignment("franka_panda").tasks[0]
    rand = draw_randomization(0, [], [], [], RandomizationRanges.none())
    world = build_world(
        plain, config.assignment("franka_panda"), config.task(task), WorldOptions(()), rand
    )
    model = world.model
    door = model.body("node/cabinet/DoorHinge").id
    names = [model.geom(g).name for g in range(model.ngeom) if model.geom_bodyid[g] == door]
    # Panel, two posts and the bar authored as "Grip" as they are, and the expert's own bar.
    assert sum(n.startswith("node/cabinet/DoorHinge/shape") for n in names) == 4
    assert world.parts[("cabinet", "DoorHinge")].handle_geom == "node/cabinet/DoorHinge/handle"


def test_export_plans_the_door_by_the_handle_the_collector_builds(cabinet: Exported) -> None:
    graph, _ = cabinet
    node = graph.node("cabinet")
    (hinge,) = node.articulation.joints if node.articulation else ()
    closed, _ = closed_and_open(hinge)
    position, approach = handle_pose(node, hinge, closed, closed)
    bar = authored_handle(node, hinge)
    assert bar is not None and bar.usd_path.endswith("/Door/Handle")
    np.testing.assert_allclose(position, bar.world_box()[0], atol=1e-9)
    # Level across the vertical bar, square to the way in.
    closing = np.asarray(handle_closing(node, hinge, approach))
    assert abs(closing[2]) < 1e-9 and abs(float(closing @ np.asarray(approach))) < 1e-9
