"""`bp runs list|show`: where every run is, from the run ledger."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from bp_common import wiring
from bp_common.ledger.run_state import run_state

from bp_ops.cli.context import OutOption, adapters
from bp_ops.cli.context import settings as load_settings
from bp_ops.status.overview import shards_document

app = typer.Typer(help="Runs recorded in the ledger.", no_args_is_help=True)


@app.command("list")
def list_runs(
    scene: str | None = typer.Option(None, help="Only runs of this scene id."),
    limit: int = typer.Option(20, min=1, help="How many, newest first."),
    out: Path | None = OutOption,
) -> None:
    """List recent runs with their overall state and per-stage states."""
    records = adapters(out).ports.ledger.list(limit=limit, scene_id=scene)
    if not records:
        typer.echo("no runs")
        return
    for r in records:
        state = run_state(r)
        stages = " ".join(f"{name}:{value}" for name, value in state.stages.items())
        line = f"{r.run_id}  {r.scene_id:<24} {state.state.value:<19}"
        typer.echo(f"{line} {r.updated_at:%Y-%m-%d %H:%M:%S}  {stages}")
        if state.reason:
            typer.echo(f"{'':<24}{state.describe()}")


@app.command("show")
def show(
    run_id: str, as_json: bool = typer.Option(False, "--json"), out: Path | None = OutOption
) -> None:
    """One run in full: per stage state, attempts, timings, counts and error."""
    ledger = adapters(out).ports.ledger
    record = ledger.get(run_id)
    if record is None:
        typer.secho(f"no run {run_id}", fg="red", err=True)
        raise typer.Exit(1)
    state = run_state(record)
    collection = ledger.shards.get(run_id)
    progress = collection.progress(ledger.clock()) if collection else None
    if as_json:
        document = {**record.to_document(), **state.to_document()}
        if collection is not None:
            document["shards"] = shards_document(collection, ledger.clock())
        typer.echo(json.dumps(document, indent=2, default=str))
        return
    typer.echo(f"run {record.run_id}  scene {record.scene_id}  state {state.describe()}")
    if record.source:
        typer.echo(
            f"source gs://{record.source.bucket}/{record.source.object}#{record.source.generation}"
        )
    for robot, why in state.held_back.items():
        typer.echo(f"held back {robot}: {why}")
    for name, derived in state.stages.items():
        if name == "collect" and collection is not None and progress is not None:
            eta = f", ETA {progress.eta_s / 60:.0f} min" if progress.eta_s else ""
            typer.echo(
                f"  {name:<8} {derived:<14} shards {progress.shards_done}/{progress.shards_total}"
                f" ({progress.shards_failed} failed), episodes {progress.episodes_done}/"
                f"{progress.episodes_total}, {progress.episodes_per_hour:.0f}/hour{eta}"
            )
            for shard, failed in sorted(collection.failed.items()):
                typer.echo(f"           shard {shard} failed: {failed.type}: {failed.message}")
            continue
        st = record.stages.get(name)
        if st is None:
            typer.echo(f"  {name:<8} {derived}")
            continue
        took = f"{st.duration_s:.1f}s" if st.duration_s is not None else "-"
        typer.echo(f"  {name:<8} {st.state.value:<14} attempts={st.attempts} took={took}")
        if st.counts:
            typer.echo("           " + ", ".join(f"{k}={v:g}" for k, v in st.counts.items()))
        if st.note:
            typer.echo(f"           note: {st.note}")
        if st.error:
            kind = "permanent" if st.error.permanent else "transient"
            typer.echo(f"           error ({kind}) {st.error.type}: {st.error.message}")


@app.command("redrive")
def redrive_runs(
    stalled_after: float = typer.Option(
        600.0, min=10, help="Seconds a run must be idle, its next stage without a holder."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="List them; publish nothing."),
    out: Path | None = OutOption,
) -> None:
    """Publish again the input of every stalled run's next stage (bp_ops.redrive)."""
    from bp_common.ledger.store import utcnow

    from bp_ops.embedded import LOCAL_BUCKET
    from bp_ops.redrive import redrive

    found = adapters(out)
    bucket = load_settings().bucket if isinstance(found, wiring.CloudWiring) else LOCAL_BUCKET
    driven = redrive(found.ports, bucket, utcnow(), stalled_after_s=stalled_after, dry_run=dry_run)
    for item in driven:
        typer.echo(f"{item.run_id}  {item.scene_id:<24} {item.stage:<8} idle {item.idle_s:.0f}s")
    verb = "would drive on" if dry_run else "drove on"
    typer.echo(f"{len(driven)} stalled run(s): {verb}")
