"""What the operator commands share: settings, and the adapters of the embedded run or the cloud,
from the composition root (bp_common.wiring)."""

from __future__ import annotations

from pathlib import Path

import typer
from bp_common import wiring
from bp_common.config import Settings
from bp_common.errors import PipelineError


def settings() -> Settings:
    try:
        return Settings().ensure_safe()
    except PipelineError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc


def adapters(out: Path | None) -> wiring.Wiring:
    """The cloud's adapters, or those of an existing embedded run folder (never a new one)."""
    s = settings()
    if s.uses_cloud:
        return wiring.cloud(s)
    root = out or s.data_dir
    if not (root / "ledger.sqlite").exists():
        typer.secho(
            f"no ledger at {root / 'ledger.sqlite'} (run `bp run` first or pass --out)",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)
    return wiring.embedded(root, s)


OutOption = typer.Option(
    None, "--out", help="Embedded run folder (default: BP_DATA_DIR or ./bp-out)."
)
