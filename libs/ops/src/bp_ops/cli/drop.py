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
) -> None:
    """Upload a scene to gs://$BP_BUCKET/scenes/ID/: manifest and assets first, the scene last."""
    from bp_common.blobstore.gcs import make_storage_client

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
        result = upload_drop(make_storage_client(settings.project_id), settings.bucket, plan)
    except PipelineError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2 if exc.permanent else 1) from exc
    except (GoogleAPIError, RequestException) as exc:
        typer.secho(f"upload to gs://{settings.bucket} failed: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    where = f" (emulator {emulator})" if emulator else ""
    beside = len(result.uploaded) - 1
    typer.echo(
        f"scene {plan.scene_id}: {beside} file(s) uploaded beside the scene,"
        f" {len(result.unchanged)} unchanged{where}"
    )
    typer.echo(f"object {result.uri}")
    typer.echo(f"generation {result.generation}")
    typer.echo(f"run {result.run_id}")
    typer.echo(f"follow it: bp runs show {result.run_id}")
