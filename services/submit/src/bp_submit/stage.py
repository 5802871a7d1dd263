"""The submit stage: `scenes-exported` in, the run planned in shards, `collection-shards` out.

Submit reads the export, applies the cost controls (bp_submit.caps), cuts the run into shards
(bp_submit.shards), records the plan in the ledger's shard book and publishes one
`collection-shards` message per shard in the same commit. It does not wait on collection:
collector workers (`bp worker collect`) take the shards, and the one that completes the run's
last shard emits `episodes-collected` (bp_collector.shards).
"""

from __future__ import annotations

import hashlib
import json

from bp_common.contracts.events import (
    CameraSettings,
    CollectionShard,
    Event,
    SceneExported,
)
from bp_common.ledger import StageState
from bp_common.runtime.exports import read_export
from bp_common.runtime.limits import Footprint
from bp_common.runtime.stage import Stage, StageContext, StageOutput, StageStop

from bp_submit.caps import ConcurrentRuns, check_run_size, check_shard_count
from bp_submit.collection import assigned_tasks
from bp_submit.config import SubmitConfig
from bp_submit.shards import plan_shards


def run_seed(run_id: str) -> int:
    """Each run draws its own randomisation, the same on every redelivery."""
    return int(hashlib.sha256(run_id.encode()).hexdigest()[:7], 16)


def camera_settings(config: SubmitConfig) -> CameraSettings:
    """What the run asks of the cameras: which, image size, rate, lens and placements."""
    return CameraSettings(
        cameras=config.camera_list,
        width=config.episode_width,
        height=config.episode_height,
        fps=config.episode_fps,
        fovy_deg=config.episode_fov_deg,
        placements=dict(config.episode_camera_placement),
    )


def make_submit_stage(config: SubmitConfig | None = None) -> Stage[SceneExported]:
    """The stage; `config` defaults to the BP_* environment, read at each delivery."""

    def handle(ctx: StageContext, event: SceneExported) -> StageOutput | StageStop:
        cfg = config or SubmitConfig()
        if event.summary.tasks == 0:
            return StageStop(StageState.SKIPPED, "nothing to collect: the export kept no task")
        _, task_config = read_export(
            ctx.blobs, event.manifest, event.manifest_sha256, event.export_prefix
        )
        robots, left_out = assigned_tasks(json.loads(task_config))
        if not robots:
            return StageStop(StageState.SKIPPED, "nothing to collect: no robot has a task")
        if left_out:
            ctx.log.info("robots without tasks or base pose, not collected: %s", left_out)
        per_task = cfg.episodes_for(ctx.settings.is_local)
        planned = check_run_size(cfg, robots, per_task)
        shards = plan_shards(robots, per_task, cfg.episodes_per_shard)
        check_shard_count(cfg, len(shards))
        ctx.ports.ledger.shards.plan(
            ctx.run_id, ctx.scene_id, {s.shard_id: s.episodes for s in shards}
        )
        seed, camera = run_seed(event.run_id), camera_settings(cfg)
        events: list[Event] = [
            CollectionShard(
                scene_id=event.scene_id,
                run_id=event.run_id,
                bucket=event.bucket,
                shard_id=s.shard_id,
                export_manifest=event.manifest,
                export_manifest_sha256=event.manifest_sha256,
                robot=s.robot,
                task_id=s.task_id,
                first_episode=s.first_episode,
                episodes=s.episodes,
                run_seed=seed,
                backend=cfg.collector_backend,
                camera=camera,
                max_episode_seconds=cfg.episode_seconds,
            )
            for s in shards
        ]
        note = f"{planned} episodes over {len(robots)} robots in {len(shards)} shards"
        ctx.log.info("planned %s", note)
        counts: dict[str, float] = {
            "episodes": planned,
            "shards": len(shards),
            "robots": len(robots),
        }
        return StageOutput.of_all(events, counts=counts, note=note)

    # Submit only reads the export and plans: a delivery is short and small.
    return Stage(
        name="submit",
        handle=handle,
        footprint=Footprint(cpus=0.25, memory_mb=256),
        admission=ConcurrentRuns(config),
    )


SUBMIT = make_submit_stage()
