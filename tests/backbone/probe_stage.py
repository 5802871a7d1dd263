"""A test stage for the backbone: reads the scene blob and behaves as its first line says.

`ok` commits a marker and emits scenes-exported; `permanent` raises InvalidInput; `transient`
raises TransientError; `down-while PATH` raises TransientError while PATH exists (a dependency
that is down); `slow-export PATH` waits for PATH before committing, and `slow-submit PATH`
makes the second probe stage wait for it (kill tests). FOLLOW, READY and PUBLISH stand in for
submit, import and upload, so a probe run can go all the way to `succeeded`."""

from __future__ import annotations

import contextlib
import hashlib
import time
from pathlib import Path

from bp_common.contracts.events import (
    DatasetsPublished,
    DatasetsReady,
    EpisodesCollected,
    ExportSummary,
    PublishedDataset,
    RobotDataset,
    RobotEpisodes,
    SceneExported,
    SceneUpload,
)
from bp_common.errors import AlreadyExists, InvalidInput, TransientError
from bp_common.runtime.stage import Stage, StageContext, StageOutput
from bp_common.runtime.uploads import scene_upload_ref


def handle(ctx: StageContext, upload: SceneUpload) -> StageOutput:
    body = ctx.blobs.read_bytes(upload.object.name).decode().strip()
    command, _, arg = body.partition(" ")
    if command == "permanent":
        raise InvalidInput("probe refuses this scene", scene_id=ctx.scene_id)
    if command == "transient" or (command == "down-while" and Path(arg).exists()):
        raise TransientError("probe's dependency is down", scene_id=ctx.scene_id)
    if command == "slow-export":
        while not Path(arg).exists():
            time.sleep(0.05)
    marker = f"{ctx.run_prefix}export/export_manifest.json"
    content = f'{{"scene": "{ctx.scene_id}", "attempt": {ctx.attempt}}}'.encode()
    try:
        ctx.blobs.create_only(marker, content)
    except AlreadyExists:
        content = ctx.blobs.read_bytes(marker)  # committed by an earlier delivery: reuse it
    event = SceneExported(
        scene_id=ctx.scene_id,
        run_id=ctx.run_id,
        bucket=upload.object.bucket,
        source_object=upload.object.name,
        source_generation=int(upload.object.generation),
        export_prefix=f"{ctx.run_prefix}export/",
        manifest=marker,
        manifest_sha256=hashlib.sha256(content).hexdigest(),
        summary=ExportSummary(objects=0, tasks=0, robots=[]),
    )
    return StageOutput(event, counts={"objects": 0})


PROBE = Stage(name="export", handle=handle, identify=scene_upload_ref)


def follow(ctx: StageContext, exported: SceneExported) -> StageOutput:
    """A second probe stage, so a trace can be followed across two hops."""
    command, _, arg = ctx.blobs.read_bytes(exported.source_object).decode().strip().partition(" ")
    if command == "slow-submit":
        while not Path(arg).exists():
            time.sleep(0.05)
    prefix = f"{ctx.run_prefix}episodes/"
    with contextlib.suppress(AlreadyExists):
        ctx.blobs.create_only(f"{prefix}COMMITTED", str(ctx.attempt).encode())
    robots = [
        RobotEpisodes(
            robot="probe",
            prefix=prefix,
            manifest=f"{prefix}m.json",
            episodes=0,
            succeeded=0,
            collision_free=0,
        )
    ]
    return StageOutput(
        EpisodesCollected(
            scene_id=ctx.scene_id,
            run_id=ctx.run_id,
            bucket=exported.bucket,
            episodes_prefix=prefix,
            robots=robots,
        )
    )


FOLLOW = Stage(name="submit", handle=follow)


def ready(ctx: StageContext, collected: EpisodesCollected) -> StageOutput:
    """An import stand-in: one dataset per robot the episodes name, nothing written."""
    datasets = [
        RobotDataset(
            robot=r.robot,
            prefix=f"{ctx.run_prefix}lerobot/{r.robot}/",
            manifest=f"{ctx.run_prefix}lerobot/{r.robot}/import_manifest.json",
            codebase_version="v3.0",
            episodes=0,
            frames=0,
            quality_pass_rate=1.0,
        )
        for r in collected.robots
    ]
    event = DatasetsReady(
        scene_id=ctx.scene_id, run_id=ctx.run_id, bucket=collected.bucket, datasets=datasets
    )
    return StageOutput(event)


READY = Stage(name="import", handle=ready)


def publish(ctx: StageContext, ready: DatasetsReady) -> StageOutput:
    """An upload stand-in: every dataset 'published' where it lies."""
    published = [
        PublishedDataset(
            robot=d.robot,
            storage_bucket="local",
            prefix=d.prefix,
            manifest=d.manifest,
            uploaded=0,
            skipped=0,
            verified=0,
            bytes=0,
            duration_s=0.0,
        )
        for d in ready.datasets
    ]
    event = DatasetsPublished(
        scene_id=ctx.scene_id, run_id=ctx.run_id, bucket=ready.bucket, published=published
    )
    return StageOutput(event)


PUBLISH = Stage(name="upload", handle=publish)
