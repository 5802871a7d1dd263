"""`bp collect EXPORT_DIR --out DIR`: collect episodes for an export folder on local files."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import typer

from bp_submit.collection import assigned_tasks


def _read_export(folder: Path) -> tuple[bytes, bytes, str]:
    """The scene graph and task config, as the folder's export manifest names them."""
    from bp_common.blobstore.local import LocalBlobStore
    from bp_common.runtime.attempts import CommitMismatch, read_committed

    try:
        committed = read_committed(LocalBlobStore(folder), "export_manifest.json")
        if committed is None:
            raise typer.BadParameter(
                f"{folder} has no export_manifest.json (run `bp export` first)"
            )
        graph, tasks = committed.read("scene_graph.json"), committed.read("task_config.json")
    except CommitMismatch as exc:
        raise typer.BadParameter(f"{folder}: {exc}") from exc
    return graph, tasks, committed.sha256


def collect(
    export_dir: Path = typer.Argument(..., help="An export folder, as `bp export` writes it."),
    out: Path = typer.Option(..., "--out", help="Folder for the episodes and manifests."),
    collector: str | None = typer.Option(
        None,
        "--collector",
        help="host:port of a running collector (mTLS unless BP_COLLECTOR_INSECURE in local);"
        " default: start one on loopback for this command.",
    ),
    robots: str | None = typer.Option(None, help="Comma-separated robots (default: all)."),
    episodes_per_task: int = typer.Option(1, min=1, help="Episodes per robot and task."),
    seconds: float = typer.Option(10.0, min=0.1, help="Longest episode, in seconds."),
    width: int = typer.Option(0, help="Image width (0: the collector's default, 224)."),
    height: int = typer.Option(0, help="Image height (0: the collector's default, 224)."),
    seed: int = typer.Option(0, min=0, help="First randomisation seed."),
    backend: str | None = typer.Option(
        None,
        "--backend",
        help="Simulator of the collector this command starts: mujoco or genie-sim"
        " [BP_COLLECTOR_BACKEND, mujoco]; a running collector (--collector) has its own.",
    ),
    genie_sim_address: str | None = typer.Option(
        None,
        "--genie-sim-address",
        help="host:port of the Genie Sim server, with --backend genie-sim"
        " [BP_GENIE_SIM_ADDRESS, 127.0.0.1:50051]; `bp genie-sim serve` answers there on MuJoCo.",
    ),
) -> None:
    """Collect episodes for an exported scene, with a progress bar; resumes when run again."""
    # Imported here: every `bp` command loads this module, only `collect` needs gRPC.
    from bp_collector_api import collector_pb2 as pb
    from bp_common.blobstore.local import LocalBlobStore
    from bp_common.config import Settings
    from bp_common.errors import PipelineError
    from bp_common.wiring import cloud_secrets
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from bp_submit.collection import Collection, CollectionPlan
    from bp_submit.config import SubmitConfig
    from bp_submit.connection import collector_client

    if collector and (backend or genie_sim_address):
        raise typer.BadParameter(
            "a running collector has its own backend: --backend and --genie-sim-address choose"
            " the one this command starts",
            param_hint="--collector",
        )
    if genie_sim_address and backend != "genie-sim":
        raise typer.BadParameter("needs --backend genie-sim", param_hint="--genie-sim-address")
    # The collector this command starts is a child process: it reads its backend from these.
    if backend:
        os.environ["BP_COLLECTOR_BACKEND"] = backend
    if genie_sim_address:
        os.environ["BP_GENIE_SIM_ADDRESS"] = genie_sim_address
    graph, tasks, export_sha = _read_export(export_dir)
    planned, left_out = assigned_tasks(json.loads(tasks))
    if robots:
        wanted = [r.strip() for r in robots.split(",") if r.strip()]
        unknown = sorted(set(wanted) - set(planned))
        if unknown:
            raise typer.BadParameter(
                f"no tasks for {unknown} in this export", param_hint="--robots"
            )
        planned = {r: planned[r] for r in wanted}
    if not planned:
        typer.echo("nothing to collect: no robot has a task in this export")
        return
    scene_id = json.loads(graph)["scene_id"]
    camera = pb.CameraSpec(width=width, height=height)
    params = f"{episodes_per_task}:{seconds}:{width}x{height}:{seed}"
    if backend:
        params += f":{backend}"
    key_prefix = f"collect:{export_sha[:16]}:{hashlib.sha256(params.encode()).hexdigest()[:8]}"
    plan = CollectionPlan(
        scene_id=scene_id,
        key_prefix=key_prefix,
        robots=planned,
        scene_graph_json=graph,
        task_config_json=tasks,
        episodes_per_task=episodes_per_task,
        seed=seed,
        camera=camera,
        max_episode_seconds=seconds,
        labels={"scene_id": scene_id, "source": "bp collect"},
    )
    settings = Settings(collector_address=collector) if collector else Settings()
    config = SubmitConfig(embedded_collector="never" if collector else "always")
    out.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    started = time.monotonic()
    try:
        client = collector_client(settings, config, cloud_secrets(settings), out / ".collector")
        info = client.handshake()
        console.print(
            f"collector {client.address}: {pb.Backend.Name(info.backend)} {info.server_version},"
            f" API {info.api_version}, {info.limits.simulation_workers} simulation process(es)"
        )
        if left_out:
            console.print(f"no tasks for {', '.join(left_out)}: not collected")
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            rows = {
                r: bar.add_task(f"{r:<13}", total=len(t) * episodes_per_task, detail="")
                for r, t in planned.items()
            }

            def progress(robot: str, job: pb.Job) -> None:
                p = job.progress
                bar.update(
                    rows[robot],
                    total=p.episodes_total or None,
                    completed=p.episodes_recorded,
                    detail=f"{p.episodes_succeeded} succeeded, {p.episodes_running} running",
                )

            collection = Collection(client, info, LocalBlobStore(out), "", plan, progress)
            summaries = collection.run(until=time.monotonic() + 7 * 24 * 3600)
            collection.commit(summaries)
            for summary in summaries:
                bar.update(rows[summary.robot], completed=summary.episodes, total=summary.episodes)
    except PipelineError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2 if exc.permanent else 1) from exc
    elapsed = time.monotonic() - started
    total = sum(s.episodes for s in summaries)
    for s in summaries:
        typer.echo(
            f"{s.robot:<13} {s.episodes:>4} episodes  success {s.success_rate:.0%}"
            f"  collision-free {s.collision_free_rate:.0%}  -> {out / s.robot}"
        )
    typer.echo(
        f"{total} episodes in {elapsed:.0f}s ({total / elapsed * 3600:.0f}/hour);"
        f" manifest {out / 'collection_manifest.json'}"
    )
