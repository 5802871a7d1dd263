"""Fixtures for the collector: small scenes and one recorded episode shared by several tests."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from bp_collector.demo_scenes import tabletop_scene
from bp_collector.mujoco.episode import EpisodeResult, simulate_episode
from bp_scene_contract import read_scene_graph, read_task_config

# Small images and a low frame rate keep the suite fast; the code paths are the same.
WIDTH, HEIGHT, FPS = 64, 48, 15


@pytest.fixture
def table_scene() -> tuple[dict[str, Any], dict[str, Any]]:
    graph, config = tabletop_scene("franka_panda")
    return copy.deepcopy(graph), copy.deepcopy(config)


@pytest.fixture(scope="module")
def cube_episode(tmp_path_factory: pytest.TempPathFactory) -> EpisodeResult:
    """A recorded Panda pick-and-place of the cube, with the wrist and overhead cameras."""
    graph, config = tabletop_scene("franka_panda")
    out = tmp_path_factory.mktemp("episodes") / "cube"
    return simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        "franka_panda",
        "pick_place_cube",
        seed=3,
        out_dir=out,
        cameras=("wrist", "overhead"),
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        max_seconds=10.0,
    )
