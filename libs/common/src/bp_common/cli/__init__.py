"""The `bp` command: the embedded run, the local stack, services, runs and dead letters."""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from bp_common.cli import dlq, runs, services, status
from bp_common.cli.drop import drop
from bp_common.cli.run import run

app = typer.Typer(
    help="BlueprintPipeline: robot scenes in, verified LeRobot datasets out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("run")(run)
app.command("up")(services.up)
app.command("serve")(services.serve)
app.command("worker")(services.worker)
app.command("check-config")(services.check_config)
app.command("drop")(drop)
app.add_typer(runs.app, name="runs")
app.add_typer(dlq.app, name="dlq")
app.add_typer(status.app, name="status")

# Each service may add its own commands (`bp export`, `bp collect`...) through this group.
for ep in entry_points(group="blueprint.commands"):
    app.command(ep.name)(ep.load())


def main() -> None:
    app()


if __name__ == "__main__":
    main()
