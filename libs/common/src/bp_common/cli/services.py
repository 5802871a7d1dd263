"""`bp serve`, `bp worker` and `bp check-config`: a stage as a process, and its settings."""

from __future__ import annotations

import os
import signal
import threading

import typer
from pydantic import ValidationError

from bp_common import stages as stage_registry
from bp_common import wiring
from bp_common.config import Settings
from bp_common.errors import PipelineError, UnsafeConfiguration
from bp_common.runtime.delivery import Deliverer
from bp_common.runtime.limits import Transport
from bp_common.runtime.sinks import TopicDeadLetterSink, TopicRedelivery
from bp_common.telemetry import setup_telemetry


def load_settings() -> Settings:
    """The settings, or exit 2 naming what production refuses."""
    try:
        return Settings().ensure_safe()
    except PipelineError as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2) from exc


def _service(
    spec: str, transport: Transport
) -> tuple[Settings, wiring.CloudWiring, Deliverer, TopicDeadLetterSink]:
    """The stage with every adapter it runs on, or exit naming what could not be built."""
    settings = load_settings()
    stage = stage_registry.load(spec)
    try:
        setup_telemetry(settings, stage.name)
    except PipelineError as exc:
        typer.secho(f"{stage.name}: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    adapters = wiring.cloud(settings)
    try:
        deliverer = wiring.deliverer(stage, adapters.ports, settings, transport=transport)
    except PipelineError as exc:
        typer.secho(f"{stage.name}: {exc}", fg="red", err=True)
        raise typer.Exit(2 if exc.permanent else 1) from exc
    sink = TopicDeadLetterSink(
        adapters.ports.publisher, settings.dead_letter_topic or stage.route.dead_letter_topic
    )
    return settings, adapters, deliverer, sink


def serve(
    stage: str = typer.Argument(
        ..., help="Stage name (export, import, upload) or module:ATTRIBUTE."
    ),
    host: str = typer.Option("127.0.0.1", help="Bind address (Cloud Run: 0.0.0.0)."),
    port: int = typer.Option(8080, envvar="PORT"),
) -> None:
    """Run a stage as a FastAPI service with the Pub/Sub push endpoint, /healthz and /readyz."""
    import uvicorn

    from bp_common.runtime.oidc import PushTokenVerifier
    from bp_common.runtime.push import create_app

    settings, _, deliverer, sink = _service(stage, Transport.PUSH)
    verifier = None
    if settings.push_auth_enabled:
        if not (settings.push_audience and settings.push_service_account):
            typer.secho(
                "push auth is on: set BP_PUSH_AUDIENCE and BP_PUSH_SERVICE_ACCOUNT",
                fg="red",
                err=True,
            )
            raise typer.Exit(2)
        verifier = PushTokenVerifier(
            audience=settings.push_audience,
            service_account=settings.push_service_account,
            certs_url=settings.oidc_certs_url,
        )

    def ready() -> list[str]:
        problems = []
        try:
            deliverer.ports.ledger.list(limit=1)
        except Exception as exc:
            problems.append(f"ledger: {type(exc).__name__}")
        try:
            deliverer.ports.blobs.exists("readyz-probe")
        except Exception as exc:
            problems.append(f"blob store: {type(exc).__name__}")
        return problems

    app = create_app(
        deliverer, sink, TopicRedelivery(deliverer.ports.publisher), verifier=verifier, ready=ready
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


def worker(stage: str = typer.Argument(..., help="Stage name or module:ATTRIBUTE.")) -> None:
    """Run a stage as a streaming-pull worker (flow control, lease extension) until SIGTERM."""
    from bp_common.bus.pubsub import PullWorker

    # Asked to stop while starting (a VM preempted as it boots): start nothing, exit cleanly.
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    settings, adapters, deliverer, sink = _service(stage, Transport.PULL)
    pull = PullWorker(
        adapters.subscriber,
        settings.project_id,
        deliverer.stage.route.subscription,
        deliverer,
        sink,
        TopicRedelivery(deliverer.ports.publisher),
        lease_extension_s=settings.lease_extension_s,
        idle_reopen_s=settings.stream_idle_reopen_s,
    )

    def stop(*_: object) -> None:
        deliverer.stopping.set()
        pull.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not stopping.is_set():
        pull.run()
    deliverer.close()


def check_config() -> None:
    """List every unsafe or unknown setting for the current PIPELINE_ENV.

    Production refuses to start on any of them; every other non-local environment refuses
    unknown BP_* variables (typos, settings nothing reads).
    """
    try:
        settings = Settings()
    except UnsafeConfiguration as exc:
        typer.echo(f"PIPELINE_ENV={os.environ.get('PIPELINE_ENV', 'local')}")
        for p in exc.problems:
            typer.echo(f"  - {p}")
        raise typer.Exit(2) from exc
    except ValidationError as exc:
        typer.secho(f"invalid settings: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    problems = settings.problems()
    typer.echo(f"PIPELINE_ENV={settings.env.value}")
    if not problems:
        typer.echo("no unsafe settings")
        return
    for p in problems:
        typer.echo(f"  - {p}")
    if settings.env.value == "production":
        raise typer.Exit(2)
