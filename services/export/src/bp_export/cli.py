"""`bp export SCENE_PATH --out DIR`: the export stage logic alone, on local files."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from bp_common import __version__
from bp_common.config import Settings
from bp_common.errors import PipelineError

from bp_export.export import MANIFEST_NAME, export_manifest, export_scene
from bp_export.stage import scene_sha256


def export(
    scene_path: Path = typer.Argument(..., help="A scene.usda, .usd, .usdc or .usdz file."),
    out: Path = typer.Option(..., "--out", help="Folder for the export outputs."),
    scene_id: str | None = typer.Option(None, help="Scene id (default: the scene folder's name)."),
    robots: str | None = typer.Option(
        None, help="Comma-separated robots (default: the scene's, else all)."
    ),
) -> None:
    """Export one scene: scene graph, asset index, task config, embeddings, manifest last."""
    settings = Settings()
    scene_id = scene_id or scene_path.resolve().parent.name.lower()
    commit = out / MANIFEST_NAME
    digest = scene_sha256(scene_path) if scene_path.is_file() else None
    if commit.exists() and json.loads(commit.read_text())["source"].get("sha256") == digest:
        typer.echo(f"already exported (committed {commit}); nothing to do")
        return
    try:
        typer.echo(f"exporting {scene_path} as scene {scene_id}...")
        result = export_scene(
            scene_path,
            scene_id,
            environment=settings.env.value,
            require_embeddings=settings.embeddings_required,
            robots=robots.split(",") if robots else settings.robot_list,
        )
    except PipelineError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    out.mkdir(parents=True, exist_ok=True)
    for name, data in result.files.items():
        (out / name).write_bytes(data)
    manifest = export_manifest(
        result,
        pipeline_version=__version__,
        source={"path": str(scene_path.resolve()), "sha256": digest},
    )
    tmp = out / f".{MANIFEST_NAME}.partial"
    tmp.write_bytes(manifest)
    tmp.replace(commit)
    for warning in result.warnings:
        typer.secho(f"warning: {warning}", fg="yellow")
    for asset, why in result.licence_rejected.items():
        typer.secho(f"licence: {asset}: {why} (would block export in production)", fg="yellow")
    typer.echo(f"{result.objects} objects, {result.tasks} tasks for {', '.join(result.robots)}")
    typer.echo(f"written to {out.resolve()}")
