"""`bp import EPISODES_DIR --out DIR [--format v3.0|v2.1]`: the import stage alone, on local files.

EPISODES_DIR is laid out as `bp collect` writes it: one folder per robot, holding one folder per
episode. DIR receives one folder per robot, as the stage writes it under
`runs/{scene}/{run}/lerobot/{robot}/`. The run id is derived from the episodes' manifests, so
importing the same episodes again finds them committed and does nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

import typer
from bp_common import __version__
from bp_common.errors import PipelineError
from bp_episode_format import FORMAT_NAME, FORMAT_VERSION, MANIFEST

from bp_import.import_config import LeRobotSettings, QualitySettings
from bp_import.import_manifest import IMPORT_MANIFEST
from bp_import.run_import import import_run

_OUR_NAMES = {"meta", "data", "videos", "ground_truth", "quality", "analytics", "README.md"}


def robot_folders(episodes_dir: Path) -> dict[str, list[Path]]:
    """Robot folder -> its episode folders (every non-hidden sub-folder)."""
    robots: dict[str, list[Path]] = {}
    for robot in sorted(p for p in episodes_dir.iterdir() if p.is_dir()):
        episodes = sorted(p for p in robot.iterdir() if p.is_dir() and not p.name.startswith("."))
        if episodes and not robot.name.startswith("."):
            robots[robot.name] = episodes
    return robots


def input_digest(robots: dict[str, list[Path]]) -> str:
    """sha256 over every episode manifest (which lists its files' sha256), folder by folder."""
    digest = hashlib.sha256()
    for robot, folders in sorted(robots.items()):
        for folder in folders:
            manifest = folder / MANIFEST
            body = manifest.read_bytes() if manifest.is_file() else b""
            digest.update(f"{robot}/{folder.name}:{hashlib.sha256(body).hexdigest()}\n".encode())
    return digest.hexdigest()


def scene_of(episodes_dir: Path, robots: dict[str, list[Path]]) -> str:
    collection = episodes_dir / "collection_manifest.json"
    try:
        return str(json.loads(collection.read_text())["scene_id"])
    except (OSError, ValueError, KeyError):
        pass
    seen: Counter[str] = Counter()
    for folders in robots.values():
        for folder in folders:
            try:
                seen[str(json.loads((folder / MANIFEST).read_text())["scene_id"])] += 1
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return seen.most_common(1)[0][0] if seen else episodes_dir.resolve().name


def _committed_digest(root: Path) -> str | None:
    try:
        document = json.loads((root / IMPORT_MANIFEST).read_text())
        return str(document["provenance"]["input"]["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def import_episodes(
    episodes_dir: Path = typer.Argument(
        ..., help="Episodes as `bp collect` writes them: EPISODES_DIR/<robot>/<episode>/."
    ),
    out: Path = typer.Option(..., "--out", help="Folder for one dataset per robot."),
    codebase: str | None = typer.Option(
        None,
        "--format",
        help="LeRobot codebase version: v3.0 or v2.1 (default: BP_LEROBOT_FORMAT, else v3.0).",
    ),
    robots: str | None = typer.Option(None, help="Comma-separated robots (default: all)."),
) -> None:
    """Validate, score and gate raw episodes; write LeRobot datasets, reports and manifests."""
    if codebase not in (None, "v3.0", "v2.1"):
        raise typer.BadParameter("must be v3.0 or v2.1", param_hint="--format")
    if not episodes_dir.is_dir():
        raise typer.BadParameter(f"{episodes_dir} is not a folder", param_hint="EPISODES_DIR")
    found = robot_folders(episodes_dir)
    if robots:
        wanted = [r.strip() for r in robots.split(",") if r.strip()]
        unknown = sorted(set(wanted) - set(found))
        if unknown:
            raise typer.BadParameter(f"no episode folders for {unknown}", param_hint="--robots")
        found = {r: found[r] for r in wanted}
    if not found:
        typer.secho(f"error: no robot folders with episodes in {episodes_dir}", fg="red", err=True)
        raise typer.Exit(2)
    quality = QualitySettings()
    lerobot = LeRobotSettings(format=codebase) if codebase else LeRobotSettings()  # type: ignore[arg-type]
    digest = input_digest(found)
    scene_id, run_id = scene_of(episodes_dir, found), f"run-{digest[:20]}"
    todo: dict[str, list[Path]] = {}
    for robot, folders in found.items():
        root = out / robot
        if _committed_digest(root) == digest:
            typer.echo(f"{robot}: already imported (committed {root / IMPORT_MANIFEST})")
        elif root.exists() and (
            (root / IMPORT_MANIFEST).exists() or not {p.name for p in root.iterdir()} <= _OUR_NAMES
        ):
            typer.secho(
                f"error: {root} holds another import; choose another --out", fg="red", err=True
            )
            raise typer.Exit(2)
        else:
            shutil.rmtree(root, ignore_errors=True)  # an uncommitted earlier attempt
            todo[robot] = folders
    if not todo:
        return

    def provenance(robot: str) -> dict[str, Any]:
        return {
            "pipeline_version": __version__,
            "import_version": version("bp-import"),
            "episode_format": {"name": FORMAT_NAME, "version": FORMAT_VERSION},
            "configuration": {"quality": quality.record(), "lerobot": lerobot.record()},
            "input": {
                "path": str((episodes_dir / robot).resolve()),
                "digest": digest,
                "episode_folders": len(found[robot]),
                "scene_id": scene_id,
                "run_id": run_id,
            },
        }

    typer.echo(
        f"importing {sum(map(len, todo.values()))} episode folders of "
        f"{', '.join(todo)} (scene {scene_id}, {lerobot.format})..."
    )
    try:
        result = import_run(scene_id, run_id, todo, out, quality, lerobot, provenance)
    except PipelineError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from exc
    for robot, robot_quality in result.qualities.items():
        done = result.imports.get(robot)
        final = done.quality if done is not None else robot_quality
        c = final.counts
        state = "committed" if done is not None and done.committed else "held back"
        frames = f", {done.summary.total_frames} frames" if done and done.summary else ""
        typer.echo(
            f"{robot:<13} {c.episodes} episodes, {c.valid} valid, {c.succeeded} "
            f"succeeded, {c.included} in the dataset{frames}: {state} -> {out / robot}"
        )
        for reason, count in c.excluded.items():
            typer.echo(f"{'':<13} left out: {count} {reason}")
    if not result.passed:
        typer.secho(f"quality gates failed: {result.note()}", fg="red", err=True)
        raise typer.Exit(1)
