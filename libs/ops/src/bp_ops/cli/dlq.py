"""`bp dlq list|show|replay|purge`: dead-lettered messages, for ops."""

from __future__ import annotations

from pathlib import Path

import typer
from bp_common.bus.base import ATTR_PUBSUB_DL_COUNT, DeadLetter

from bp_ops import dlq as ops
from bp_ops.cli.context import OutOption, adapters

app = typer.Typer(help="Dead-lettered messages of every stage.", no_args_is_help=True)
StageOpt = typer.Option(None, "--stage", help="Only this stage's queue.")
SceneOpt = typer.Option(None, "--scene", help="Only messages of this scene id.")


def _why(letter: DeadLetter) -> str:
    if letter.error:
        return letter.error
    count = letter.attributes.get(ATTR_PUBSUB_DL_COUNT)
    return f"gave up after {count} delivery attempts" if count else ""


def _line(letter: DeadLetter) -> str:
    return (
        f"{letter.stage:<7} {letter.id:<36} scene={letter.scene_id or '-':<20} "
        f"replays={letter.replay_count} {_why(letter)}"
    )


@app.command("list")
def list_letters(
    stage: str | None = StageOpt,
    scene: str | None = SceneOpt,
    max_messages: int = typer.Option(100, "--max"),
    out: Path | None = OutOption,
) -> None:
    """List dead letters (they stay in their queue)."""
    queue = adapters(out).dead_letters
    count = 0
    for name in [stage] if stage else queue.stages():
        for letter in queue.peek(name, max_messages):
            if scene is None or letter.scene_id == scene:
                typer.echo(_line(letter))
                count += 1
    typer.echo(f"{count} dead letter(s)")


@app.command("show")
def show(message_id: str, stage: str | None = StageOpt, out: Path | None = OutOption) -> None:
    """One dead letter with its attributes and data."""
    queue = adapters(out).dead_letters
    for name in [stage] if stage else queue.stages():
        for letter in queue.peek(name, 1000):
            if letter.id == message_id:
                typer.echo(_line(letter))
                for k, v in sorted(letter.attributes.items()):
                    typer.echo(f"  {k} = {v}")
                typer.echo(letter.data.decode(errors="replace"))
                return
    typer.secho(f"no dead letter {message_id}", fg="red", err=True)
    raise typer.Exit(1)


@app.command("replay")
def replay(
    stage: str | None = StageOpt,
    scene: str | None = SceneOpt,
    max_messages: int = typer.Option(100, "--max", min=1),
    dry_run: bool = typer.Option(False, "--dry-run"),
    max_replays: int = typer.Option(ops.DEFAULT_MAX_REPLAYS, help="Refuse past this many replays."),
    out: Path | None = OutOption,
) -> None:
    """Re-publish dead letters to their original topic with a replay count."""
    found = adapters(out)
    report = ops.replay(
        found.dead_letters,
        found.ports.publisher,
        stage=stage,
        scene=scene,
        max_messages=max_messages,
        dry_run=dry_run,
        max_replays=max_replays,
    )
    verb = "would replay" if dry_run else "replayed"
    for letter in report.replayed:
        typer.echo(f"{verb}: {_line(letter)}")
    for letter in report.refused:
        typer.secho(
            f"refused (replayed {letter.replay_count} times already): {_line(letter)}", fg="yellow"
        )
    typer.echo(f"{len(report.replayed)} {verb}, {len(report.refused)} refused")


@app.command("purge")
def purge(
    stage: str | None = StageOpt,
    scene: str | None = SceneOpt,
    max_messages: int = typer.Option(1000, "--max", min=1),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    out: Path | None = OutOption,
) -> None:
    """Delete dead letters for good (asks first)."""
    what = f"stage {stage}" if stage else "every stage"
    if scene:
        what += f", scene {scene}"
    if not yes and not typer.confirm(f"Purge dead letters of {what}? This cannot be undone"):
        typer.echo("nothing purged")
        raise typer.Exit(1)
    queue = adapters(out).dead_letters
    purged = ops.purge(queue, stage=stage, scene=scene, max_messages=max_messages)
    typer.echo(f"{len(purged)} purged")
