"""The gRPC Collector service: handshake, idempotent job start, watch, episode retrieval, cancel."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import grpc
from bp_collector_api import API_VERSION, collector_pb2_grpc
from bp_collector_api import collector_pb2 as pb
from bp_common.errors import PipelineError
from bp_episode_format import FORMAT_NAME, FORMAT_VERSION
from bp_scene_contract import InvalidSceneDocument, read_scene_graph, read_task_config

from bp_collector.backend import Capabilities, episode_id_for
from bp_collector.camera_placement import InvalidCameraPlacement
from bp_collector.jobs.runner import EpisodeDefaults, JobRunner, job_dir, placements_from_wire
from bp_collector.jobs.store import TERMINAL, JobStore, KeyConflict, PlannedEpisode, job_id_for
from bp_collector.jobs.worker import SCENE_GRAPH, TASK_CONFIG, episode_dir

log = logging.getLogger("bp.collector.service")
_JOB_KEY = re.compile(r"^[A-Za-z0-9._:/-]{1,200}$")


def server_version() -> str:
    try:
        return version("bp-collector")
    except PackageNotFoundError:  # running from a source tree without metadata
        return "0+unknown"


@dataclass(frozen=True)
class Limits:
    """The service's own limits; a single episode's are the backend's (`Capabilities`)."""

    max_episodes_per_job: int = 10_000
    max_running_jobs: int = 4
    max_message_bytes: int = 16 * 1024 * 1024
    max_chunk_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class WatchTiming:
    heartbeat_s: float = 5.0
    max_stream_s: float = 300.0


class InvalidRequest(ValueError):
    """A StartCollection the collector cannot run; the message says why."""


def backend_wire_name(name: str) -> str:
    """A backend's name in the Backend enum: "mujoco" is BACKEND_MUJOCO, "genie-sim"
    BACKEND_GENIE_SIM; a backend the enum does not name is a ValueError."""
    wire = "BACKEND_" + name.upper().replace("-", "_")
    pb.Backend.Value(wire)
    return wire


def plan_episodes(
    request: pb.StartCollectionRequest,
    offer: Capabilities,
    limits: Limits,
    defaults: EpisodeDefaults,
) -> tuple[list[PlannedEpisode], dict[str, Any], dict[str, Any]]:
    """Validate a start request against what the backend offers and the service allows, and lay
    out its episodes: every task, `episodes_per_task` seeds each, interleaved so that a partial
    job already covers every task."""
    if request.robot not in offer.robots:
        raise InvalidRequest(f"robot {request.robot!r} is not one of {list(offer.robots)}")
    try:
        graph_doc = json.loads(request.scene_graph_json)
        config_doc = json.loads(request.task_config_json)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"scene graph or task config is not JSON: {exc}") from exc
    if not isinstance(graph_doc, dict) or not isinstance(config_doc, dict):
        raise InvalidRequest("scene graph and task config must be JSON objects")
    try:
        graph = read_scene_graph(graph_doc)
        config = read_task_config(config_doc)
        assignment = config.assignment(request.robot)
        if assignment.base_pose is None:
            raise InvalidSceneDocument(
                "robot has no base pose in the task config",
                scene_id=graph.scene_id,
                robot=request.robot,
            )
        task_ids = list(request.task_ids) or list(assignment.tasks)
        for task_id in task_ids:
            config.task(task_id)
    except PipelineError as exc:
        raise InvalidRequest(str(exc)) from exc
    if request.scene_id and request.scene_id != graph.scene_id:
        raise InvalidRequest(
            f"scene_id {request.scene_id!r} differs from the scene graph's {graph.scene_id!r}"
        )
    if not task_ids:
        raise InvalidRequest(f"no task is assigned to {request.robot}")
    if request.episodes_per_task < 1:
        raise InvalidRequest("episodes_per_task must be at least 1")
    total = len(task_ids) * request.episodes_per_task
    if total > limits.max_episodes_per_job:
        raise InvalidRequest(
            f"{total} episodes asked, this collector allows {limits.max_episodes_per_job} per job"
        )
    camera = request.camera
    known = [*offer.cameras, *(c.name for c in graph.cameras)]
    unknown = sorted(set(camera.cameras) - set(known))
    if unknown:
        raise InvalidRequest(f"unknown cameras {unknown}; known: {known}")
    width, height = camera.width or defaults.width, camera.height or defaults.height
    if width % 2 or height % 2 or max(width, height) > offer.max_image_side:
        raise InvalidRequest(
            f"image size {width}x{height} must be even and at most {offer.max_image_side}"
        )
    if not 1 <= (camera.fps or defaults.fps) <= offer.max_fps:
        raise InvalidRequest(f"fps must be between 1 and {offer.max_fps}")
    if not 0.0 <= camera.fovy_deg < 180.0:
        raise InvalidRequest("fovy_deg must be 0 (each camera's own) or below 180 degrees")
    try:
        placements_from_wire(camera, tuple(camera.cameras) or defaults.cameras)
    except InvalidCameraPlacement as exc:
        raise InvalidRequest(str(exc)) from exc
    seconds = request.max_episode_seconds or defaults.max_seconds
    if not 0 < seconds <= offer.max_episode_seconds:
        raise InvalidRequest(f"max_episode_seconds must be in (0, {offer.max_episode_seconds}]")
    plan: list[PlannedEpisode] = []
    for k in range(request.episodes_per_task):
        seed = request.seed + k
        for task_id in task_ids:
            episode_id = episode_id_for(graph.scene_id, task_id, request.robot, seed)
            plan.append(PlannedEpisode(len(plan), episode_id, task_id, seed))
    return plan, graph_doc, config_doc


def request_digest(request: pb.StartCollectionRequest) -> str:
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


class CollectorService(collector_pb2_grpc.CollectorServicer):
    def __init__(
        self,
        store: JobStore,
        runner: JobRunner,
        data_dir: Path,
        offer: Capabilities,
        *,
        limits: Limits | None = None,
        workers: int = 1,
        watch: WatchTiming | None = None,
        api_version: str = API_VERSION,
    ) -> None:
        self.store = store
        self.runner = runner
        self.data_dir = data_dir
        self.offer = offer
        self.backend = backend_wire_name(offer.name)  # one the enum lacks fails at start
        self.limits = limits or Limits()
        self.workers = workers
        self.watch = watch or WatchTiming()
        self.api_version = api_version

    def GetInfo(
        self, request: pb.GetInfoRequest, context: grpc.ServicerContext
    ) -> pb.CollectorInfo:
        d, lim, offer = self.runner.defaults, self.limits, self.offer
        return pb.CollectorInfo(
            server_version=server_version(),
            api_version=self.api_version,
            backend=self.backend,
            robots=list(offer.robots),
            cameras=[pb.CameraInfo(name=c, streams=list(offer.streams)) for c in offer.cameras],
            limits=pb.Limits(
                max_episodes_per_job=lim.max_episodes_per_job,
                max_concurrent_jobs=lim.max_running_jobs,
                max_message_bytes=lim.max_message_bytes,
                max_chunk_bytes=lim.max_chunk_bytes,
                simulation_workers=self.workers,
                max_episode_seconds=offer.max_episode_seconds,
                max_image_side=offer.max_image_side,
            ),
            episode_format=FORMAT_NAME,
            episode_format_version=FORMAT_VERSION,
            default_width=d.width,
            default_height=d.height,
            default_fps=d.fps,
        )

    def StartCollection(
        self, request: pb.StartCollectionRequest, context: grpc.ServicerContext
    ) -> pb.StartCollectionResponse:
        if not _JOB_KEY.fullmatch(request.job_key):
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "job_key must be 1-200 of [A-Za-z0-9._:/-]"
            )
        digest = request_digest(request)
        existing = self.store.job(job_id_for(request.job_key))
        if existing is not None:
            if existing.request_sha256 != digest:
                context.abort(
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"job key {request.job_key!r} already names job {existing.job_id},"
                    " started with a different request",
                )
            return pb.StartCollectionResponse(job=existing, created=False)
        try:
            plan, graph, config = plan_episodes(
                request, self.offer, self.limits, self.runner.defaults
            )
        except InvalidRequest as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        folder = job_dir(self.data_dir, job_id_for(request.job_key))
        folder.mkdir(parents=True, exist_ok=True)
        _write_json(folder / SCENE_GRAPH, graph)
        _write_json(folder / TASK_CONFIG, config)
        try:
            job, created = self.store.create(request, digest, plan)
        except KeyConflict:  # a concurrent start with the same key and another request won
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"job key {request.job_key!r} was just started with a different request",
            )
        if created:
            log.info(
                "job %s created for key %s: %d episodes of %s",
                job.job_id,
                request.job_key,
                len(plan),
                request.robot,
            )
            self.runner.wake()
        return pb.StartCollectionResponse(job=job, created=created)

    def _job_or_abort(self, job_id: str, context: grpc.ServicerContext) -> pb.Job:
        job = self.store.job(job_id)
        if job is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no job {job_id!r} on this collector")
        assert job is not None  # abort raised
        return job

    def GetJob(self, request: pb.GetJobRequest, context: grpc.ServicerContext) -> pb.Job:
        return self._job_or_abort(request.job_id, context)

    def CancelJob(self, request: pb.CancelJobRequest, context: grpc.ServicerContext) -> pb.Job:
        self._job_or_abort(request.job_id, context)
        job = self.store.cancel(request.job_id, request.reason)
        assert job is not None
        self.runner.wake()
        return job

    def WatchJob(
        self, request: pb.WatchJobRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.JobUpdate]:
        job = self._job_or_abort(request.job_id, context)
        cursor = request.after_sequence
        started = time.monotonic()
        last_sent = started
        while context.is_active():
            events = self.store.events_after(request.job_id, cursor)
            if events:
                job = self.store.job(request.job_id) or job
                for update in events:
                    update.job.CopyFrom(job)
                    cursor = update.sequence
                    yield update
                last_sent = time.monotonic()
            job = self.store.job(request.job_id) or job
            if job.state in TERMINAL and self.store.last_sequence(request.job_id) <= cursor:
                return
            now = time.monotonic()
            if now - started >= self.watch.max_stream_s:
                return  # recycled: the client reconnects from its cursor
            if now - last_sent >= self.watch.heartbeat_s:
                yield pb.JobUpdate(sequence=cursor, job=job, heartbeat=pb.Heartbeat())
                last_sent = now
            self.store.wait_for_change(min(1.0, self.watch.heartbeat_s))

    def FetchEpisode(
        self, request: pb.FetchEpisodeRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.EpisodeChunk]:
        self._job_or_abort(request.job_id, context)
        result = self.store.episode_result(request.job_id, request.episode_id)
        if result is None:
            context.abort(
                grpc.StatusCode.NOT_FOUND,
                f"episode {request.episode_id!r} is not recorded in job {request.job_id!r}",
            )
        assert result is not None  # abort raised
        folder = episode_dir(job_dir(self.data_dir, request.job_id), request.episode_id)
        limit = self.limits.max_chunk_bytes
        chunk_bytes = min(request.chunk_bytes or limit, limit)
        manifest = [f for f in result.files if f.path == "episode.json"]
        # The manifest goes last: a client that stores files in order commits the episode with it.
        for digest in [f for f in result.files if f.path != "episode.json"] + manifest:
            yield from self._file_chunks(folder, digest, chunk_bytes, context)

    def _file_chunks(
        self,
        folder: Path,
        digest: pb.FileDigest,
        chunk_bytes: int,
        context: grpc.ServicerContext,
    ) -> Iterator[pb.EpisodeChunk]:
        path = folder / digest.path
        if folder.resolve() not in path.resolve().parents:
            context.abort(grpc.StatusCode.INTERNAL, f"episode file escapes its folder: {digest}")
        hasher = hashlib.sha256()
        offset = 0
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            context.abort(grpc.StatusCode.DATA_LOSS, f"episode file is gone: {digest.path}")
        with handle:
            while True:
                data = handle.read(chunk_bytes)
                hasher.update(data)
                end = offset + len(data)
                last = end >= digest.size or not data
                if last and (end != digest.size or hasher.hexdigest() != digest.sha256):
                    # Never hand out bytes that differ from what the episode recorded.
                    context.abort(
                        grpc.StatusCode.DATA_LOSS,
                        f"episode file {digest.path} no longer matches its recorded sha256",
                    )
                yield pb.EpisodeChunk(
                    path=digest.path,
                    offset=offset,
                    data=data,
                    file_size=digest.size,
                    sha256=digest.sha256,
                    last=last,
                )
                offset = end
                if last:
                    return


def _write_json(path: Path, document: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document, sort_keys=True))
    tmp.replace(path)
