"""One collection: a job per robot on the collector, followed to its end, every episode copied
into the blob store and verified, a manifest per robot, and a manifest of the whole collection.

Layout under the collection's prefix (the stage uses `runs/{scene}/{run}/episodes/`):

    {robot}/job.json                      the collector job this robot's episodes come from
    {robot}/{episode_id}/...              one raw episode (docs/raw-episode-format.md)
    {robot}/manifest.json                 the robot's episodes and counts; written create-only
    collection_manifest.json              every robot's manifest; written create-only, last

A restarted collection re-attaches: the job key is fixed by the run and the robot, so starting
again returns the same job; episodes already stored with the reported checksum are skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bp_collector_api import API_VERSION
from bp_collector_api import collector_pb2 as pb
from bp_common.blobstore import BlobStore
from bp_common.errors import AlreadyExists

from bp_submit.collector_client import CollectorClient
from bp_submit.episode_transfer import episode_prefix, fetch_episode, is_stored
from bp_submit.errors import CollectionFailed, CollectorCallFailed, IncompatibleCollector

log = logging.getLogger("bp.submit.collection")
ROBOT_MANIFEST = "manifest.json"
JOB_RECORD = "job.json"
COLLECTION_MANIFEST = "collection_manifest.json"
Progress = Callable[[str, pb.Job], None]


@dataclass(frozen=True)
class CollectionPlan:
    """What to ask the collector for, identical on every redelivery of the same run."""

    scene_id: str
    key_prefix: str
    robots: dict[str, list[str]]
    scene_graph_json: bytes = field(repr=False)
    task_config_json: bytes = field(repr=False)
    episodes_per_task: int
    seed: int
    camera: pb.CameraSpec
    max_episode_seconds: float
    labels: dict[str, str]

    def job_key(self, robot: str) -> str:
        return f"{self.key_prefix}/{robot}"

    def request(self, robot: str) -> pb.StartCollectionRequest:
        return pb.StartCollectionRequest(
            job_key=self.job_key(robot),
            scene_id=self.scene_id,
            robot=robot,
            scene_graph_json=self.scene_graph_json,
            task_config_json=self.task_config_json,
            task_ids=self.robots[robot],
            episodes_per_task=self.episodes_per_task,
            seed=self.seed,
            camera=self.camera,
            max_episode_seconds=self.max_episode_seconds,
            labels=self.labels,
        )


def assigned_tasks(task_config: dict[str, Any]) -> tuple[dict[str, list[str]], list[str]]:
    """Robots with at least one kept task and a base pose, and the robots left out."""
    robots: dict[str, list[str]] = {}
    left_out = []
    for entry in task_config.get("robots", []):
        tasks = list(entry.get("tasks") or [])
        if tasks and entry.get("base_pose") is not None:
            robots[entry["robot"]] = tasks
        else:
            left_out.append(entry["robot"])
    return robots, left_out


@dataclass(frozen=True)
class RobotSummary:
    robot: str
    job_id: str
    prefix: str
    manifest: str
    manifest_sha256: str
    episodes: int
    succeeded: int
    collision_free: int

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.episodes if self.episodes else 0.0

    @property
    def collision_free_rate(self) -> float:
        return self.collision_free / self.episodes if self.episodes else 0.0

    def counts(self) -> dict[str, float]:
        return {
            "episodes": self.episodes,
            "succeeded": self.succeeded,
            "collision_free": self.collision_free,
            "success_rate": round(self.success_rate, 4),
            "collision_free_rate": round(self.collision_free_rate, 4),
        }


def _counts(episodes: list[dict[str, Any]]) -> dict[str, float]:
    n = len(episodes)
    ok = sum(e["success"] for e in episodes)
    clean = sum(e["collision_free"] for e in episodes)
    return {
        "episodes": n,
        "succeeded": ok,
        "collision_free": clean,
        "success_rate": round(ok / n, 4) if n else 0.0,
        "collision_free_rate": round(clean / n, 4) if n else 0.0,
    }


def _json(document: dict[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


class Collection:
    def __init__(
        self,
        client: CollectorClient,
        info: pb.CollectorInfo,
        blobs: BlobStore,
        prefix: str,
        plan: CollectionPlan,
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        self.info = info
        self.blobs = blobs
        self.prefix = prefix
        self.plan = plan
        self.progress = progress

    def robot_prefix(self, robot: str) -> str:
        return f"{self.prefix}{robot}/"

    def check_capabilities(self) -> None:
        unsupported = sorted(set(self.plan.robots) - set(self.info.robots))
        if unsupported:
            raise IncompatibleCollector(
                f"the collector ({pb.Backend.Name(self.info.backend)}) cannot run robots"
                f" {unsupported}; it offers {list(self.info.robots)}",
                address=self.client.address,
            )
        limit = self.info.limits.max_episodes_per_job
        for robot, tasks in self.plan.robots.items():
            wanted = len(tasks) * self.plan.episodes_per_task
            if limit and wanted > limit:
                raise IncompatibleCollector(
                    f"{robot} needs {wanted} episodes in one job, the collector allows {limit}",
                    address=self.client.address,
                )

    def committed(self, robot: str) -> RobotSummary | None:
        key = self.robot_prefix(robot) + ROBOT_MANIFEST
        if not self.blobs.exists(key):
            return None
        raw = self.blobs.read_bytes(key)
        return self._summary(robot, key, raw)

    def _summary(self, robot: str, key: str, raw: bytes) -> RobotSummary:
        manifest = json.loads(raw)
        counts = manifest["counts"]
        return RobotSummary(
            robot=robot,
            job_id=manifest["job"]["job_id"],
            prefix=self.robot_prefix(robot),
            manifest=key,
            manifest_sha256=hashlib.sha256(raw).hexdigest(),
            episodes=int(counts["episodes"]),
            succeeded=int(counts["succeeded"]),
            collision_free=int(counts["collision_free"]),
        )

    def start_or_attach(self, robot: str) -> pb.Job:
        """Start the robot's job, or get back the one its key already names, and record it."""
        response = self.client.start(self.plan.request(robot))
        job = response.job
        record_key = self.robot_prefix(robot) + JOB_RECORD
        if not self.blobs.exists(record_key):
            self.blobs.write_bytes(
                record_key,
                _json(
                    {
                        "job_id": job.job_id,
                        "job_key": job.job_key,
                        "request_sha256": job.request_sha256,
                        "collector": {
                            "address": self.client.address,
                            "server_version": self.info.server_version,
                            "api_version": self.info.api_version,
                        },
                    }
                ),
                content_type="application/json",
            )
        log.info(
            "%s job %s for %s (%s)",
            "started" if response.created else "re-attached to",
            job.job_id,
            robot,
            pb.JobState.Name(job.state),
        )
        return job

    def follow(self, robot: str, job_id: str, until: float) -> RobotSummary:
        """Store every episode the job records, then commit the robot's manifest."""
        robot_prefix = self.robot_prefix(robot)
        results: dict[str, pb.EpisodeResult] = {}
        final: pb.Job | None = None
        for update in self.client.follow(job_id, 0, until):
            final = update.job
            if update.HasField("episode"):
                result = update.episode
                if not is_stored(self.blobs, robot_prefix, result):
                    fetch_episode(self.client, self.blobs, robot_prefix, job_id, result)
                results[result.episode_id] = result
            if self.progress is not None:
                self.progress(robot, update.job)
        assert final is not None
        if final.state != pb.JOB_STATE_SUCCEEDED:
            raise CollectionFailed(
                f"collector job ended {pb.JobState.Name(final.state)}:"
                f" {final.error or 'no reason given'}",
                robot=robot,
                job_id=job_id,
            )
        if len(results) != final.progress.episodes_total:
            raise CollectorCallFailed(
                f"job reported {final.progress.episodes_total} episodes, {len(results)} arrived",
                robot=robot,
                job_id=job_id,
            )
        return self._commit_robot(robot, final, results)

    def _commit_robot(
        self, robot: str, job: pb.Job, results: dict[str, pb.EpisodeResult]
    ) -> RobotSummary:
        episodes = [
            {
                "episode_id": r.episode_id,
                "prefix": episode_prefix("", r.episode_id),
                "task_id": r.task_id,
                "seed": r.seed,
                "success": r.success,
                "reason": r.reason,
                "collision_free": r.collision_count == 0,
                "collision_count": r.collision_count,
                "peak_collision_force_n": r.peak_collision_force_n,
                "n_frames": r.n_frames,
                "manifest_sha256": r.manifest_sha256,
                "bytes": sum(f.size for f in r.files),
            }
            for r in sorted(results.values(), key=lambda r: r.episode_id)
        ]
        manifest = {
            "format": "bp-robot-episodes",
            "format_version": 1,
            "scene_id": self.plan.scene_id,
            "robot": robot,
            "labels": dict(self.plan.labels),
            "job": {"job_id": job.job_id, "job_key": job.job_key,
                    "request_sha256": job.request_sha256},
            "collector": {
                "server_version": self.info.server_version,
                "api_version": self.info.api_version,
                "client_api_version": API_VERSION,
                "backend": pb.Backend.Name(self.info.backend),
            },
            "episode_format": {"name": self.info.episode_format,
                               "version": self.info.episode_format_version},
            "episodes": episodes,
            "counts": _counts(episodes),
        }
        key = self.robot_prefix(robot) + ROBOT_MANIFEST
        raw = _json(manifest)
        try:
            self.blobs.create_only(key, raw, content_type="application/json")
        except AlreadyExists:  # a concurrent delivery committed this robot first
            raw = self.blobs.read_bytes(key)
        return self._summary(robot, key, raw)

    def run(self, until: float) -> list[RobotSummary]:
        """Every robot's episodes, committed; robots already committed are not touched."""
        self.check_capabilities()
        done = {r: s for r in self.plan.robots if (s := self.committed(r)) is not None}
        # All jobs first, so the collector can run them side by side, then follow each.
        jobs = {r: self.start_or_attach(r) for r in self.plan.robots if r not in done}
        for robot, job in jobs.items():
            done[robot] = self.follow(robot, job.job_id, until)
        return [done[r] for r in self.plan.robots]

    def commit(self, summaries: list[RobotSummary]) -> bytes:
        """The collection manifest, create-only and last: the collection is complete."""
        key = self.prefix + COLLECTION_MANIFEST
        document = {
            "format": "bp-episodes-collected",
            "format_version": 1,
            "scene_id": self.plan.scene_id,
            "labels": dict(self.plan.labels),
            "robots": [
                {
                    "robot": s.robot,
                    "job_id": s.job_id,
                    "prefix": s.prefix,
                    "manifest": s.manifest,
                    "manifest_sha256": s.manifest_sha256,
                    **s.counts(),
                }
                for s in summaries
            ],
        }
        with contextlib.suppress(AlreadyExists):  # a concurrent delivery committed first
            self.blobs.create_only(key, _json(document), content_type="application/json")
        return self.blobs.read_bytes(key)
