"""The export stage: a scene upload in, committed export outputs and `scenes-exported` out."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from bp_common import __version__
from bp_common.blobstore import BlobInfo
from bp_common.contracts.events import ExportSummary, SceneExported, SceneUpload
from bp_common.ledger import StageState
from bp_common.runtime.attempts import AttemptWriter, Committed, read_committed
from bp_common.runtime.limits import Footprint
from bp_common.runtime.stage import Stage, StageContext, StageOutput, StageStop
from bp_common.runtime.uploads import (
    MixedSceneDrop,
    claimed_run,
    dropped_companions,
    file_digest,
    resolve_scene_upload,
    scene_upload_ref,
)

from bp_export.export import MANIFEST_NAME, export_manifest, export_scene
from bp_export.intake import ExportSettings, check_bucket, check_object
from bp_export.scene_errors import SceneTooLarge


def scene_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _event(ctx: StageContext, upload: SceneUpload, committed: Committed) -> StageOutput:
    """`scenes-exported` pointing at the committed attempt and its manifest."""
    summary = committed.document["summary"]
    event = SceneExported(
        scene_id=ctx.scene_id,
        run_id=ctx.run_id,
        bucket=upload.object.bucket,
        source_object=upload.object.name,
        source_generation=int(upload.object.generation),
        export_prefix=committed.root,
        manifest=committed.manifest_key,
        manifest_sha256=committed.sha256,
        summary=ExportSummary(**summary),
    )
    note = None if summary["tasks"] else "no task this scene affords: nothing to collect"
    return StageOutput(
        event, counts={"objects": summary["objects"], "tasks": summary["tasks"]}, note=note
    )


def _download(ctx: StageContext, scene: BlobInfo, folder: Path) -> Path:
    """The scene, its manifest and its assets, as files usd-core can open and resolve.

    Only the companions that belong to this scene generation (bp_common.runtime.uploads,
    decision 0076), and each download is checked against the checksum they were listed with:
    a manifest or asset replaced meanwhile is a MixedSceneDrop, never a mixed export.
    """
    scene_dir = f"scenes/{ctx.scene_id}/"
    drop = [(scene, ctx.blobs.digest(scene)), *dropped_companions(ctx.blobs, ctx.scene_id, scene)]
    for info, digest in drop:
        target = folder / info.key[len(scene_dir) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        with ctx.blobs.open_read(info.key) as reader, target.open("wb") as writer:
            for chunk in iter(lambda: reader.read(1 << 20), b""):
                writer.write(chunk)
        if file_digest(info, target) != digest:
            raise MixedSceneDrop(
                "an object of the drop changed while it was read: drop the scene again",
                scene_id=ctx.scene_id,
                object=info.key,
            )
    return folder / scene.key.rsplit("/", 1)[-1]


def handle(ctx: StageContext, upload: SceneUpload) -> StageOutput | StageStop:
    unit = f"{ctx.run_prefix}export/"
    committed = read_committed(ctx.blobs, unit + MANIFEST_NAME)
    if committed is not None:
        return _event(ctx, upload, committed)
    check_bucket(upload, ctx.blobs.uri(), ctx.scene_id)
    current = ctx.blobs.stat(upload.object.name)
    if current is not None:
        check_object(upload, current, ctx.scene_id)
    if current is None or (
        str(current.generation) != upload.object.generation
        # a newer generation with this run's content (an identical re-drop) is this run's scene
        and claimed_run(ctx.ports.ledger, ctx.blobs, ctx.scene_id, current) != ctx.run_id
    ):
        return StageStop(StageState.SKIPPED, "superseded: the scene object has a newer generation")
    limits = ExportSettings()
    if current.size > limits.max_scene_bytes:
        raise SceneTooLarge(
            f"scene is {current.size} bytes, over {limits.max_scene_bytes}",
            scene_id=ctx.scene_id,
            size=current.size,
            max_bytes=limits.max_scene_bytes,
        )
    with tempfile.TemporaryDirectory(prefix="bp-export-") as tmp:
        scene_path = _download(ctx, current, Path(tmp))
        result = export_scene(
            scene_path,
            ctx.scene_id,
            environment=ctx.settings.env.value,
            require_embeddings=ctx.settings.embeddings_required,
            robots=ctx.settings.robot_list,
            max_bytes=limits.max_scene_bytes,
            max_objects=limits.max_scene_objects,
        )
    manifest = export_manifest(
        result,
        pipeline_version=__version__,
        source={
            "bucket": upload.object.bucket,
            "object": upload.object.name,
            "generation": upload.object.generation,
        },
    )
    # This attempt's files go under its own prefix; the manifest commits exactly them, or a
    # concurrent delivery's commit wins and this attempt's files are removed.
    with AttemptWriter(ctx.blobs, unit, ctx.attempt_id, MANIFEST_NAME, ctx.lease_check) as attempt:
        for name, data in result.files.items():
            attempt.write(name, data, content_type="application/json")
        committed = attempt.commit(json.loads(manifest))
    return _event(ctx, upload, committed)


EXPORT = Stage(
    name="export",
    handle=handle,
    identify=scene_upload_ref,
    resolve=lambda ports, settings, upload, ref: resolve_scene_upload(ports, upload, ref),
    # usd-core and the embedding model in numpy, one scene at a time per core
    footprint=Footprint(cpus=1.0, memory_mb=1024),
)
