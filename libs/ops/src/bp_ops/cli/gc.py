"""`bp gc`: retention on the embedded folder (bp_ops.retention), with a dry run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer
from bp_common import wiring
from bp_common.ledger.store import utcnow

from bp_ops.cli.context import OutOption, adapters
from bp_ops.cli.context import settings as load_settings
from bp_ops.retention import apply_retention, plan_retention


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def gc(
    older_than: float | None = typer.Option(
        None,
        "--older-than",
        min=0,
        help="Days: runs ended and raw episodes imported before this go (default:"
        " BP_RETENTION_DAYS for runs, BP_RAW_EPISODE_RETENTION_DAYS for raw episodes).",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would go; remove nothing."),
    out: Path | None = OutOption,
) -> None:
    """Remove what is past retention from the embedded folder: runs ended long ago (objects,
    ledger entry), raw episodes already imported, and attempts no manifest commits. Never a live
    run's objects, never a published dataset."""
    settings = load_settings()
    found = adapters(out)
    if isinstance(found, wiring.CloudWiring):
        typer.secho(
            "bp gc works on the embedded folder; in the cloud the bucket's lifecycle rules and"
            " Firestore's TTL policy apply retention (deploy/terraform)",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    now = utcnow()
    runs_days = settings.retention_days if older_than is None else older_than
    episodes_days = settings.raw_episode_retention_days if older_than is None else older_than
    ports = found.ports
    plan = plan_retention(
        ports.blobs,
        ports.ledger,
        runs_before=now - timedelta(days=runs_days),
        episodes_before=now - timedelta(days=episodes_days),
    )
    verb = "would remove" if dry_run else "removed"
    for removal in plan.removals:
        typer.echo(
            f"{verb} {removal.reason}: {removal.prefix} ({len(removal.keys)} objects,"
            f" {_size(removal.bytes)})"
        )
    for run in plan.runs:
        typer.echo(f"{verb} ledger entry {run.run_id} (scene {run.scene_id})")
    freed = plan.bytes if dry_run else apply_retention(ports.blobs, ports.ledger, plan)
    typer.echo(
        f"{plan.objects} object(s), {len(plan.runs)} run(s): {_size(freed)}"
        f" {'would be freed' if dry_run else 'freed'}"
    )
