"""`bp drop SCENE_PATH`: upload a scene into the stack's bucket; its finalize starts a run."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from bp_common.errors import PipelineError
from google.api_core.exceptions import GoogleAPIError
from requests.exceptions import RequestException

from bp_ops.cli.context import settings as load_settings


def drop(
    scene_path: Path = typer.Argument(
        ..., help="scene.usda/.usd/.usdc/.usdz, or its folder (with scene_manifest.json, assets/)."
    ),
    scene_id: str | None = typer.Option(
        None, "--scene-id", help="Scene id (default: the folder's name, lowercased)."
    ),
    new_run: bool = typer.Option(
        False,
        "--new-run",
        help="Start a new run even when the bucket holds this content already (metadata"
        " bp-new-run on the scene object).",
    ),
) -> None:
    """Upload a scene to gs://$BP_BUCKET/scenes/ID/: manifest and assets first, the scene last.

    Identical content (scene, manifest and assets) maps to the run it already has: nothing is
    uploaded, or the pipeline maps the upload onto that run. `--new-run` asks for a new run.
    """
    from bp_common import wiring
    from bp_common.blobstore.gcs import GcsBlobStore, make_storage_client
    from bp_common.runtime.uploads import claimed_run

    from bp_ops.scene_drop import plan_drop, upload_drop

    settings = load_settings()
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if settings.is_local and not emulator:
        typer.secho(
            "no local stack: STORAGE_EMULATOR_HOST is not set. Start one with `bp up`, then"
            " `source bp-out/stack/stack.env`; `bp run SCENE_PATH` runs the embedded default",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    try:
        plan = plan_drop(scene_path, scene_id)
        client = make_storage_client(settings.project_id)
        result = upload_drop(client, settings.bucket, plan, new_run=new_run)
        run_id, why = result.run_id, "a new run" if result.uploaded else "already dropped"
        blobs = GcsBlobStore(client, settings.bucket)
        scene = blobs.stat(result.key)
        # Where the pipeline's services keep their ledger (the stack and the cloud: Firestore),
        # the content's run is known: an upload of identical content maps onto it.
        known = settings.ledger_backend == "firestore" and not new_run and scene is not None
        owner = (
            claimed_run(wiring.cloud(settings).ports.ledger, blobs, plan.scene_id, scene)
            if known and scene is not None
            else None
        )
        if owner is not None and owner != run_id:
            run_id, why = owner, "identical content: no new run"
    except PipelineError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2 if exc.permanent else 1) from exc
    except (GoogleAPIError, RequestException) as exc:
        typer.secho(f"upload to gs://{settings.bucket} failed: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    where = f" (emulator {emulator})" if emulator else ""
    beside = len([k for k in result.uploaded if k != result.key])
    typer.echo(
        f"scene {plan.scene_id}: {beside} file(s) uploaded beside the scene,"
        f" {len(result.unchanged)} unchanged{where}"
    )
    typer.echo(f"object {result.uri}")
    typer.echo(f"generation {result.generation}")
    typer.echo(f"run {run_id} ({why})")
    typer.echo(f"follow it: bp runs show {run_id}")
