"""The learnability check learns a simple task from its demonstrations, and fails to when the
demonstrations' actions are shuffled: the check can fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bp_collector.demo_scenes import tabletop_scene
from bp_collector.learnability.check import HELD_OUT_SEED_START, check_learnability
from bp_collector.mujoco.backend import MujocoBackend
from bp_collector.mujoco.episode import simulate_episode
from bp_collector.policy import PolicyEvaluator
from bp_common.cli import app
from bp_scene_contract import read_scene_graph, read_task_config
from typer.testing import CliRunner

ROBOT, TASK, FPS, DEMOS = "franka_panda", "pick_place_cube", 15, 10


@pytest.fixture(scope="module")
def demonstrations(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Ten expert demonstrations of the Panda's cube pick-and-place (seeds 0..9), state only,
    laid out as `bp collect` writes them, and the export they come from."""
    graph, config = tabletop_scene(ROBOT)
    root = tmp_path_factory.mktemp("learnability")
    export = root / "export"
    export.mkdir()
    (export / "scene_graph.json").write_text(json.dumps(graph))
    (export / "task_config.json").write_text(json.dumps(config))
    for seed in range(DEMOS):
        simulate_episode(
            read_scene_graph(graph),
            read_task_config(config),
            ROBOT,
            TASK,
            seed,
            root / "episodes" / ROBOT / f"{TASK}.s{seed}",
            fps=FPS,
            max_seconds=12.0,
            render=False,
        )
    return root / "episodes", export


def check(episodes: Path, export: Path, shuffle: bool):  # type: ignore[no-untyped-def]
    scene = read_scene_graph(json.loads((export / "scene_graph.json").read_text()))
    tasks = read_task_config(json.loads((export / "task_config.json").read_text()))
    return check_learnability(
        sorted((episodes / ROBOT).iterdir()),
        scene,
        tasks,
        ROBOT,
        MujocoBackend(),
        held_out=6,
        shuffle_actions=shuffle,
    )


def test_the_clone_of_real_demonstrations_succeeds_on_unseen_seeds(
    demonstrations: tuple[Path, Path],
) -> None:
    result = check(*demonstrations, shuffle=False)

    [task] = result.tasks
    assert task.task_id == TASK and task.training_episodes == DEMOS
    assert all(seed >= HELD_OUT_SEED_START for seed in task.held_out_seeds)
    assert len(task.held_out_seeds) == 6
    assert result.success_rate >= 0.5  # measured: 6 of 6


def test_shuffled_actions_teach_nothing(demonstrations: tuple[Path, Path]) -> None:
    result = check(*demonstrations, shuffle=True)

    assert result.shuffled_actions and result.evaluations == 6
    # At most one lucky drop in six (the rate is rounded, so count): measured 1 of 6 since
    # masses and friction are drawn too, 0 of 6 before.
    assert sum(task.successes for task in result.tasks) <= 1


def test_bp_learnability_writes_one_result_per_robot_once(
    demonstrations: tuple[Path, Path], tmp_path: Path
) -> None:
    episodes, export = demonstrations
    out = tmp_path / "results"
    args = ["learnability", str(episodes), "--export", str(export), "--held-out", "2"]
    args += ["--run-id", "run-x", "--out", str(out)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    record = json.loads((out / f"{ROBOT}.json").read_text())
    assert record["run_id"] == "run-x" and record["training_episodes"] == DEMOS
    assert record["evaluations"] == 2 and "behaviour cloning" in record["policy"]
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0  # a result is never rewritten


def test_the_mujoco_backend_can_evaluate_policies() -> None:
    assert isinstance(MujocoBackend(), PolicyEvaluator)
