"""The collect stage: `collection-shards` in, a shard's episodes committed; the delivery that
completes a run's last shard fans in and emits `episodes-collected`, once.

Each message is a piece of the stage (`collect/{shard}`), held and recorded on its own, so the
shards of one run are worked by many workers at once. A worker process keeps one simulation
process per work slot (`bp_collector.jobs.worker`, the backend of `BP_COLLECTOR_BACKEND`), so a
shard never shares a simulator; the service itself loads no simulator.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from bp_common.config import Settings
from bp_common.contracts.events import CollectionShard, LookAtPlacement, OrbitPlacement
from bp_common.errors import PermanentError
from bp_common.ledger import StageState
from bp_common.ledger.shards import shard_unit
from bp_common.runtime.exports import read_export
from bp_common.runtime.limits import Footprint
from bp_common.runtime.stage import Ports, RunRef, Stage, StageContext, StageOutput, StageStop
from bp_scene_contract import read_scene_graph, read_task_config

from bp_collector.backend import Capabilities, EpisodeOrder
from bp_collector.backends import SIMULATION_PROCESSES
from bp_collector.camera_placement import LookAt, Orbit, Placement, check_placements
from bp_collector.jobs.worker import (
    EPISODES_DIR,
    SCENE_GRAPH,
    TASK_CONFIG,
    JobEpisode,
    backend_capabilities,
    init_worker,
    run_episode,
)
from bp_collector.mujoco import use_offscreen_gl
from bp_collector.settings import CollectorSettings
from bp_collector.shards.fan_in import fan_in
from bp_collector.shards.work import ShardEpisode, ShardInputsInvalid, collect_shard


class Simulators:
    """This process's simulation processes, started on first use, one per work slot."""

    def __init__(self, settings: CollectorSettings, workdir: Path) -> None:
        self.backend = settings.collector_backend
        self.processes = (
            settings.collector_workers
            or SIMULATION_PROCESSES.get(self.backend)
            or os.cpu_count()
            or 1
        )
        self.workdir = workdir
        self._pool: ProcessPoolExecutor | None = None
        self._capabilities: Capabilities | None = None
        self._lock = threading.Lock()

    def _started(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # A simulation process imports mujoco with the command's own modules, before
                # any collector module could choose the offscreen backend: it inherits it.
                use_offscreen_gl()
                # spawn, not fork: the parent runs the bus client's threads.
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=init_worker,
                    initargs=(self.backend,),
                )
                self._capabilities = self._pool.submit(backend_capabilities).result()
            return self._pool

    @property
    def capabilities(self) -> Capabilities:
        self._started()
        assert self._capabilities is not None
        return self._capabilities

    def run_dir(self, run_id: str, scene_graph: bytes, task_config: bytes) -> Path:
        """The run's inputs where the simulation processes read them."""
        folder = self.workdir / "collect" / run_id
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in ((SCENE_GRAPH, scene_graph), (TASK_CONFIG, task_config)):
            path = folder / name
            if not path.exists() or path.read_bytes() != data:
                partial = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.part")
                partial.write_bytes(data)
                partial.replace(path)
        return folder

    def record(self, order: EpisodeOrder, out: Path) -> None:
        """Run the order in a simulation process; it writes `out` (the run folder's episode)."""
        job = JobEpisode(
            job_dir=str(out.parent.parent),
            episode_id=order.episode_id,
            task_id=order.task_id,
            robot=order.robot,
            seed=order.seed,
            cameras=order.cameras,
            width=order.width,
            height=order.height,
            fps=order.fps,
            max_seconds=order.max_seconds,
            fovy_deg=order.fovy_deg,
            placements=dict(order.placements),
        )
        self._started().submit(run_episode, job).result()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None


def _simulators(settings: Settings, ports: Ports) -> Simulators:
    return Simulators(CollectorSettings(), ports.workdir)


def identify(shard: CollectionShard) -> RunRef:
    return RunRef(shard.scene_id, shard.run_id, unit=shard_unit(shard.shard_id))


def placements(shard: CollectionShard, cameras: tuple[str, ...]) -> dict[str, Placement]:
    wanted: list[tuple[str, Placement]] = []
    for camera, placed in sorted(shard.camera.placements.items()):
        if isinstance(placed, OrbitPlacement):
            wanted.append(
                (camera, Orbit(placed.distance_m, placed.elevation_deg, placed.azimuth_deg))
            )
        elif isinstance(placed, LookAtPlacement):
            wanted.append((camera, LookAt(placed.position, placed.look_at)))
    return check_placements(wanted, cameras)


def _measure(
    ctx: StageContext[Simulators],
    shard: CollectionShard,
    episode: ShardEpisode,
    wall_s: float,
    fps: int,
) -> None:
    """An episode this delivery recorded: its outcome and how fast it simulated."""
    outcome = "succeeded" if episode.success else "failed"
    ctx.metrics.collection_episodes.add(1, robot=shard.robot, outcome=outcome)
    if wall_s > 0 and fps > 0:
        ctx.metrics.collection_realtime_factor.record(
            episode.n_frames / fps / wall_s, robot=shard.robot
        )


def handle(ctx: StageContext[Simulators], shard: CollectionShard) -> StageOutput | StageStop:
    simulators = ctx.adapters
    try:
        if shard.backend != simulators.backend:
            raise ShardInputsInvalid(
                f"the shard asks for the {shard.backend} backend; this worker runs"
                f" {simulators.backend}",
                shard=shard.shard_id,
            )
        graph, tasks = read_export(ctx.blobs, shard.export_manifest, shard.export_manifest_sha256)
        folder = simulators.run_dir(ctx.run_id, graph, tasks)
        capabilities = simulators.capabilities
        cameras = tuple(shard.camera.cameras) or capabilities.cameras
        done = 0
        timed: dict[str, tuple[float, int]] = {}  # episode id: wall seconds, frames per second

        def record(order: EpisodeOrder, out: Path) -> None:
            started = time.monotonic()
            try:
                simulators.record(order, out)
            except Exception:
                ctx.metrics.collection_episodes.add(1, robot=order.robot, outcome="error")
                raise
            timed[order.episode_id] = (time.monotonic() - started, order.fps)

        def progress(episode: ShardEpisode, ran: bool) -> None:
            nonlocal done
            done += 1
            if ran:
                _measure(ctx, shard, episode, *timed.pop(episode.episode_id, (0.0, 0)))
            ctx.log.info(
                "%s: episode %d/%d %s (%s)",
                shard.shard_id,
                done,
                shard.episodes,
                "recorded" if ran else "already committed",
                "succeeded" if episode.success else episode.reason,
            )

        outcome = collect_shard(
            shard,
            capabilities,
            record,
            ctx.blobs,
            read_scene_graph(json.loads(graph)),
            read_task_config(json.loads(tasks)),
            folder / EPISODES_DIR,
            attempt_id=ctx.attempt_id,
            placements=placements(shard, cameras),
            before_commit=ctx.lease_check,
            progress=progress,
            stopping=ctx.stopping,
        )
    except PermanentError as exc:
        ctx.ports.ledger.shards.fail(ctx.run_id, shard.shard_id, exc)
        raise
    ctx.lease_check()
    completion = ctx.ports.ledger.shards.complete(
        ctx.run_id,
        shard.shard_id,
        episodes=len(outcome.episodes),
        succeeded=outcome.succeeded,
        manifest=outcome.manifest,
    )
    collection = completion.collection
    counts: dict[str, float] = {
        "episodes": len(outcome.episodes),
        "succeeded": outcome.succeeded,
        "recorded": outcome.recorded,
    }
    if collection.completed_by != shard.shard_id:
        progress_now = collection.progress(ctx.ports.ledger.clock())
        note = f"shard {progress_now.shards_done}/{progress_now.shards_total} of the run"
        return StageStop(StageState.SUCCEEDED, note, counts)
    event, run_counts = fan_in(ctx.blobs, shard, collection)
    ctx.ports.ledger.admissions.release_run(ctx.scene_id, ctx.run_id)
    note = f"the run's last shard: {len(collection.done)} shards fanned in"
    return StageOutput(event, counts=run_counts, note=note)


# One shard per simulation process: a delivery keeps a core busy (its simulation process) and
# little memory in this process.
COLLECT = Stage(
    name="collect",
    handle=handle,
    identify=identify,
    adapters=_simulators,
    footprint=Footprint(cpus=1.0, memory_mb=1500),
)
