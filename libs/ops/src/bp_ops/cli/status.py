"""`bp status serve`: the status page over the run ledger, the dead letters and the bucket."""

from __future__ import annotations

from pathlib import Path

import typer
from bp_common.config import PipelineEnv, Settings

from bp_ops import dlq
from bp_ops.cli.context import OutOption, adapters
from bp_ops.cli.context import settings as load_settings

# The variables `bp status serve` reads, declared like every BP_* setting (bp_common.config).
AUDIENCE_VARIABLE = "BP_STATUS_OIDC_AUDIENCE"
ACCOUNT_VARIABLE = "BP_STATUS_OIDC_ACCOUNT"
PLATFORM_AUTH_VARIABLE = "BP_STATUS_PLATFORM_AUTH"
STACK_EVENTS_VARIABLE = "BP_STATUS_STACK_EVENTS"
VARIABLES = (AUDIENCE_VARIABLE, ACCOUNT_VARIABLE, PLATFORM_AUTH_VARIABLE, STACK_EVENTS_VARIABLE)

app = typer.Typer(
    help="The status page: runs, dead letters, quality reports.", no_args_is_help=True
)


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Bind address (Cloud Run: 0.0.0.0)."),
    port: int = typer.Option(8080, envvar="PORT"),
    out: Path | None = OutOption,
    oidc_audience: str | None = typer.Option(
        None,
        envvar=AUDIENCE_VARIABLE,
        help="Require a Google-signed ID token for this audience on every route but /healthz.",
    ),
    oidc_account: str | None = typer.Option(
        None,
        envvar=ACCOUNT_VARIABLE,
        help="The one service account whose ID tokens are accepted (with --oidc-audience).",
    ),
    platform_auth: bool = typer.Option(
        False,
        "--platform-auth",
        envvar=PLATFORM_AUTH_VARIABLE,
        help="IAP or Cloud Run IAM authenticates every caller before the app does.",
    ),
    max_replays: int = typer.Option(
        dlq.DEFAULT_MAX_REPLAYS, help="Refuse to replay a message past this many replays."
    ),
    stack_events: Path | None = typer.Option(
        None,
        "--stack-events",
        envvar=STACK_EVENTS_VARIABLE,
        help="The local stack's supervisor events (bp up passes it): crashes and restarts.",
    ),
    token_file: Path | None = typer.Option(
        None,
        help="Read the access token from this file (`bp up` writes one) instead of making one.",
    ),
) -> None:
    """Serve the status page (FastAPI): runs, charts, dead letters with replay and purge, quality
    reports, /api. Unless IAP or OIDC authenticates callers, it makes a random access token and
    prints the address that carries it: nothing is served without it, even on loopback."""
    import uvicorn
    from bp_common.runtime.oidc import PushTokenVerifier
    from bp_common.telemetry import setup_telemetry

    from bp_ops.status import Guard, StatusSources, create_app, new_token

    if bool(oidc_audience) != bool(oidc_account):
        typer.secho("--oidc-audience and --oidc-account go together", fg="red", err=True)
        raise typer.Exit(2)
    if Settings().env is PipelineEnv.PRODUCTION and not (oidc_audience or platform_auth):
        typer.secho(
            "production: the status page replays dead letters, so callers must be authenticated:"
            " put it behind IAP or Cloud Run IAM (--platform-auth) or set --oidc-audience and"
            " --oidc-account",
            fg="red",
            err=True,
        )
        raise typer.Exit(2)
    settings = load_settings()
    setup_telemetry(settings, "status")
    if oidc_audience and oidc_account:
        verifier = PushTokenVerifier(
            audience=oidc_audience, service_account=oidc_account, certs_url=settings.oidc_certs_url
        )
        guard, address = Guard(verifier=verifier), f"http://{host}:{port}/"
    elif platform_auth:
        guard, address = Guard(platform=True), f"http://{host}:{port}/"
    else:
        token = token_file.read_text().strip() if token_file else new_token()
        if not token:
            typer.secho(f"{token_file} holds no token", fg="red", err=True)
            raise typer.Exit(2)
        guard, address = Guard(token=token), f"http://{host}:{port}/?token={token}"
    found = adapters(out)
    ports = found.ports
    sources = StatusSources(
        ports.ledger, found.dead_letters, ports.publisher, ports.blobs, stack_events
    )
    typer.echo(f"status page on {address}")
    uvicorn.run(
        create_app(sources, guard, max_replays=max_replays),
        host=host,
        port=port,
        log_level="warning",
    )
