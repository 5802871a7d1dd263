"""`bp learnability EPISODES_DIR --export DIR`: the learnability check of each robot's episodes.

EPISODES_DIR is laid out as `bp collect` and the submit stage write it (`<robot>/<episode>/`);
the export folder holds the `scene_graph.json` and `task_config.json` the episodes came from.
One JSON result per robot goes to `--out DIR/<robot>.json` (create-only: a result is never
rewritten) or, without `--out`, to standard output.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from bp_scene_contract import read_scene_graph, read_task_config

from bp_collector.backends import create_backend
from bp_collector.learnability.check import check_learnability
from bp_collector.policy import PolicyEvaluator
from bp_collector.settings import CollectorSettings


def learnability(
    episodes_dir: Path = typer.Argument(..., help="EPISODES_DIR/<robot>/<episode>/."),
    export: Path = typer.Option(..., help="Folder with scene_graph.json and task_config.json."),
    robots: str | None = typer.Option(None, help="Comma-separated robots (default: all)."),
    held_out: int = typer.Option(5, min=1, max=100, help="Unseen seeds per task."),
    max_tasks: int = typer.Option(2, min=1, max=50, help="Tasks checked per robot."),
    run_id: str | None = typer.Option(None, help="The run the episodes belong to, recorded."),
    out: Path | None = typer.Option(None, help="Folder for <robot>.json (create-only)."),
    shuffle_actions: bool = typer.Option(
        False, help="Control: train on actions shuffled across frames (should not learn)."
    ),
) -> None:
    """Train a behaviour-cloning policy on each robot's demonstrations; run it on unseen seeds."""
    scene = read_scene_graph(json.loads((export / "scene_graph.json").read_text()))
    tasks = read_task_config(json.loads((export / "task_config.json").read_text()))
    found = sorted(p for p in episodes_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    wanted = [r.strip() for r in robots.split(",")] if robots else [p.name for p in found]
    backend = create_backend(CollectorSettings().collector_backend)
    if not isinstance(backend, PolicyEvaluator):
        typer.secho("error: this backend cannot run a policy", fg="red", err=True)
        raise typer.Exit(2)
    try:
        for robot in wanted:
            folders = [p for p in (episodes_dir / robot).iterdir() if p.is_dir()]
            result = check_learnability(
                folders,
                scene,
                tasks,
                robot,
                backend,
                held_out=held_out,
                max_tasks=max_tasks,
                shuffle_actions=shuffle_actions,
            )
            record = {**result.record(), "run_id": run_id}
            text = json.dumps(record, indent=2) + "\n"
            if out is None:
                typer.echo(text)
                continue
            out.mkdir(parents=True, exist_ok=True)
            with (out / f"{robot}.json").open("x") as handle:
                handle.write(text)
            typer.echo(
                f"{robot}: {result.successes}/{result.evaluations} held-out runs succeed after "
                f"training on {result.training_episodes} episodes ({result.seconds:.0f} s)"
            )
    finally:
        backend.close()
