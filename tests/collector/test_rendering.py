"""The camera rig's two passes give what MuJoCo's own renderer gives in three."""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
import pytest
from bp_collector.mujoco.randomization import RandomizationRanges, draw_randomization
from bp_collector.mujoco.rendering import DEPTH_MAX_MM, CameraRig
from bp_collector.mujoco.world import World, WorldOptions, build_world
from bp_scene_contract import read_scene_graph, read_task_config

CAMERAS = ("wrist", "overhead", "front")


@pytest.fixture
def world(table_scene: tuple[dict[str, Any], dict[str, Any]]) -> World:
    g, c = read_scene_graph(table_scene[0]), read_task_config(table_scene[1])
    rand = draw_randomization(0, [], [], [], RandomizationRanges.none())
    task = c.task("pick_place_cube")
    return build_world(g, c.assignment("franka_panda"), task, WorldOptions(CAMERAS, 96, 64), rand)


def _reference(world: World, data: mujoco.MjData, camera: str) -> tuple[np.ndarray, ...]:
    """RGB, depth (mm, 0 where nothing was seen) and entity ids as mujoco.Renderer gives them."""
    with mujoco.Renderer(world.model, height=64, width=96) as renderer:
        for flag in ("mjRND_SHADOW", "mjRND_REFLECTION", "mjRND_SKYBOX"):
            renderer.scene.flags[getattr(mujoco.mjtRndFlag, flag)] = 0
        renderer.update_scene(data, camera=world.camera_name(camera))
        rgb = renderer.render().copy()
        renderer.enable_depth_rendering()
        depth = renderer.render().copy()
        renderer.enable_segmentation_rendering()
        seg = renderer.render().copy()
    far = world.model.vis.map.zfar * world.model.stat.extent
    depth_mm = np.rint(np.clip(depth, 0.0, DEPTH_MAX_MM / 1000.0) * 1000.0).astype(np.uint16)
    depth_mm[depth >= far * 0.999] = 0
    ids = np.zeros(seg.shape[:2], dtype=np.uint16)
    is_geom = seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)
    ids[is_geom] = world.geom_entity[seg[..., 0][is_geom]]
    return rgb, depth_mm, ids


@pytest.mark.parametrize("camera", CAMERAS)
def test_colour_depth_and_ids_match_mujocos_renderer(world: World, camera: str) -> None:
    data = mujoco.MjData(world.model)
    mujoco.mj_resetDataKeyframe(world.model, data, 0)
    mujoco.mj_forward(world.model, data)
    rig = CameraRig(world, 96, 64)
    try:
        images = rig.capture(data, camera)
    finally:
        rig.close()
    rgb, depth_mm, ids = _reference(world, data, camera)
    np.testing.assert_array_equal(images.rgb, rgb)
    # The same depth buffer, converted in float64 here and float32 there: within a millimetre.
    assert int(np.abs(images.depth_mm.astype(int) - depth_mm).max()) <= 1
    np.testing.assert_array_equal(images.segmentation, ids)
    assert len(np.unique(ids)) >= 3, "the view shows the robot, the table and an object"
