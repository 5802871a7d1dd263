"""`bp collector serve`: the episode collector as a gRPC server, until SIGTERM or Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading
from enum import StrEnum
from pathlib import Path

import typer
from bp_common.config import Settings
from bp_common.errors import PipelineError
from bp_common.telemetry import setup_logging


class Action(StrEnum):
    serve = "serve"


def _write_port_file(path: Path, port: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"{port}\n")
    tmp.replace(path)


def _watch_parent(parent: int, stop: threading.Event) -> None:
    """Stop when the process that started us is gone (it was killed, not shut down)."""
    while not stop.wait(1.0):
        if os.getppid() != parent:
            stop.set()


def collector(
    action: Action = typer.Argument(..., help="serve: run the collector until SIGTERM."),
    host: str = typer.Option(
        "127.0.0.1", envvar="BP_COLLECTOR_HOST", help="Bind address (a VM or container: 0.0.0.0)."
    ),
    port: int = typer.Option(50061, envvar="BP_COLLECTOR_PORT", help="Port; 0 picks a free one."),
    data_dir: Path | None = typer.Option(
        None,
        envvar="BP_COLLECTOR_DATA_DIR",
        help="Job store and episodes (default: BP_DATA_DIR/collector).",
    ),
    workers: int = typer.Option(
        0, envvar="BP_COLLECTOR_WORKERS", help="Simulation processes (default: one per core)."
    ),
    plaintext: bool | None = typer.Option(
        None,
        "--plaintext/--tls",
        help="Plaintext is the default in PIPELINE_ENV=local on loopback, refused elsewhere;"
        " --tls asks for TLS with client certificates anyway.",
    ),
    max_running_jobs: int = typer.Option(4, envvar="BP_COLLECTOR_MAX_RUNNING_JOBS"),
    max_episodes_per_job: int = typer.Option(10_000, envvar="BP_COLLECTOR_MAX_EPISODES_PER_JOB"),
    grace: float = typer.Option(
        25.0, envvar="BP_COLLECTOR_SHUTDOWN_GRACE_S", help="Seconds running episodes get on stop."
    ),
    port_file: Path | None = typer.Option(
        None, help="Write the bound port here once serving (for callers that asked for port 0)."
    ),
    exit_with_parent: bool = typer.Option(
        False, help="Stop when the starting process exits (embedded collectors)."
    ),
) -> None:
    """The episode collector: a gRPC server that owns the simulator (MuJoCo on the CPU)."""
    # Imported here: every `bp` command loads this module, only `serve` needs MuJoCo and gRPC.
    from bp_collector.collector_service import Limits, WatchTiming
    from bp_collector.server import CollectorServer, load_server_tls, wants_plaintext

    settings = Settings()
    setup_logging(settings, "collector", json_logs=not settings.is_local)
    try:
        plain = wants_plaintext(settings.env, host, plaintext)
        tls = None
        if not plain:
            from bp_common.wiring import cloud_secrets

            tls = load_server_tls(cloud_secrets(settings))
        server = CollectorServer(
            data_dir or settings.data_dir / "collector",
            host,
            port,
            tls=tls,
            workers=workers or None,
            limits=Limits(
                max_episodes_per_job=max_episodes_per_job, max_running_jobs=max_running_jobs
            ),
            watch=WatchTiming(),
        )
        bound = server.start()
    except PipelineError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    if port_file is not None:
        _write_port_file(port_file, bound)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if exit_with_parent:
        threading.Thread(
            target=_watch_parent, args=(os.getppid(), stop), daemon=True, name="parent-watch"
        ).start()
    typer.echo(f"collector serving on {server.address}", err=True)
    while not stop.wait(1.0):
        pass
    server.stop(grace)
