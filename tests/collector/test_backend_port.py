"""The backend port: the collector runs episodes only through it, chooses its backend by name
from BP_COLLECTOR_BACKEND, refuses a name it does not know, and MuJoCo fulfils it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from bp_collector.backend import EpisodeOrder, episode_id_for
from bp_collector.backends import BACKENDS, UnknownBackend, create_backend
from bp_collector.demo_scenes import tabletop_scene
from bp_collector.settings import CollectorSettings
from bp_episode_format import read_episode
from bp_scene_contract import read_scene_graph, read_task_config

BP = Path(sys.executable).with_name("bp")


def test_the_service_and_its_jobs_reach_no_simulator_but_through_the_port() -> None:
    code = (
        "import sys\n"
        "import bp_collector.cli, bp_collector.service.server, bp_collector.jobs.worker\n"
        "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] == 'mujoco' or m.startswith('bp_collector.mujoco')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(loaded.replace("'", '"')) == []


def test_an_unknown_backend_is_refused_at_start_naming_the_known_ones(tmp_path: Path) -> None:
    env = {**os.environ, "PIPELINE_ENV": "local", "BP_COLLECTOR_BACKEND": "nonsense"}
    data_dir = tmp_path / "collector"
    result = subprocess.run(
        [str(BP), "collector", "serve", "--port", "0", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode != 0
    assert "BP_COLLECTOR_BACKEND" in result.stderr
    assert (
        "unknown collector backend 'nonsense'; known backends: genie-sim, mujoco" in result.stderr
    )
    assert not data_dir.exists()  # refused before it claimed anything


def test_settings_read_the_collectors_variables_and_are_declared_for_the_whole_pipeline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BP_COLLECTOR_BACKEND", "mujoco")
    monkeypatch.setenv("BP_COLLECTOR_MAX_EPISODES_PER_JOB", "7")
    settings = CollectorSettings()
    assert (settings.collector_backend, settings.collector_max_episodes_per_job) == ("mujoco", 7)
    monkeypatch.delenv("BP_COLLECTOR_BACKEND")
    assert CollectorSettings().collector_backend == "mujoco"  # the default
    declared = {ep.name: ep for ep in entry_points(group="blueprint.settings")}
    assert declared["collector"].load() is CollectorSettings


def test_the_registry_makes_known_backends_and_names_them_when_asked_for_another() -> None:
    assert sorted(BACKENDS) == ["genie-sim", "mujoco"]
    backend = create_backend("mujoco")
    assert backend.capabilities().name == "mujoco"
    with pytest.raises(UnknownBackend, match="known backends: genie-sim, mujoco") as caught:
        create_backend("isaac-lab")
    assert caught.value.permanent


def test_mujoco_runs_an_order_into_a_raw_episode_its_summary_describes(tmp_path: Path) -> None:
    graph, config = tabletop_scene("franka_panda")
    scene, tasks = read_scene_graph(graph), read_task_config(config)
    backend = create_backend("mujoco")
    offer = backend.capabilities()
    assert offer.robots == ("franka_panda", "ur5e", "ur10", "fetch", "gr1")
    assert {"wrist", "overhead"} <= set(offer.cameras)
    order = EpisodeOrder(
        episode_id=episode_id_for(scene.scene_id, "pick_place_can", "franka_panda", 5),
        scene=scene,
        tasks=tasks,
        task_id="pick_place_can",
        robot="franka_panda",
        seed=5,
        cameras=("overhead",),
        width=32,
        height=32,
        fps=10,
        max_seconds=1.0,
    )
    summary = backend.run_episode(order, tmp_path / order.episode_id)
    backend.close()
    episode = read_episode(tmp_path / order.episode_id)  # verifies every file
    assert summary.episode_id == episode.manifest["episode_id"] == order.episode_id
    assert summary.success is episode.manifest["success"] is False  # one second is too short
    assert summary.reason == episode.manifest["outcome"]["reason"] == "object not in goal region"
    assert summary.n_frames == episode.n_frames == 10
    assert [c["name"] for c in episode.manifest["cameras"]] == ["overhead"]
