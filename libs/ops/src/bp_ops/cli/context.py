"""What CLI commands share: settings, and the ports of the embedded store or the cloud."""

from __future__ import annotations

from pathlib import Path

import typer
from bp_common.bus.base import DeadLetterQueue, Publisher
from bp_common.config import Settings
from bp_common.errors import PipelineError
from bp_common.ledger import RunLedger


def settings() -> Settings:
    try:
        return Settings().ensure_safe()
    except PipelineError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc


def ledger(out: Path | None) -> RunLedger:
    s = settings()
    if s.uses_cloud:
        from bp_common.wiring import cloud_ports

        return cloud_ports(s).ledger
    from bp_common.ledger.sqlite import SqliteLedgerStore

    root = out or s.data_dir
    if not (root / "ledger.sqlite").exists():
        typer.secho(
            f"no ledger at {root / 'ledger.sqlite'} (run `bp run` first or pass --out)",
            fg="red",
            err=True,
        )
        raise typer.Exit(1)
    return RunLedger(SqliteLedgerStore(root / "ledger.sqlite"))


def dead_letters(out: Path | None) -> tuple[DeadLetterQueue, Publisher]:
    s = settings()
    if s.uses_cloud:
        from bp_common.bus.pubsub import PubSubDeadLetterQueue, PubSubPublisher
        from google.cloud import pubsub_v1

        return (
            PubSubDeadLetterQueue(pubsub_v1.SubscriberClient(), s.project_id),
            PubSubPublisher(pubsub_v1.PublisherClient(), s.project_id),
        )
    from bp_common.bus.local import LocalBus, LocalDeadLetterQueue

    root = out or s.data_dir
    if not (root / "bus.sqlite").exists():
        typer.secho(f"no local bus at {root / 'bus.sqlite'}", fg="red", err=True)
        raise typer.Exit(1)
    bus = LocalBus(root / "bus.sqlite")
    return LocalDeadLetterQueue(bus), bus


OutOption = typer.Option(
    None, "--out", help="Embedded run folder (default: BP_DATA_DIR or ./bp-out)."
)
