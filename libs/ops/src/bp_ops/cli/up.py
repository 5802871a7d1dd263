"""`bp up`: the local stack, emulators and every installed service as separate processes."""

from __future__ import annotations

import signal
from pathlib import Path

import typer
from bp_common import stages as stage_registry


def up(
    out: Path = typer.Option(Path("bp-out/stack"), "--out", help="Logs and state of the stack."),
    secure: bool = typer.Option(
        False,
        "--secure",
        help="Production's security on the emulators: the services run in PIPELINE_ENV=dev"
        " with mTLS to a collector of their own, OIDC on every push (a local issuer, a signing"
        " relay in front of each push service) and every secret from Secret Manager over TLS.",
    ),
    collectors: int = typer.Option(
        1, "--collectors", min=1, help="Collector workers: separate processes taking shards."
    ),
) -> None:
    """Start the emulators and every installed service as separate processes, supervised: a
    service that dies is restarted with backoff. Ctrl-C (or SIGTERM) stops everything."""
    from bp_ops.emulators import EmulatorError
    from bp_ops.stack import LocalStack

    installed = stage_registry.available()
    missing = stage_registry.missing()
    if missing:
        typer.echo(f"not built yet, not started: {', '.join(missing)}")
    with LocalStack(out, list(installed), secure=secure, collectors=collectors) as stack:
        for line in stack.describe():
            typer.echo(line)
        typer.echo(
            f"stack is up; services that die are restarted (events: {stack.events_path});"
            " Ctrl-C stops everything it started"
        )
        # Ctrl-C and SIGTERM end the supervision between two rounds; raised in the middle of
        # one (a redrive's RPC, a restart), an interrupt could leave a client mid-call.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stack.interrupt())
        try:
            stack.wait()
        except EmulatorError as exc:
            typer.secho(f"{exc}; stopping...", fg="red", err=True)
            raise typer.Exit(1) from exc
        typer.echo("stopping...")
