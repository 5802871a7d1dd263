"""Export plans a `place_in` only for what fits the container as authored: a bowl authored as a
collision mesh is measured on its shell, not its box, and a task ruled out says why."""

from __future__ import annotations

from pathlib import Path

import pytest
from bp_export.scene.graph import build_scene_graph
from bp_export.scene.reconciliation import reconcile_scene
from bp_export.tasks.opening import authored_fit
from bp_export.tasks.planning import FIT_MARGIN, build_task_config
from bp_export.usd.scene import load_scene
from bp_scene_contract import Box, SceneGraph, SceneNode

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kitchen_table" / "scene.usda"


@pytest.fixture(scope="module")
def kitchen() -> SceneGraph:
    scene = load_scene(str(SAMPLE), "kitchen_table")
    return build_scene_graph(scene, reconcile_scene(scene, SAMPLE))


def _block(graph: SceneGraph, side: float, height: float) -> SceneNode:
    """A block with no shapes of its own (its box is all there is), `side` wide."""
    cube = graph.node("cube")
    x, y, z = cube.bbox.min
    box = Box(min=(x, y, z), max=(x + side, y + side, z + height))
    return cube.model_copy(update={"bbox": box, "size": box.size, "shapes": ()})


def test_the_sample_cube_rests_on_the_bowls_rim_and_gets_no_task(kitchen: SceneGraph) -> None:
    fit = authored_fit(kitchen.node("cube"), kitchen.node("bowl"), FIT_MARGIN)
    assert fit is not None and not fit.fits
    # Its corners span 7.1 cm; the authored bowl opens 7.0 cm at the rim.
    assert fit.footprint_m == pytest.approx(0.0707, abs=0.001)
    assert fit.opening_m == pytest.approx(0.070, abs=0.001)
    config = build_task_config(kitchen, ["franka_panda", "ur5e"])
    (task,) = [
        t
        for t in config.tasks
        if t.kind == "place_in" and (t.target, t.destination) == ("cube", "bowl")
    ]
    assert all(task.task_id not in r.tasks for r in config.robots)
    reasons = [d.reason for d in config.dropped if d.task_id == task.task_id]
    assert len(reasons) == 2
    assert all("bowl's authored shape" in r and "rest on the rim" in r for r in reasons)


def test_a_small_block_goes_in_and_a_tall_one_would_topple_out(kitchen: SceneGraph) -> None:
    bowl = kitchen.node("bowl")
    small = authored_fit(_block(kitchen, 0.03, 0.03), bowl, FIT_MARGIN)
    assert small is not None and small.fits
    # It sinks below the rim, onto the shell's narrowing floor.
    assert small.rest_bottom_m < small.depth_m / 2
    tall = authored_fit(_block(kitchen, 0.03, 0.12), bowl, FIT_MARGIN)
    assert tall is not None and not tall.fits
    assert tall.centre_m > tall.depth_m


def test_a_container_without_a_collision_mesh_is_measured_by_its_box(kitchen: SceneGraph) -> None:
    assert authored_fit(kitchen.node("cube"), kitchen.node("mug"), FIT_MARGIN) is None
