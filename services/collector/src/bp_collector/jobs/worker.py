"""What a simulation process runs: one planned episode of a job, read from the job's folder."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bp_collector_api import collector_pb2 as pb

SCENE_GRAPH = "scene_graph.json"
TASK_CONFIG = "task_config.json"
EPISODES_DIR = "episodes"

_documents: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}


@dataclass(frozen=True)
class EpisodeOrder:
    """Everything a worker needs for one episode; small and picklable."""

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


def init_worker() -> None:
    """Runs once in each simulation process.

    The parent decides when work stops: a terminal's Ctrl-C or a SIGTERM sent to the whole
    process group must not kill an episode half-way, so workers ignore both and the parent
    ends them itself when its shutdown grace runs out. Mesa's rasteriser gets one thread, as
    there is one simulation process per core.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.environ.setdefault("LP_NUM_THREADS", "1")
    os.environ.setdefault("MUJOCO_GL", "egl")
    import bp_collector.episode  # noqa: F401  (imports MuJoCo and PyAV before the first order)


def _inputs(job_dir: str) -> tuple[dict[str, Any], dict[str, Any]]:
    if job_dir not in _documents:
        folder = Path(job_dir)
        _documents[job_dir] = (
            json.loads((folder / SCENE_GRAPH).read_text()),
            json.loads((folder / TASK_CONFIG).read_text()),
        )
    return _documents[job_dir]


def episode_dir(job_dir: Path, episode_id: str) -> Path:
    return job_dir / EPISODES_DIR / episode_id


def run_episode(order: EpisodeOrder) -> bytes:
    """Simulate, record and commit the episode; returns its serialized EpisodeResult."""
    from bp_collector.episode import simulate_episode

    started = time.perf_counter()
    graph, config = _inputs(order.job_dir)
    out_dir = episode_dir(Path(order.job_dir), order.episode_id)
    result = simulate_episode(
        graph,
        config,
        order.robot,
        order.task_id,
        order.seed,
        out_dir,
        cameras=order.cameras,
        width=order.width,
        height=order.height,
        fps=order.fps,
        max_seconds=order.max_seconds,
    )
    if result.episode_id != order.episode_id:
        raise RuntimeError(
            f"episode recorded as {result.episode_id}, planned as {order.episode_id}"
        )
    return describe_episode(out_dir, order, result.reason, time.perf_counter() - started)


def describe_episode(out_dir: Path, order: EpisodeOrder, reason: str, wall_seconds: float) -> bytes:
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
        episode_id=order.episode_id,
        task_id=order.task_id,
        seed=order.seed,
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
