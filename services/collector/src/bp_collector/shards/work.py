"""One shard's episodes run on a backend and committed into the run's bucket folder.

Each episode is recorded into a scratch folder by the backend, then copied under an attempt of
its own, `episodes/{robot}/{episode_id}.{attempt}/` (its files first, its `episode.json` with
their sha256s last), and committed by one create-only marker, `episodes/{robot}/{episode_id}.json`,
naming that folder. Two deliveries of one shard (a lapsed lease) cannot mix their files: the
first marker stands, and the other delivery removes its own copy. A redelivered shard reads the
markers it finds and runs only the episodes without one. The shard itself is committed by a
create-only manifest, `episodes/shards/{shard_id}.json`, listing its episodes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bp_common.blobstore import BlobStore
from bp_common.contracts.events import CollectionShard
from bp_common.errors import AlreadyExists, PermanentError
from bp_common.runtime.stage import HandedBack
from bp_episode_format import MANIFEST
from bp_scene_contract import SceneGraph, TaskConfig

from bp_collector.backend import Capabilities, EpisodeOrder, episode_id_for
from bp_collector.camera_placement import Placement


class ShardInputsInvalid(PermanentError):
    """The shard asks for what its export or its backend cannot give."""


@dataclass(frozen=True)
class ShardEpisode:
    """One committed episode, as the shard's manifest (and then the robot's) lists it."""

    episode_id: str
    prefix: str
    """Its folder, relative to the robot's prefix."""
    task_id: str
    seed: int
    success: bool
    reason: str
    collision_free: bool
    collision_count: int
    peak_collision_force_n: float
    n_frames: int
    manifest_sha256: str
    bytes: int

    def to_document(self) -> dict[str, Any]:
        return dict(self.__dict__)


Recorder = Callable[[EpisodeOrder, Path], object]
"""Records one episode order into a folder (the backend's run_episode, in this process or in
a simulation process of a pool)."""


@dataclass(frozen=True)
class ShardOutcome:
    manifest: str
    episodes: list[ShardEpisode]
    recorded: int
    """Episodes this delivery ran (the rest were committed by an earlier one)."""

    @property
    def succeeded(self) -> int:
        return sum(1 for e in self.episodes if e.success)


def robot_prefix(shard: CollectionShard) -> str:
    return f"runs/{shard.scene_id}/{shard.run_id}/episodes/{shard.robot}/"


def shard_manifest_key(shard: CollectionShard) -> str:
    return f"runs/{shard.scene_id}/{shard.run_id}/episodes/shards/{shard.shard_id}.json"


def collect_shard(
    shard: CollectionShard,
    capabilities: Capabilities,
    record: Recorder,
    blobs: BlobStore,
    scene: SceneGraph,
    tasks: TaskConfig,
    scratch: Path,
    *,
    attempt_id: str,
    placements: dict[str, Placement],
    before_commit: Callable[[], None] = lambda: None,
    progress: Callable[[ShardEpisode, bool], None] = lambda episode, ran: None,
    stopping: Callable[[], bool] = lambda: False,
) -> ShardOutcome:
    """Run and commit every episode of the shard not yet committed, then the shard; once
    `stopping`, hand the shard back before starting another episode (HandedBack)."""
    key = shard_manifest_key(shard)
    if blobs.exists(key):
        return _read_shard(blobs, key)
    if shard.robot not in capabilities.robots:
        raise ShardInputsInvalid(
            f"robot {shard.robot!r} is not one of {list(capabilities.robots)}",
            backend=capabilities.name,
        )
    cameras = tuple(shard.camera.cameras) or capabilities.cameras
    episodes: list[ShardEpisode] = []
    recorded = 0
    for number in range(shard.first_episode, shard.first_episode + shard.episodes):
        seed = shard.run_seed + number
        episode_id = episode_id_for(scene.scene_id, shard.task_id, shard.robot, seed)
        committed = _committed(blobs, shard, episode_id)
        ran = committed is None
        if committed is None and stopping():
            raise HandedBack(
                f"the worker is stopping: {len(episodes)} of {shard.episodes} episodes committed",
                shard=shard.shard_id,
            )
        if committed is None:
            order = EpisodeOrder(
                episode_id=episode_id,
                scene=scene,
                tasks=tasks,
                task_id=shard.task_id,
                robot=shard.robot,
                seed=seed,
                cameras=cameras,
                width=shard.camera.width or 224,
                height=shard.camera.height or 224,
                fps=shard.camera.fps or 30,
                max_seconds=shard.max_episode_seconds,
                fovy_deg=shard.camera.fovy_deg,
                placements=placements,
            )
            out = scratch / episode_id
            shutil.rmtree(out, ignore_errors=True)
            record(order, out)
            before_commit()
            committed = _commit_episode(blobs, shard, episode_id, out, attempt_id)
            shutil.rmtree(out, ignore_errors=True)
            recorded += 1
        episodes.append(committed)
        progress(committed, ran)
    before_commit()
    document = {
        "shard_id": shard.shard_id,
        "robot": shard.robot,
        "task_id": shard.task_id,
        "episodes": [e.to_document() for e in episodes],
    }
    try:
        blobs.create_only(key, _json(document), content_type="application/json")
    except AlreadyExists:
        return _read_shard(blobs, key)  # another delivery committed the shard first
    return ShardOutcome(key, episodes, recorded)


def _marker_key(shard: CollectionShard, episode_id: str) -> str:
    return f"{robot_prefix(shard)}{episode_id}.json"


def _committed(blobs: BlobStore, shard: CollectionShard, episode_id: str) -> ShardEpisode | None:
    key = _marker_key(shard, episode_id)
    if not blobs.exists(key):
        return None
    return ShardEpisode(**json.loads(blobs.read_bytes(key)))


def _commit_episode(
    blobs: BlobStore, shard: CollectionShard, episode_id: str, out: Path, attempt_id: str
) -> ShardEpisode:
    manifest_bytes = (out / MANIFEST).read_bytes()
    manifest = json.loads(manifest_bytes)
    folder = f"{episode_id}.{attempt_id}/"
    base = robot_prefix(shard) + folder
    for entry in manifest["files"]:
        path = entry["path"]
        with (
            blobs.open_write(base + path, metadata={"sha256": entry["sha256"]}) as writer,
            (out / path).open("rb") as source,
        ):
            shutil.copyfileobj(source, writer, 1 << 20)
    blobs.create_only(base + MANIFEST, manifest_bytes, content_type="application/json")
    collisions = manifest["collisions"]
    episode = ShardEpisode(
        episode_id=episode_id,
        prefix=folder,
        task_id=str(manifest["task_id"]),
        seed=int(manifest["seed"]),
        success=bool(manifest["success"]),
        reason=str(manifest["outcome"]["reason"]),
        collision_free=int(collisions["count"]) == 0,
        collision_count=int(collisions["count"]),
        peak_collision_force_n=float(collisions["peak_force_n"]),
        n_frames=int(manifest["n_frames"]),
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        bytes=sum(int(f["size"]) for f in manifest["files"]) + len(manifest_bytes),
    )
    try:
        blobs.create_only(_marker_key(shard, episode_id), _json(episode.to_document()))
    except AlreadyExists:
        # Another delivery of this shard committed the episode first: its copy stands. This
        # one's files stay unreferenced (workers may create, never delete: decision 0104) until
        # the raw episodes' retention removes them.
        winner = _committed(blobs, shard, episode_id)
        assert winner is not None
        return winner
    return episode


def _read_shard(blobs: BlobStore, key: str) -> ShardOutcome:
    document = json.loads(blobs.read_bytes(key))
    episodes = [ShardEpisode(**e) for e in document["episodes"]]
    return ShardOutcome(key, episodes, recorded=0)


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"
