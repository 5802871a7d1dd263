"""The upload stage: `datasets-ready` in, verified Firebase datasets, `datasets-published` out."""

from __future__ import annotations

from bp_common.contracts.events import (
    DatasetsPublished,
    DatasetsReady,
    PublishedDataset,
    RobotDataset,
)
from bp_common.errors import PipelineError
from bp_common.runtime.stage import Stage, StageContext, StageOutput

from bp_upload.publication.layout import DatasetLocation
from bp_upload.publication.manifest import QualitySummary
from bp_upload.publication.publisher import (
    DatasetPublisher,
    DatasetSource,
    Publication,
    PublishRequest,
)
from bp_upload.publication.result import combine
from bp_upload.wiring import UploadAdapters, stage_adapters


def request_for(
    ctx: StageContext[UploadAdapters], dataset: RobotDataset, *, final: bool
) -> PublishRequest:
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


def handle(ctx: StageContext[UploadAdapters], ready: DatasetsReady) -> StageOutput:
    adapters = ctx.adapters
    publisher = DatasetPublisher(
        adapters.destination, adapters.options, catalogue=adapters.catalogue
    )
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


UPLOAD = Stage(name="upload", handle=handle, adapters=stage_adapters)
