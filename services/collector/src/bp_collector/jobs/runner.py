"""Runs the stored jobs' episodes on a pool of simulation processes, one per core.

The store is the source of truth: the runner leases an episode, hands it to a process and
records the outcome. On shutdown it stops leasing, lets running episodes finish within a grace
period, and puts the unfinished ones back in the queue, so a restarted collector redoes them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from bp_collector_api import collector_pb2 as pb
from bp_common.errors import PermanentError
from bp_common.metrics import PipelineMetrics, pipeline_metrics

from bp_collector.camera_placement import (
    InvalidCameraPlacement,
    LookAt,
    Orbit,
    Placement,
    check_placements,
)
from bp_collector.jobs.store import EpisodeTicket, JobStore
from bp_collector.jobs.worker import JobEpisode, init_worker, run_episode

log = logging.getLogger("bp.collector.runner")


@dataclass(frozen=True)
class EpisodeDefaults:
    cameras: tuple[str, ...] = ("wrist", "overhead")
    width: int = 224
    height: int = 224
    fps: int = 30
    max_seconds: float = 10.0


def placements_from_wire(camera: pb.CameraSpec, cameras: tuple[str, ...]) -> dict[str, Placement]:
    """A request's camera placements, checked against the `cameras` it records (raises
    InvalidCameraPlacement)."""
    wanted: list[tuple[str, Placement]] = []
    for placed in camera.placements:
        which = placed.WhichOneof("placement")
        if which == "orbit":
            o = placed.orbit
            wanted.append((placed.camera, Orbit(o.distance_m, o.elevation_deg, o.azimuth_deg)))
        elif which == "look_at":
            p, t = placed.look_at.position, placed.look_at.target
            wanted.append((placed.camera, LookAt((p.x, p.y, p.z), (t.x, t.y, t.z))))
        else:
            raise InvalidCameraPlacement(
                f"camera placement for {placed.camera!r} has neither an orbit nor a look-at",
                camera=placed.camera,
            )
    return check_placements(wanted, cameras)


def job_dir(data_dir: Path, job_id: str) -> Path:
    return data_dir / "jobs" / job_id


class JobRunner:
    def __init__(
        self,
        store: JobStore,
        data_dir: Path,
        *,
        backend: str,
        workers: int,
        max_running_jobs: int,
        max_attempts: int = 3,
        defaults: EpisodeDefaults | None = None,
        metrics: PipelineMetrics | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics or pipeline_metrics()
        self.data_dir = data_dir
        self.backend = backend
        self.workers = max(1, workers)
        self.max_running_jobs = max_running_jobs
        self.max_attempts = max_attempts
        self.defaults = defaults or EpisodeDefaults()
        self._inflight: dict[Future[bytes], EpisodeTicket] = {}
        self._requests: dict[str, pb.StartCollectionRequest] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._pool: ProcessPoolExecutor | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        recovered = self.store.recover()
        if recovered:
            log.info("requeued %d episode(s) interrupted by the last shutdown", recovered)
        self._pool = self._new_pool()
        self._thread = threading.Thread(target=self._loop, name="job-runner", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """A job arrived or changed state: look for work now rather than at the next tick."""
        self._wake.set()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the parent runs gRPC threads, and forking those is unsafe.
        return ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(self.backend,),
        )

    def order_for(self, ticket: EpisodeTicket) -> JobEpisode:
        request = self._requests.get(ticket.job_id)
        if request is None:
            request = self.store.request(ticket.job_id)
            assert request is not None
            self._requests[ticket.job_id] = request
        camera, d = request.camera, self.defaults
        cameras = tuple(camera.cameras) or d.cameras
        return JobEpisode(
            job_dir=str(job_dir(self.data_dir, ticket.job_id)),
            episode_id=ticket.episode_id,
            task_id=ticket.task_id,
            robot=request.robot,
            seed=ticket.seed,
            cameras=cameras,
            width=camera.width or d.width,
            height=camera.height or d.height,
            fps=camera.fps or d.fps,
            max_seconds=request.max_episode_seconds or d.max_seconds,
            fovy_deg=camera.fovy_deg,
            placements=placements_from_wire(camera, cameras),
        )

    def _fill(self) -> None:
        assert self._pool is not None
        while len(self._inflight) < self.workers and not self._stopping.is_set():
            ticket = self.store.next_episode(self.max_running_jobs)
            if ticket is None:
                return
            future = self._pool.submit(run_episode, self.order_for(ticket))
            self._inflight[future] = ticket

    def _settle(self, future: Future[bytes]) -> bool:
        """Record one finished attempt; returns False when the pool broke under it."""
        ticket = self._inflight.pop(future)
        order = self.order_for(ticket)
        try:
            result = pb.EpisodeResult.FromString(future.result())
        except BrokenProcessPool:
            self.store.release(ticket, "the simulation process died", self.max_attempts)
            self.metrics.collection_episodes.add(1, robot=order.robot, outcome="error")
            return False
        except PermanentError as exc:  # the inputs cannot be simulated; retrying cannot help
            log.error("episode %s cannot be simulated: %s", ticket.episode_id, exc)
            self.store.release(ticket, f"{type(exc).__name__}: {exc}", ticket.attempt)
            self.metrics.collection_episodes.add(1, robot=order.robot, outcome="error")
            return True
        except Exception as exc:
            log.warning("episode %s attempt %d failed: %s", ticket.episode_id, ticket.attempt, exc)
            self.store.release(ticket, f"{type(exc).__name__}: {exc}", self.max_attempts)
            self.metrics.collection_episodes.add(1, robot=order.robot, outcome="error")
            return True
        self.store.record(ticket, result)
        self._measure(order, result)
        log.info(
            "recorded %s (%s, %d frames, %.1fs)",
            ticket.episode_id,
            "success" if result.success else "failure",
            result.n_frames,
            result.wall_seconds,
        )
        return True

    def _measure(self, order: JobEpisode, result: pb.EpisodeResult) -> None:
        outcome = "succeeded" if result.success else "failed"
        self.metrics.collection_episodes.add(1, robot=order.robot, outcome=outcome)
        if result.wall_seconds > 0 and order.fps > 0:
            simulated = result.n_frames / order.fps
            self.metrics.collection_realtime_factor.record(
                simulated / result.wall_seconds, robot=order.robot
            )

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._fill()
                if not self._inflight:
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                done, _ = wait(list(self._inflight), timeout=0.5, return_when=FIRST_COMPLETED)
                healthy = all([self._settle(f) for f in done])
                if not healthy and not self._stopping.is_set():
                    self._replace_broken_pool()
            except Exception:  # the scheduler must outlive any one bad episode or store hiccup
                log.exception("job runner iteration failed")
                time.sleep(1.0)

    def _replace_broken_pool(self) -> None:
        log.warning("a simulation process died; starting a new pool")
        for future in list(self._inflight):
            self._settle(future)
        assert self._pool is not None
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = self._new_pool()

    def shutdown(self, grace_s: float) -> None:
        """Stop leasing; running episodes get `grace_s` to finish, the rest go back to the queue."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        pending = list(self._inflight)
        if pending:
            log.info("waiting up to %.0fs for %d running episode(s)", grace_s, len(pending))
            done, not_done = wait(pending, timeout=grace_s)
            for future in done:
                self._settle(future)
            for future in not_done:
                ticket = self._inflight.pop(future)
                self.store.requeue(ticket)
                log.info("episode %s checkpointed as pending for the next start", ticket.episode_id)
        if self._pool is not None:
            self._kill_workers(self._pool)
            self._pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _kill_workers(pool: ProcessPoolExecutor) -> None:
        # Workers ignore SIGTERM (see init_worker); whatever still runs now is past its grace.
        # Python 3.11 has no public way to end a pool's processes, hence the private mapping.
        processes = getattr(pool, "_processes", None) or {}
        for process in list(processes.values()):
            if process.is_alive():
                os.kill(process.pid, 9)
