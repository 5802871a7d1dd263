"""The `bp` command: a stage as a service (`serve`, `worker`), `check-config`, and every command
an installed package registers under the `blueprint.commands` entry-point group.

A service image has its own commands (`bp export`, `bp collector serve`...) beside these; the
operator tools (`bp run`, `bp up`, `bp runs`, `bp dlq`, `bp drop`, `bp status`) come with bp-ops.

Every `bp` process prints its threads' stacks to stderr on SIGUSR1 (`kill -USR1 PID`): what a
stuck service or stack is waiting for, without stopping it.
"""

from __future__ import annotations

import faulthandler
import signal
from importlib.metadata import entry_points

import typer

from bp_common.cli import services

COMMAND_GROUP = "blueprint.commands"

app = typer.Typer(
    help="BlueprintPipeline: robot scenes in, verified LeRobot datasets out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("serve")(services.serve)
app.command("worker")(services.worker)
app.command("check-config")(services.check_config)

# A command is a function (`bp upload`) or a Typer app of subcommands (`bp runs list`).
for ep in sorted(entry_points(group=COMMAND_GROUP), key=lambda ep: ep.name):
    command = ep.load()
    if isinstance(command, typer.Typer):
        app.add_typer(command, name=ep.name)
    else:
        app.command(ep.name)(command)


def main() -> None:
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    app()


if __name__ == "__main__":
    main()
