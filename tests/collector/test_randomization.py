"""Domain randomisation: seeded, within its documented ranges, compiled into the world, recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pytest
from bp_collector.demo_scenes import tabletop_scene
from bp_collector.mujoco.episode import simulate_episode
from bp_collector.mujoco.randomization import (
    FLOOR_TEXTURES,
    FLOOR_TILE_M,
    DomainRandomization,
    RandomizationRanges,
    draw_randomization,
)
from bp_collector.mujoco.world import World, WorldOptions, build_world
from bp_scene_contract import read_scene_graph, read_task_config

FREE = ["can", "cube"]
ALL = ["can", "cube", "table"]


def _world(rand: DomainRandomization) -> World:
    graph, config = tabletop_scene("franka_panda")
    g, c = read_scene_graph(graph), read_task_config(config)
    task = c.task("pick_place_cube")
    return build_world(g, c.assignment("franka_panda"), task, WorldOptions(cameras=()), rand)


def test_the_same_seed_draws_the_same_values_and_other_seeds_differ_within_the_ranges() -> None:
    r = RandomizationRanges()
    draws = [draw_randomization(seed, FREE, ALL, ["overhead"]) for seed in range(40)]
    assert draw_randomization(7, FREE, ALL, ["overhead"]) == draws[7]
    assert len({json.dumps(d.to_record(), sort_keys=True) for d in draws}) == len(draws)
    for d in draws:
        for asset_id in FREE:
            jitter = d.object_jitter(asset_id)
            assert abs(jitter.dx) <= r.object_xy_m and abs(jitter.dyaw) <= r.object_yaw_rad
            assert abs(jitter.mass_scale - 1.0) <= r.object_mass
            assert abs(jitter.friction_scale - 1.0) <= r.object_friction
        texture = d.floor_texture
        assert texture.builtin in FLOOR_TEXTURES
        assert abs(texture.tile_m - FLOOR_TILE_M) <= r.floor_tile_m
        for second, first in zip(texture.rgb2, d.floor_rgb, strict=True):
            assert first * (1 - r.floor_texture_contrast) - 1e-12 <= second
            assert second <= min(1.0, first * (1 + r.floor_texture_contrast)) + 1e-12
    # Forty seeds reach well into each range, and both textures occur.
    masses = [d.object_jitter("cube").mass_scale for d in draws]
    assert max(masses) > 1.1 and min(masses) < 0.9
    assert {d.floor_texture.builtin for d in draws} == set(FLOOR_TEXTURES)


def test_zero_ranges_draw_nothing() -> None:
    d = draw_randomization(3, FREE, ALL, ["overhead"], RandomizationRanges.none())
    assert d.floor_texture.builtin == "none"
    assert all(
        (j.dx, j.dy, j.dyaw, j.mass_scale, j.friction_scale) == (0.0, 0.0, 0.0, 1.0, 1.0)
        for j in d.objects.values()
    )
    assert d.light_intensity == 0.7 and d.floor_rgb == (0.55, 0.55, 0.55 * 0.95)


def test_the_compiled_model_carries_the_drawn_mass_inertia_and_friction() -> None:
    plain = _world(draw_randomization(0, FREE, ALL, [], RandomizationRanges.none())).model
    draw = draw_randomization(11, FREE, ALL, [])
    model = _world(draw).model
    for asset_id in FREE:
        jitter = draw.object_jitter(asset_id)
        body = model.body(f"node/{asset_id}").id
        assert model.body_mass[body] == pytest.approx(plain.body_mass[body] * jitter.mass_scale)
        # The shape is the same, so its inertia scales with its mass.
        assert np.allclose(model.body_inertia[body], plain.body_inertia[body] * jitter.mass_scale)
        geoms = np.flatnonzero(model.geom_bodyid == body)
        assert len(geoms) > 0
        for g in geoms:
            assert model.geom_friction[g, 0] == pytest.approx(
                plain.geom_friction[g, 0] * jitter.friction_scale
            )
            assert np.array_equal(model.geom_friction[g, 1:], plain.geom_friction[g, 1:])
    # Fixed things keep the scene's values.
    table = np.flatnonzero(model.geom_bodyid == model.body("node/table").id)
    assert np.array_equal(model.geom_friction[table], plain.geom_friction[table])


def test_the_floor_wears_the_drawn_texture() -> None:
    draw = next(
        d
        for d in (draw_randomization(seed, FREE, ALL, []) for seed in range(20))
        if d.floor_texture.builtin == "checker"
    )
    model = _world(draw).model
    material = model.geom_matid[model.geom("floor").id]
    assert material >= 0
    texture = model.mat_texid[material, mujoco.mjtTextureRole.mjTEXROLE_RGB]
    assert texture >= 0
    channels = int(model.tex_nchannel[texture])
    size = int(model.tex_width[texture] * model.tex_height[texture] * channels)
    texels = model.tex_data[model.tex_adr[texture] : model.tex_adr[texture] + size]
    colours = np.unique(np.asarray(texels).reshape(-1, channels)[:, :3], axis=0)
    # A checker of exactly the two drawn colours (as 8-bit texels).
    wanted = np.round(np.array([draw.floor_rgb, draw.floor_texture.rgb2]) * 255)
    assert len(colours) == 2
    assert np.abs(np.sort(colours, axis=0) - np.sort(wanted, axis=0)).max() <= 1
    untextured = _world(draw_randomization(2, FREE, ALL, [], RandomizationRanges.none())).model
    assert untextured.geom_matid[untextured.geom("floor").id] == -1


def test_the_episode_manifest_records_the_draw(tmp_path: Path) -> None:
    graph, config = tabletop_scene("franka_panda")
    out = tmp_path / "episode"
    simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        "franka_panda",
        "pick_place_cube",
        seed=4,
        out_dir=out,
        fps=10,
        max_seconds=0.2,
        render=False,
    )
    recorded: dict[str, Any] = json.loads((out / "episode.json").read_bytes())["randomization"]
    draw = draw_randomization(4, FREE, ALL, ())
    assert recorded == json.loads(json.dumps(draw.to_record()))
    assert set(recorded["objects"]["cube"]) == {"dx", "dy", "dyaw", "mass_scale", "friction_scale"}
    assert recorded["floor_texture"]["builtin"] in FLOOR_TEXTURES
