"""A shard's episodes, run on the MuJoCo backend and committed into the run's folder: each
episode by one create-only marker after its files, the shard by its manifest; a redelivered
shard runs only the episodes that have no marker; a stopping worker hands its shard back after
the episode at hand."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from bp_collector.backends import create_backend
from bp_collector.demo_scenes import tabletop_scene
from bp_collector.shards.work import (
    ShardOutcome,
    collect_shard,
    robot_prefix,
    shard_manifest_key,
)
from bp_common.blobstore.local import LocalBlobStore
from bp_common.contracts.events import CameraSettings, CollectionShard
from bp_common.runtime.stage import HandedBack
from bp_episode_format import read_episode
from bp_scene_contract import read_scene_graph, read_task_config

RUN = "run-" + "0" * 19 + "7"


def shard(episodes: int) -> CollectionShard:
    return CollectionShard(
        scene_id="demo_tabletop",
        run_id=RUN,
        bucket="local",
        shard_id="franka_panda.000-pick_place_cube.00000",
        export_manifest=f"runs/demo_tabletop/{RUN}/export/export_manifest.json",
        export_manifest_sha256="0" * 64,
        robot="franka_panda",
        task_id="pick_place_cube",
        first_episode=0,
        episodes=episodes,
        run_seed=40,
        backend="mujoco",
        camera=CameraSettings(cameras=["overhead"], width=64, height=48, fps=10),
        max_episode_seconds=10.0,
    )


def test_a_shard_commits_its_episodes_and_a_redelivery_runs_only_what_is_missing(
    tmp_path: Path,
) -> None:
    graph, config = tabletop_scene("franka_panda")
    scene, tasks = read_scene_graph(graph), read_task_config(config)
    blobs = LocalBlobStore(tmp_path / "bucket")
    backend = create_backend("mujoco")
    work = shard(2)

    def deliver(attempt_id: str) -> ShardOutcome:
        return collect_shard(work, backend.capabilities(), backend.run_episode, blobs, scene,
                             tasks, tmp_path / "scratch", attempt_id=attempt_id, placements={})

    try:
        first = deliver("a01-w1")
        assert first.recorded == 2 and len(first.episodes) == 2
        listed = json.loads(blobs.read_bytes(shard_manifest_key(work)))
        assert [e["episode_id"] for e in listed["episodes"]] == [
            e.episode_id for e in first.episodes
        ]
        for episode in first.episodes:
            folder = tmp_path / "bucket" / robot_prefix(work) / episode.prefix
            recorded = read_episode(folder, verify=True)  # every file matches its sha256
            assert recorded.manifest["robot"] == "franka_panda"
            assert episode.success == recorded.manifest["success"]

        # A delivery killed after its first episode: the second has no marker, no shard manifest.
        second = first.episodes[1]
        blobs.delete(shard_manifest_key(work))
        blobs.delete(robot_prefix(work) + second.episode_id + ".json")
        again = deliver("a02-w2")
        assert again.recorded == 1  # the first episode stands as committed
        assert [e.episode_id for e in again.episodes] == [e.episode_id for e in first.episodes]
        assert again.episodes[0] == first.episodes[0]
        assert again.episodes[1].prefix.endswith(".a02-w2/")

        # Delivered once more after the commit: nothing runs, the same manifest comes back.
        third = deliver("a03-w1")
        assert third.recorded == 0 and third.episodes == again.episodes
    finally:
        backend.close()


def test_a_stopping_worker_hands_its_shard_back_after_the_episode_at_hand(
    tmp_path: Path,
) -> None:
    graph, config = tabletop_scene("franka_panda")
    scene, tasks = read_scene_graph(graph), read_task_config(config)
    blobs = LocalBlobStore(tmp_path / "bucket")
    backend = create_backend("mujoco")
    work = shard(2)
    recorded: list[str] = []

    def deliver(attempt_id: str, stopping: Callable[[], bool]) -> ShardOutcome:
        return collect_shard(
            work,
            backend.capabilities(),
            backend.run_episode,
            blobs,
            scene,
            tasks,
            tmp_path / "scratch",
            attempt_id=attempt_id,
            placements={},
            progress=lambda episode, ran: recorded.append(episode.episode_id),
            stopping=stopping,
        )

    try:
        # SIGTERM arrives while the first episode runs: it is committed, the second never starts
        with pytest.raises(HandedBack, match="1 of 2 episodes committed"):
            deliver("a01-w1", stopping=lambda: len(recorded) >= 1)
        assert not blobs.exists(shard_manifest_key(work))
        [first] = recorded
        assert blobs.exists(robot_prefix(work) + first + ".json")

        taken_up = deliver("a02-w2", stopping=lambda: False)  # another worker carries on
        assert taken_up.recorded == 1 and taken_up.episodes[0].episode_id == first
    finally:
        backend.close()
