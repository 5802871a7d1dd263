"""`bp upload DATASET_DIR`: verify and publish one LeRobot dataset folder, without the bus."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import typer
from bp_common.blobstore.local import LocalBlobStore
from bp_common.config import Settings
from bp_common.errors import PipelineError, UnsafeConfiguration
from bp_common.wiring import cloud_secrets

from bp_upload.destinations.credentials import EMULATOR_VARIABLE
from bp_upload.errors import DatasetRejected, DatasetUploadFailed
from bp_upload.options import UploadSettings
from bp_upload.publication.import_manifest import IMPORT_MANIFEST_NAME
from bp_upload.publication.layout import DatasetLocation
from bp_upload.publication.manifest import QualitySummary
from bp_upload.publication.publisher import DatasetPublisher, DatasetSource, PublishRequest
from bp_upload.publication.transfer import FileOutcome
from bp_upload.wiring import catalogue_for, destination_for


def infer_location(dataset_dir: Path) -> dict[str, str]:
    """Scene, run and robot from `.../runs/{scene_id}/{run_id}/lerobot/{robot}` paths."""
    parts = dataset_dir.resolve().parts
    if len(parts) >= 5 and parts[-2] == "lerobot" and parts[-5] == "runs":
        return {"scene_id": parts[-4], "run_id": parts[-3], "robot": parts[-1]}
    return {"robot": dataset_dir.resolve().name}


def quality_of(dataset_dir: Path, manifest: dict[str, Any]) -> QualitySummary:
    """From the import manifest (`codebase_version`, `counts`, `quality.pass_rate`), else from
    LeRobot's meta/info.json."""
    info_path = dataset_dir / "meta" / "info.json"
    info: dict[str, Any] = json.loads(info_path.read_text()) if info_path.is_file() else {}
    found_counts, found_quality = manifest.get("counts"), manifest.get("quality")
    counts: dict[str, Any] = found_counts if isinstance(found_counts, dict) else {}
    quality: dict[str, Any] = found_quality if isinstance(found_quality, dict) else {}
    rate = quality.get("pass_rate")
    return QualitySummary(
        codebase_version=str(manifest.get("codebase_version", info.get("codebase_version", "?"))),
        episodes=int(counts.get("dataset_episodes", info.get("total_episodes", 0))),
        frames=int(counts.get("frames", info.get("total_frames", 0))),
        quality_pass_rate=float(rate) if isinstance(rate, int | float) else None,
    )


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(code)


def upload(
    dataset_dir: Path = typer.Argument(
        ..., help="A LeRobot dataset folder with its import_manifest.json."
    ),
    scene_id: str | None = typer.Option(None, help="Scene id (default: from runs/{scene}/...)."),
    robot: str | None = typer.Option(None, help="Robot (default: the folder's name)."),
    run_id: str | None = typer.Option(
        None, help="Run id (default: from the path, else derived from the import manifest)."
    ),
    concurrency: int | None = typer.Option(None, min=1, help="Parallel transfers (default 8)."),
    read_back: bool = typer.Option(False, help="Also download every object again and re-hash it."),
    deadline: float | None = typer.Option(None, min=1, help="Give up after this many seconds."),
    to_folder: Path | None = typer.Option(
        None, help="Publish into this folder instead of the Firebase bucket."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="One line per file."),
) -> None:
    """Upload one dataset folder to Firebase Storage, verified, and publish it (manifest, LATEST).

    Uses the Firebase bucket (BP_FIREBASE_BUCKET) with the `firebase-service-account` secret, or
    the emulator named by STORAGE_EMULATOR_HOST; outside the cloud and without an emulator it
    publishes into BP_DATA_DIR/firebase. Re-running resumes: verified objects are skipped.
    """
    try:
        settings = Settings().ensure_safe()
    except UnsafeConfiguration as exc:
        raise _fail(str(exc), 2) from exc
    manifest_path = dataset_dir / IMPORT_MANIFEST_NAME
    if not manifest_path.is_file():
        raise _fail(f"no {IMPORT_MANIFEST_NAME} in {dataset_dir}", 2)
    manifest_bytes = manifest_path.read_bytes()
    try:
        manifest = json.loads(manifest_bytes)
    except json.JSONDecodeError as exc:
        raise _fail(f"{manifest_path} is not JSON: {exc}", 2) from exc
    inferred = infer_location(dataset_dir)
    scene_id = scene_id or inferred.get("scene_id")
    if scene_id is None:
        raise _fail("pass --scene-id (the folder is not under runs/{scene_id}/{run_id}/)", 2)
    run_id = run_id or inferred.get("run_id")
    run_id = run_id or "run-" + hashlib.sha256(manifest_bytes).hexdigest()[:20]
    try:
        location = DatasetLocation(scene_id, robot or inferred["robot"], run_id)
    except PipelineError as exc:
        raise _fail(f"error: {exc}", 2) from exc

    options = UploadSettings().options(deadline_s=3600.0)
    if concurrency is not None or read_back or deadline is not None:
        from dataclasses import replace

        options = replace(
            options,
            concurrency=concurrency or options.concurrency,
            read_back=read_back or options.read_back,
            deadline_s=deadline or options.deadline_s,
        )
    use_firebase = to_folder is None and (settings.uses_cloud or EMULATOR_VARIABLE in os.environ)
    local_root = None if use_firebase else (to_folder or settings.data_dir / "firebase")
    try:
        destination = destination_for(
            settings, cloud_secrets(settings), options, local_root=local_root
        )
        catalogue = catalogue_for(settings, local_path=settings.data_dir / "catalogue.sqlite")
    except PipelineError as exc:
        raise _fail(f"error: {exc}", 2) from exc

    def progress(outcome: FileOutcome) -> None:
        if verbose:
            typer.echo(f"  {outcome.action:<8} {outcome.path} ({outcome.digests.size} bytes)")

    publisher = DatasetPublisher(destination, options, catalogue=catalogue, progress=progress)
    request = PublishRequest(
        location=location,
        source=DatasetSource(LocalBlobStore(dataset_dir), "", IMPORT_MANIFEST_NAME),
        quality=quality_of(dataset_dir, manifest if isinstance(manifest, dict) else {}),
    )
    typer.echo(f"uploading {dataset_dir} to {destination.uri(location.prefix)}")
    try:
        publication = publisher.publish(request)
    except (DatasetUploadFailed, DatasetRejected) as exc:
        typer.secho(f"failed: {exc}", fg="red", err=True)
        typer.echo(f"so far: {exc.result.summary()}", err=True)
        if not exc.permanent:
            typer.echo("re-run the same command to resume (verified objects are skipped)", err=True)
        raise typer.Exit(2 if exc.permanent else 1) from exc
    except PipelineError as exc:
        raise _fail(f"failed: {exc}", 2 if exc.permanent else 1) from exc
    typer.echo(publication.result.summary())
    typer.echo(f"manifest: {publication.manifest_uri}")
    typer.echo(f"LATEST:   {destination.uri(location.latest_key)} -> {publication.latest.run_id}")
