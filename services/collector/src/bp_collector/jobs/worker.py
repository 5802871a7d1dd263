"""What a simulation process runs: one planned episode of a job, through the backend port.

Each process makes its own backend once (`init_worker`), reads a job's scene graph and task
config from the job's folder through the scene contract (once per job), and hands the backend
one `EpisodeOrder` per episode.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from bp_collector_api import collector_pb2 as pb
from bp_scene_contract import SceneGraph, TaskConfig, read_scene_graph, read_task_config

from bp_collector.backend import Backend, Capabilities, EpisodeOrder
from bp_collector.backends import create_backend
from bp_collector.camera_placement import Placement

SCENE_GRAPH = "scene_graph.json"
TASK_CONFIG = "task_config.json"
EPISODES_DIR = "episodes"

_documents: dict[str, tuple[SceneGraph, TaskConfig]] = {}
_backend: Backend | None = None


@dataclass(frozen=True)
class JobEpisode:
    """Everything a worker needs for one episode of a stored job; small and picklable."""

    job_dir: str
    episode_id: str
    task_id: str
    robot: str
    seed: int
    cameras: tuple[str, ...]
    width: int
    height: int
    fps: int
    max_seconds: float
    fovy_deg: float = 0.0
    placements: dict[str, Placement] = field(default_factory=dict)


def init_worker(backend: str) -> None:
    """Runs once in each simulation process: makes its backend.

    The parent decides when work stops: a terminal's Ctrl-C or a SIGTERM sent to the whole
    process group must not kill an episode half-way, so workers ignore both and the parent
    ends them itself when its shutdown grace runs out. Mesa's rasteriser gets one thread, as
    there is one simulation process per core.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ.setdefault("LP_NUM_THREADS", "1")
    global _backend
    _backend = create_backend(backend)  # loads the simulator before the first order
    atexit.register(_backend.close)


def backend_capabilities() -> Capabilities:
    """What this process's backend offers (asked once by a parent that loads no simulator)."""
    if _backend is None:
        raise RuntimeError("init_worker has not made this process's backend")
    return _backend.capabilities()


def _inputs(job_dir: str) -> tuple[SceneGraph, TaskConfig]:
    if job_dir not in _documents:
        folder = Path(job_dir)
        _documents[job_dir] = (
            read_scene_graph((folder / SCENE_GRAPH).read_bytes()),
            read_task_config((folder / TASK_CONFIG).read_bytes()),
        )
    return _documents[job_dir]


def episode_dir(job_dir: Path, episode_id: str) -> Path:
    return job_dir / EPISODES_DIR / episode_id


def run_episode(episode: JobEpisode) -> bytes:
    """Run the episode on this process's backend; returns its serialized EpisodeResult."""
    started = time.perf_counter()
    scene, tasks = _inputs(episode.job_dir)
    out_dir = episode_dir(Path(episode.job_dir), episode.episode_id)
    order = EpisodeOrder(
        episode_id=episode.episode_id,
        scene=scene,
        tasks=tasks,
        task_id=episode.task_id,
        robot=episode.robot,
        seed=episode.seed,
        cameras=episode.cameras,
        width=episode.width,
        height=episode.height,
        fps=episode.fps,
        max_seconds=episode.max_seconds,
        fovy_deg=episode.fovy_deg,
        placements=episode.placements,
    )
    if _backend is None:
        raise RuntimeError("init_worker has not made this process's backend")
    summary = _backend.run_episode(order, out_dir)
    return describe_episode(out_dir, episode, summary.reason, time.perf_counter() - started)


def describe_episode(out_dir: Path, episode: JobEpisode, reason: str, wall_seconds: float) -> bytes:
    """The EpisodeResult of a committed episode folder, from its manifest."""
    manifest_bytes = (out_dir / "episode.json").read_bytes()
    manifest = json.loads(manifest_bytes)
    manifest_sha256 = hashlib.sha256(manifest_bytes).hexdigest()
    files = [
        pb.FileDigest(path=f["path"], sha256=f["sha256"], size=f["size"]) for f in manifest["files"]
    ]
    files.append(
        pb.FileDigest(path="episode.json", sha256=manifest_sha256, size=len(manifest_bytes))
    )
    collisions = manifest["collisions"]
    result = pb.EpisodeResult(
        episode_id=episode.episode_id,
        task_id=episode.task_id,
        seed=episode.seed,
        success=bool(manifest["success"]),
        reason=reason,
        n_frames=int(manifest["n_frames"]),
        collision_count=int(collisions["count"]),
        peak_collision_force_n=float(collisions["peak_force_n"]),
        files=files,
        manifest_sha256=manifest_sha256,
        wall_seconds=wall_seconds,
    )
    return bytes(result.SerializeToString())
