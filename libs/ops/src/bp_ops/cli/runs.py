"""`bp runs list|show`: where every run is, from the run ledger."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from bp_ops.cli.context import OutOption, adapters

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
        stages = " ".join(f"{name}:{rec.state.value}" for name, rec in r.stages.items())
        typer.echo(
            f"{r.run_id}  {r.scene_id:<24} {r.state:<14} {r.updated_at:%Y-%m-%d %H:%M:%S}  {stages}"
        )


@app.command("show")
def show(
    run_id: str, as_json: bool = typer.Option(False, "--json"), out: Path | None = OutOption
) -> None:
    """One run in full: per stage state, attempts, timings, counts and error."""
    record = adapters(out).ports.ledger.get(run_id)
    if record is None:
        typer.secho(f"no run {run_id}", fg="red", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(record.to_document(), indent=2))
        return
    typer.echo(f"run {record.run_id}  scene {record.scene_id}  state {record.state}")
    if record.source:
        typer.echo(
            f"source gs://{record.source.bucket}/{record.source.object}#{record.source.generation}"
        )
    for name, st in record.stages.items():
        took = f"{st.duration_s:.1f}s" if st.duration_s is not None else "-"
        typer.echo(f"  {name:<8} {st.state.value:<14} attempts={st.attempts} took={took}")
        if st.counts:
            typer.echo("           " + ", ".join(f"{k}={v:g}" for k, v in st.counts.items()))
        if st.note:
            typer.echo(f"           note: {st.note}")
        if st.error:
            kind = "permanent" if st.error.permanent else "transient"
            typer.echo(f"           error ({kind}) {st.error.type}: {st.error.message}")
