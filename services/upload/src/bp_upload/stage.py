"""The upload stage: `datasets-ready` in, verified Firebase datasets, `datasets-published` out.

Only the publishable robots the event lists are published; the robots import held back (their
own gates failed) are named again in `datasets-published`, so that whoever consumes it knows
the run's datasets are partial and why.
"""

from __future__ import annotations

from bp_common.contracts.events import (
    DatasetsPublished,
    DatasetsReady,
    PublishedDataset,
    RobotDataset,
)
from bp_common.errors import PipelineError
from bp_common.runtime.limits import Footprint
from bp_common.runtime.stage import Stage, StageContext, StageOutput

from bp_upload.errors import (
    ChecksumMismatch,
    DatasetRejected,
    DatasetUploadFailed,
    SourceCorrupt,
    VerificationFailed,
)
from bp_upload.publication.layout import DatasetLocation
from bp_upload.publication.manifest import QualitySummary
from bp_upload.publication.publisher import (
    DatasetPublisher,
    DatasetSource,
    Publication,
    PublishRequest,
)
from bp_upload.publication.result import UploadResult, combine
from bp_upload.wiring import UploadAdapters, stage_adapters

VERIFICATION_ERRORS = frozenset(
    e.__name__ for e in (ChecksumMismatch, VerificationFailed, SourceCorrupt)
)


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


def _measure(ctx: StageContext[UploadAdapters], robot: str, result: UploadResult) -> None:
    """One dataset's transfer on the pipeline's metrics (bp_common.metrics)."""
    ctx.metrics.upload_bytes.add(result.bytes, robot=robot)
    if result.bytes and result.duration_s > 0:
        ctx.metrics.upload_throughput.record(result.bytes / result.duration_s, robot=robot)
    ctx.metrics.upload_verification_failures.add(verification_failures(result), robot=robot)


def _measure_failure(ctx: StageContext[UploadAdapters], robot: str, error: PipelineError) -> None:
    """A failed dataset still sent what it sent, and may have failed verification."""
    if not isinstance(error, DatasetUploadFailed | DatasetRejected):
        return
    if isinstance(error.result, UploadResult):
        _measure(ctx, robot, error.result)
        if verification_failures(error.result) == 0 and isinstance(error.cause, VerificationFailed):
            ctx.metrics.upload_verification_failures.add(1, robot=robot)


def verification_failures(result: UploadResult) -> int:
    """Files that did not verify: failed for good on a checksum, or found altered by the audit."""
    failed = sum(1 for f in result.failures if f.error_type in VERIFICATION_ERRORS)
    return failed + result.repaired


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
            _measure_failure(ctx, dataset.robot, exc)
            continue
        ctx.log.info("published %s: %s", publication.manifest_uri, publication.result.summary())
        publications.append(publication)
        _measure(ctx, dataset.robot, publication.result)
    if errors:
        raise next((e for e in errors if e.permanent), errors[0])
    event = DatasetsPublished(
        scene_id=ctx.scene_id,
        run_id=ctx.run_id,
        bucket=ready.bucket,
        published=[published(p) for p in publications],
        held_back=ready.held_back,
    )
    note = "; ".join(f"{p.manifest_uri} ({p.result.summary()})" for p in publications)
    if ready.held_back:
        note += "; held back " + ", ".join(h.robot for h in ready.held_back)
    return StageOutput(event, counts=combine([p.result for p in publications]), note=note)


# Transfers wait on the network, on a few threads and a chunk of memory each.
UPLOAD = Stage(
    name="upload",
    handle=handle,
    adapters=stage_adapters,
    footprint=Footprint(cpus=0.5, memory_mb=512),
)
