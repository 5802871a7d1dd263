"""The upload stage: `datasets-ready` in, verified Firebase datasets, `datasets-published` out."""

from __future__ import annotations

from pathlib import Path

from bp_common.blobstore.local import LocalBlobStore
from bp_common.config import Settings
from bp_common.contracts.events import (
    DatasetsPublished,
    DatasetsReady,
    PublishedDataset,
    RobotDataset,
)
from bp_common.errors import PipelineError
from bp_common.runtime.stage import Stage, StageContext, StageOutput
from bp_common.wiring import LOCAL_PUBLISHED_DIR

from bp_upload.catalogue import DatasetCatalogue
from bp_upload.destination import Destination
from bp_upload.layout import DatasetLocation
from bp_upload.options import UploadOptions, UploadSettings
from bp_upload.publication import DatasetPublisher, DatasetSource, Publication, PublishRequest
from bp_upload.publication_manifest import QualitySummary
from bp_upload.result import combine
from bp_upload.wiring import catalogue_for, destination_for

# A push request must be answered before the subscription's ack deadline, or Pub/Sub redelivers
# while this delivery still runs; what is verified by then is skipped by the next attempt.
_PUSH_MARGIN_S = 15.0
_MIN_DEADLINE_S = 10.0
_UNBOUNDED_DEADLINE_S = 3600.0


def stage_deadline(settings: Settings) -> float:
    if settings.serves_push:
        return max(_MIN_DEADLINE_S, settings.ack_deadline_s - _PUSH_MARGIN_S)
    return _UNBOUNDED_DEADLINE_S


def _embedded_root(ctx: StageContext) -> Path | None:
    """The embedded default keeps its bucket in {root}/bucket; datasets go to {root}/firebase."""
    if ctx.settings.uses_cloud or not isinstance(ctx.blobs, LocalBlobStore):
        return None
    return ctx.blobs.root.parent


def adapters(ctx: StageContext, options: UploadOptions) -> tuple[Destination, DatasetCatalogue]:
    root = _embedded_root(ctx)
    destination = destination_for(
        ctx.settings,
        ctx.ports.secrets,
        options,
        local_root=None if root is None else root / LOCAL_PUBLISHED_DIR,
    )
    catalogue_root = root or ctx.settings.data_dir
    catalogue = catalogue_for(ctx.settings, local_path=catalogue_root / "catalogue.sqlite")
    return destination, catalogue


def request_for(ctx: StageContext, dataset: RobotDataset, *, final: bool) -> PublishRequest:
    prefix = dataset.prefix if dataset.prefix.endswith("/") else dataset.prefix + "/"
    return PublishRequest(
        location=DatasetLocation(ctx.scene_id, dataset.robot, ctx.run_id),
        source=DatasetSource(ctx.blobs, prefix, dataset.manifest),
        quality=QualitySummary(
            codebase_version=dataset.codebase_version,
            episodes=dataset.episodes,
            frames=dataset.frames,
            quality_pass_rate=dataset.quality_pass_rate,
        ),
        final=final,
    )


def published(p: Publication) -> PublishedDataset:
    r = p.result
    return PublishedDataset(
        robot=p.location.robot,
        storage_bucket=p.storage_bucket,
        prefix=p.location.prefix,
        manifest=p.manifest_key,
        uploaded=r.uploaded,
        skipped=r.skipped,
        verified=r.verified,
        bytes=r.bytes,
        duration_s=round(r.duration_s, 3),
    )


def handle(ctx: StageContext, ready: DatasetsReady) -> StageOutput:
    options = UploadSettings().options(deadline_s=stage_deadline(ctx.settings))
    destination, catalogue = adapters(ctx, options)
    publisher = DatasetPublisher(destination, options, catalogue=catalogue)
    deadline = publisher.deadline()  # one budget for every robot of the delivery
    final = ctx.attempt >= ctx.settings.max_delivery_attempts
    publications: list[Publication] = []
    errors: list[PipelineError] = []
    for dataset in ready.datasets:
        request = request_for(ctx, dataset, final=final)
        try:
            publication = publisher.publish(request, deadline=deadline)
        except PipelineError as exc:
            ctx.log.error("dataset %s not published: %s", request.location.prefix, exc)
            errors.append(exc)
            continue
        ctx.log.info("published %s: %s", publication.manifest_uri, publication.result.summary())
        publications.append(publication)
    if errors:
        raise next((e for e in errors if e.permanent), errors[0])
    event = DatasetsPublished(
        scene_id=ctx.scene_id,
        run_id=ctx.run_id,
        bucket=ready.bucket,
        published=[published(p) for p in publications],
    )
    note = "; ".join(f"{p.manifest_uri} ({p.result.summary()})" for p in publications)
    return StageOutput(event, counts=combine([p.result for p in publications]), note=note)


UPLOAD = Stage(name="upload", handle=handle)
