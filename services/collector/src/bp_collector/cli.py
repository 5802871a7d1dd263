"""`bp collector serve`: the episode collector as a gRPC server, until SIGTERM or Ctrl-C;
`bp collector work`: a collector worker taking shards from `collection-shards`."""

from __future__ import annotations

import os
import signal
import threading
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

import typer
from bp_common.config import Settings
from bp_common.errors import PipelineError
from bp_common.telemetry import setup_logging, setup_telemetry
from pydantic import ValidationError

_T = TypeVar("_T")


class Action(StrEnum):
    serve = "serve"
    work = "work"
    reconcile = "reconcile"


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
    action: Action = typer.Argument(
        ...,
        help="work: take shards from collection-shards until SIGTERM (the pipeline's workers);"
        " reconcile: publish again the shard messages runs wait for, once;"
        " serve: answer the gRPC collector contract until SIGTERM (`bp collect`).",
    ),
    host: str | None = typer.Option(
        None, help="Bind address (a VM or container: 0.0.0.0) [BP_COLLECTOR_HOST, 127.0.0.1]."
    ),
    port: int | None = typer.Option(
        None, help="Port; 0 picks a free one [BP_COLLECTOR_PORT, 50061]."
    ),
    data_dir: Path | None = typer.Option(
        None,
        help="Job store and episodes [BP_COLLECTOR_DATA_DIR, BP_DATA_DIR/collector].",
    ),
    workers: int | None = typer.Option(
        None, help="Simulation processes [BP_COLLECTOR_WORKERS, 0: one per core]."
    ),
    plaintext: bool | None = typer.Option(
        None,
        "--plaintext/--tls",
        help="Plaintext is the default in PIPELINE_ENV=local on loopback, refused elsewhere;"
        " --tls asks for TLS with client certificates anyway.",
    ),
    max_running_jobs: int | None = typer.Option(None, help="[BP_COLLECTOR_MAX_RUNNING_JOBS, 4]"),
    max_episodes_per_job: int | None = typer.Option(
        None, help="[BP_COLLECTOR_MAX_EPISODES_PER_JOB, 10000]"
    ),
    grace: float | None = typer.Option(
        None, help="Seconds running episodes get on stop [BP_COLLECTOR_SHUTDOWN_GRACE_S, 25]."
    ),
    port_file: Path | None = typer.Option(
        None, help="Write the bound port here once serving (for callers that asked for port 0)."
    ),
    exit_with_parent: bool = typer.Option(
        False, help="Stop when the starting process exits (embedded collectors)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="reconcile: an embedded run folder (default: BP_DATA_DIR)."
    ),
    stuck_after: float = typer.Option(
        1800.0, min=10, help="reconcile: seconds without progress before a shard is sent again."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="reconcile: list, publish nothing."),
) -> None:
    """Episodes on a simulator backend (BP_COLLECTOR_BACKEND, default mujoco: MuJoCo on the
    CPU): the pipeline's collect workers and their reconciler, or the gRPC collector."""
    if action is Action.work:
        from bp_common.cli.services import worker

        worker("collect")  # the collect stage's pull worker (bp_collector.shards.stage)
        return
    if action is Action.reconcile:
        _reconcile(out, stuck_after, dry_run)
        return
    # Imported here: every `bp` command loads this module, only `serve` needs the backend and gRPC.
    from bp_collector.backends import SIMULATION_PROCESSES
    from bp_collector.service.server import CollectorServer, load_server_tls, wants_plaintext
    from bp_collector.service.servicer import Limits, WatchTiming
    from bp_collector.settings import CollectorSettings

    settings = Settings()
    try:
        setup_telemetry(settings, "collector")
    except PipelineError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    setup_logging(settings, "collector", json_logs=not settings.is_local)
    try:
        own = CollectorSettings()
    except ValidationError as exc:
        for error in exc.errors():
            name = "BP_" + "_".join(str(part) for part in error["loc"]).upper()
            why = (error.get("ctx") or {}).get("error") or error["msg"]
            typer.secho(f"error: {name}: {why}", fg="red", err=True)
        raise typer.Exit(2) from exc
    host = host if host is not None else own.collector_host
    try:
        plain = wants_plaintext(settings.env, host, plaintext)
        tls = None
        if not plain:
            from bp_common.wiring import cloud_secrets

            tls = load_server_tls(cloud_secrets(settings))
        limits = Limits(
            max_episodes_per_job=_given(max_episodes_per_job, own.collector_max_episodes_per_job),
            max_running_jobs=_given(max_running_jobs, own.collector_max_running_jobs),
        )
        server = CollectorServer(
            data_dir or own.collector_data_dir or settings.data_dir / "collector",
            host,
            _given(port, own.collector_port),
            tls=tls,
            backend=own.collector_backend,
            workers=_given(workers, own.collector_workers)
            or SIMULATION_PROCESSES.get(own.collector_backend),
            limits=limits,
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
    typer.echo(f"collector serving on {server.address} ({own.collector_backend})", err=True)
    while not stop.wait(1.0):
        pass
    server.stop(_given(grace, own.collector_shutdown_grace_s))


def _given(option: _T | None, setting: _T) -> _T:
    """A command-line option wins over its setting."""
    return option if option is not None else setting


def _reconcile(out: Path | None, stuck_after: float, dry_run: bool) -> None:
    """Publish again what each waiting run's collection needs (bp_collector.shards.reconcile)."""
    from bp_common import wiring
    from bp_common.ledger.store import utcnow

    from bp_collector.shards.reconcile import reconcile

    settings = Settings()
    if settings.uses_cloud:
        ports = wiring.cloud(settings).ports
    else:
        root = out or settings.data_dir
        if not (root / "ledger.sqlite").exists():
            typer.secho(f"no ledger at {root / 'ledger.sqlite'} (pass --out)", fg="red", err=True)
            raise typer.Exit(1)
        ports = wiring.embedded(root, settings).ports
    found = reconcile(
        ports.ledger, ports.publisher, utcnow(), stuck_after_s=stuck_after, dry_run=dry_run
    )
    for nudge in found:
        typer.echo(f"{nudge.run_id}  {nudge.shard_id}  {nudge.why}")
    typer.echo(f"{len(found)} shard message(s) {'to publish' if dry_run else 'published'} again")
