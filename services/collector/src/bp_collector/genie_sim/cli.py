"""`bp genie-sim serve`: Genie Sim's protocol on MuJoCo, for laptops and CI."""

from __future__ import annotations

import signal
import sys
import threading

import typer

genie_sim = typer.Typer(
    help="Genie Sim's gRPC protocol (aimdk.protocol) answered by the collector's MuJoCo world.",
    no_args_is_help=True,
)


@genie_sim.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="Bind address (plaintext: loopback outside local)."),
    port: int = typer.Option(50051, min=0, max=65535, help="Port; 0 picks a free one."),
) -> None:
    """Serve SimObservationService, SimObjectService, SimGripperService and JointControlService
    until SIGTERM or Ctrl-C; prints the address it listens on."""
    from bp_common.config import Settings

    from bp_collector.genie_sim.server.listener import GenieSimServer

    settings = Settings()
    server = GenieSimServer(host, port, env=settings.env.value)
    server.start()
    typer.echo(f"genie-sim protocol server (MuJoCo) listening on {server.address}")
    sys.stdout.flush()
    stopped = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopped.wait()
    server.stop()
