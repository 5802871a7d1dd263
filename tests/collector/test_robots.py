"""The expert completes tasks with every robot model (the models themselves: tests/robot_models)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bp_collector.demo_scenes import cabinet_scene, tabletop_scene
from bp_collector.mujoco.episode import simulate_episode
from bp_collector.mujoco.recording import read_episode
from bp_scene_contract import read_scene_graph, read_task_config


@pytest.mark.parametrize(
    ("robot", "task"),
    [
        ("ur5e", "pick_place_cube"),
        ("ur10", "pick_place_can"),
        ("franka_panda", "pick_place_can"),
        ("fetch", "pick_place_cube"),
    ],
)
def test_pick_and_place_succeeds(robot: str, task: str, tmp_path: Path) -> None:
    graph, config = tabletop_scene(robot)
    result = simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        robot,
        task,
        4,
        tmp_path / "ep",
        render=False,
    )
    assert result.success, result.reason
    assert result.collision_count == 0


@pytest.mark.parametrize(
    ("task", "joint", "value"), [("open_drawer", "drawer", 0.15), ("open_door", "door", 0.8)]
)
def test_panda_opens_the_cabinet(task: str, joint: str, value: float, tmp_path: Path) -> None:
    graph, config = cabinet_scene("franka_panda")
    result = simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        "franka_panda",
        task,
        1,
        tmp_path / "ep",
        render=False,
    )
    episode = read_episode(result.out_dir)
    states = episode.states()
    column = episode.manifest["state"]["articulation_joints"].index(f"cabinet/{joint}")
    opening = states["articulation_position"][:, column]
    assert result.success, result.reason
    assert opening[0] == pytest.approx(0.0, abs=1e-3)
    assert opening[-1] >= value
    assert episode.manifest["outcome"]["details"]["joint_value"] >= value
