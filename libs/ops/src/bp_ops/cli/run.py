"""`bp run`: the embedded default, from a scene file to the furthest stage that exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer
from bp_common import stages as stage_registry
from bp_common.config import Settings
from bp_common.contracts.events import DatasetsPublished
from bp_common.errors import PipelineError
from bp_common.ledger.run_state import stage_records
from bp_common.runtime.delivery import Outcome, Verdict
from bp_common.telemetry import flush_telemetry, setup_logging, setup_telemetry

from bp_ops.embedded import EmbeddedPipeline
from bp_ops.status.analytics import learnability_key

# `bp run --learnability` defaults to this variable (off: the check adds about a minute).
VARIABLES = ("BP_LEARNABILITY",)


def check_learnability(bucket: Path, scene_id: str, run_id: str, robots: list[str]) -> None:
    """`bp learnability` (the collector's command) on the run's episodes, for each robot that
    has no result yet; results go where the status page's leaderboard reads them."""
    run = bucket / "runs" / scene_id / run_id
    for robot in robots:
        result = bucket / learnability_key(scene_id, run_id, robot)
        if result.exists():
            typer.echo(f"  [learnability] {robot}: already checked")
            continue
        command = [sys.executable, "-m", "bp_common.cli", "learnability", str(run / "episodes")]
        command += ["--export", str(run / "export"), "--robots", robot, "--run-id", run_id]
        done = subprocess.run(
            [*command, "--out", str(result.parent)],
            capture_output=True,
            text=True,
            check=False,
        )
        line = (done.stdout.strip().splitlines() or [""])[-1]
        if done.returncode != 0:
            typer.secho(f"  [learnability] {robot} failed: {done.stderr[-500:]}", fg="yellow")
        else:
            typer.echo(f"  [learnability] {line}")


def _progress(stage: str, verdict: Verdict, seconds: float) -> None:
    if verdict.outcome is Outcome.ACK:
        if verdict.duplicate:
            what = "already done"
        else:
            what = f"done -> {verdict.emitted.topic}" if verdict.emitted else "done"
        typer.echo(f"  [{stage}] {what} ({seconds:.1f}s)")
    elif verdict.outcome is Outcome.RETRY:
        typer.secho(f"  [{stage}] failed, will retry: {verdict.error}", fg="yellow")
    else:
        typer.secho(f"  [{stage}] permanent failure, dead-lettered: {verdict.error}", fg="red")


def run(
    scene_path: Path = typer.Argument(
        ..., help="A scene.usda, .usd, .usdc or .usdz file, or the folder holding it."
    ),
    out: Path = typer.Option(
        Path("bp-out"), "--out", help="Folder for the bucket, ledger and bus."
    ),
    scene_id: str | None = typer.Option(None, help="Scene id (default: the scene folder's name)."),
    learnability: bool = typer.Option(
        False,
        "--learnability/--no-learnability",
        envvar="BP_LEARNABILITY",
        help="Then train and run a behaviour-cloning policy per dataset (bp learnability).",
    ),
) -> None:
    """Run the whole chain in one process on local storage (the embedded default)."""
    settings = Settings(data_dir=out)
    try:
        setup_telemetry(settings, "embedded")
    except PipelineError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    # Progress lines say what happens; the ledger keeps the details (`bp runs show`).
    setup_logging(
        settings.model_copy(update={"log_level": "CRITICAL"}), "embedded", json_logs=False
    )
    installed = stage_registry.available()
    missing = stage_registry.missing()
    if not installed:
        typer.secho("no stage is installed yet: nothing to run", fg="red", err=True)
        raise typer.Exit(2)
    typer.echo(
        f"stages: {', '.join(installed)}"
        + (f"  (not built yet, the run stops before them: {', '.join(missing)})" if missing else "")
    )
    pipeline = EmbeddedPipeline(out, settings, installed)
    try:
        run = pipeline.drop_scene(scene_path, scene_id)
    except PipelineError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"scene {run.scene_id} -> run {run.run_id}")
    try:
        pipeline.drain(run, _progress)
    finally:
        pipeline.close()
    flush_telemetry()
    record = pipeline.ports.ledger.get(run.run_id)
    if record is None:
        typer.secho("the run left no record (was the scene rejected?)", fg="red", err=True)
        raise typer.Exit(1)
    typer.echo(f"run {record.run_id}: {record.state}")
    records = stage_records(record, list(installed))  # a stage worked in pieces, rolled up
    for name in [n for n in installed if n in records]:
        st = records[name]
        line = f"  {name:<8} {st.state.value}"
        if st.error:
            line += f"  {st.error.type}: {st.error.message}"
        elif st.note:
            line += f"  {st.note}"
        typer.echo(line)
    typer.echo(f"run artefacts: {(out / 'bucket' / 'runs' / run.scene_id / run.run_id).resolve()}")
    upload = record.stages.get("upload")
    folder = pipeline.ports.publication_folder
    if upload is not None and upload.emitted is not None and folder is not None:
        event = DatasetsPublished.model_validate_json(upload.emitted.data)
        for dataset in event.published:
            typer.echo(f"published: {(folder / dataset.prefix).resolve()}")
        for held in event.held_back:
            typer.echo(f"held back: {held.robot} ({', '.join(held.reasons)})")
        if learnability:
            robots = sorted({d.robot for d in event.published})
            check_learnability(out / "bucket", run.scene_id, run.run_id, robots)
    typer.echo(f"ledger:  bp runs show {run.run_id} --out {out}")
    if record.state in ("failed", "quality_failed"):
        raise typer.Exit(1)
