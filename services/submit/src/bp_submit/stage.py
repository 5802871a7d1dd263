"""The submit stage: `scenes-exported` in, every robot's episodes stored, `episodes-collected` out.

Submit is a pull stage. One delivery reads the export, shakes hands with the collector, starts
(or re-attaches to) one job per robot, and follows them for at most the follow budget, copying
and verifying episodes as they are recorded. If the jobs outlast the budget the delivery ends
with a transient CollectionInProgress: the message comes back and re-attaches to the same jobs.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from bp_collector_api import collector_pb2 as pb
from bp_common.contracts.events import EpisodesCollected, RobotEpisodes, SceneExported
from bp_common.errors import InvalidInput
from bp_common.ledger import StageState
from bp_common.runtime.attempts import CommitMismatch, read_committed
from bp_common.runtime.limits import Footprint
from bp_common.runtime.stage import Stage, StageContext, StageOutput, StageStop

from bp_submit.caps import ConcurrentRuns, check_run_size
from bp_submit.collection import (
    COLLECTION_MANIFEST,
    Collection,
    CollectionPlan,
    Progress,
    RobotSummary,
    assigned_tasks,
)
from bp_submit.config import LookAtPlacement, OrbitPlacement, SubmitConfig
from bp_submit.connection import collector_client

# After its follow budget a delivery still commits what arrived and hands the message back.
FOLLOW_MARGIN_S = 60.0


class ExportMismatch(InvalidInput):
    """The export named by the event is missing or differs from its manifest."""


def _read_export(ctx: StageContext, event: SceneExported) -> tuple[bytes, bytes]:
    """scene_graph.json and task_config.json, as the committed export manifest names them."""
    try:
        committed = read_committed(ctx.blobs, event.manifest)
        if committed is None:
            raise ExportMismatch("export manifest is missing", key=event.manifest)
        if committed.sha256 != event.manifest_sha256:
            raise ExportMismatch(
                "export manifest differs from the event's sha256", key=event.manifest
            )
        if committed.root != event.export_prefix:
            raise ExportMismatch(
                "the event's export prefix is not the committed attempt's",
                prefix=event.export_prefix,
                committed=committed.root,
            )
        return committed.read("scene_graph.json"), committed.read("task_config.json")
    except CommitMismatch as exc:
        raise ExportMismatch(exc.message, **exc.context) from exc


def run_seed(run_id: str) -> int:
    """Each run draws its own randomisation, the same on every redelivery."""
    return int(hashlib.sha256(run_id.encode()).hexdigest()[:7], 16)


def camera_spec(config: SubmitConfig) -> pb.CameraSpec:
    """What the run asks of the cameras: which, image size, rate, lens and placements."""
    return pb.CameraSpec(
        cameras=config.camera_list,
        width=config.episode_width,
        height=config.episode_height,
        fps=config.episode_fps,
        fovy_deg=config.episode_fov_deg,
        placements=[
            _placement(camera, placement)
            for camera, placement in sorted(config.episode_camera_placement.items())
        ],
    )


def _placement(camera: str, placement: OrbitPlacement | LookAtPlacement) -> pb.CameraPlacement:
    if isinstance(placement, OrbitPlacement):
        orbit = pb.Orbit(
            distance_m=placement.distance_m,
            elevation_deg=placement.elevation_deg,
            azimuth_deg=placement.azimuth_deg,
        )
        return pb.CameraPlacement(camera=camera, orbit=orbit)
    (px, py, pz), (tx, ty, tz) = placement.position, placement.look_at
    look_at = pb.LookAt(position=pb.Vec3(x=px, y=py, z=pz), target=pb.Vec3(x=tx, y=ty, z=tz))
    return pb.CameraPlacement(camera=camera, look_at=look_at)


def _collector_dir(ctx: StageContext) -> Path:
    """Where a collector started beside submit keeps its jobs: in this process's own folder."""
    return ctx.ports.workdir / "collector"


def _output(event: SceneExported, prefix: str, manifest: bytes) -> StageOutput:
    document = json.loads(manifest)
    robots = [
        RobotEpisodes(
            robot=r["robot"],
            prefix=r["prefix"],
            manifest=r["manifest"],
            episodes=r["episodes"],
            succeeded=r["succeeded"],
            collision_free=r["collision_free"],
        )
        for r in document["robots"]
    ]
    counts: dict[str, float] = {}
    for r in document["robots"]:
        for name in (
            "episodes",
            "succeeded",
            "collision_free",
            "success_rate",
            "collision_free_rate",
        ):
            counts[f"{r['robot']}.{name}"] = r[name]
    summaries = [
        RobotSummary(
            r["robot"],
            r["job_id"],
            r["prefix"],
            r["manifest"],
            r["manifest_sha256"],
            r["episodes"],
            r["succeeded"],
            r["collision_free"],
        )
        for r in document["robots"]
    ]
    total = sum(s.episodes for s in summaries)
    ok = sum(s.succeeded for s in summaries)
    clean = sum(s.collision_free for s in summaries)
    counts.update(
        episodes=total,
        succeeded=ok,
        collision_free=clean,
        success_rate=round(ok / total, 4) if total else 0.0,
        collision_free_rate=round(clean / total, 4) if total else 0.0,
    )
    note = "jobs: " + ", ".join(f"{s.robot}={s.job_id}" for s in summaries)
    return StageOutput(
        EpisodesCollected(
            scene_id=event.scene_id,
            run_id=event.run_id,
            bucket=event.bucket,
            episodes_prefix=prefix,
            robots=robots,
        ),
        counts=counts,
        note=note,
    )


def _progress_log(ctx: StageContext) -> Progress:
    """One log line per recorded episode, per robot."""
    seen: dict[str, int] = {}

    def report(robot: str, job: pb.Job) -> None:
        p = job.progress
        if seen.get(robot) != p.episodes_recorded:
            seen[robot] = p.episodes_recorded
            ctx.log.info(
                "%s: %d/%d episodes recorded, %d succeeded (job %s)",
                robot,
                p.episodes_recorded,
                p.episodes_total,
                p.episodes_succeeded,
                job.job_id,
            )

    return report


def make_submit_stage(config: SubmitConfig | None = None) -> Stage[SceneExported]:
    """The stage; `config` defaults to the BP_* environment, read at each delivery."""

    def handle(ctx: StageContext, event: SceneExported) -> StageOutput | StageStop:
        cfg = config or SubmitConfig()
        prefix = f"{ctx.run_prefix}episodes/"
        commit = prefix + COLLECTION_MANIFEST
        if ctx.blobs.exists(commit):
            return _output(event, prefix, ctx.blobs.read_bytes(commit))
        if event.summary.tasks == 0:
            return StageStop(StageState.SKIPPED, "nothing to collect: the export kept no task")
        scene_graph, task_config = _read_export(ctx, event)
        robots, left_out = assigned_tasks(json.loads(task_config))
        if not robots:
            return StageStop(StageState.SKIPPED, "nothing to collect: no robot has a task")
        if left_out:
            ctx.log.info("robots without tasks or base pose, not collected: %s", left_out)
        per_task = cfg.episodes_for(ctx.settings.is_local)
        planned = check_run_size(cfg, robots, per_task)
        ctx.log.info("planned %d episodes over %d robots", planned, len(robots))
        started = time.monotonic()
        client = collector_client(ctx.settings, cfg, ctx.ports.secrets, _collector_dir(ctx))
        info = client.handshake()
        plan = CollectionPlan(
            scene_id=event.scene_id,
            key_prefix=event.run_id,
            robots=robots,
            scene_graph_json=scene_graph,
            task_config_json=task_config,
            episodes_per_task=per_task,
            seed=run_seed(event.run_id),
            camera=camera_spec(cfg),
            max_episode_seconds=cfg.episode_seconds,
            labels={"scene_id": event.scene_id, "run_id": event.run_id, "stage": "submit"},
        )
        collection = Collection(client, info, ctx.blobs, prefix, plan, _progress_log(ctx))
        summaries = collection.run(until=started + cfg.follow_budget_s)
        return _output(event, prefix, collection.commit(summaries))

    # Submit waits on the collector: a delivery keeps a thread and little memory busy, and
    # holds its lease while it follows the jobs, for at most the follow budget.
    return Stage(
        name="submit",
        handle=handle,
        footprint=Footprint(cpus=0.25, memory_mb=256),
        deadline_s=lambda settings: (config or SubmitConfig()).follow_budget_s + FOLLOW_MARGIN_S,
        admission=ConcurrentRuns(config, follow_margin_s=FOLLOW_MARGIN_S),
    )


SUBMIT = make_submit_stage()
