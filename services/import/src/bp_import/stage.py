"""The import stage: `episodes-collected` in, one LeRobot dataset per robot, `datasets-ready` out.

Each robot's raw episodes are streamed from the blob store into a temporary folder, validated,
measured and gated (`run_import`); when every robot passes, its dataset, ground truth and
quality report are written and uploaded under `runs/{scene}/{run}/lerobot/{robot}/`, and
`import_manifest.json` is written there last, create-only: its presence commits the robot.
A redelivery re-emits from the committed manifests without redoing any work. A failing gate
uploads the quality reports and stops the run as `quality_failed`, publishing nothing.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bp_common import __version__
from bp_common.contracts.events import DatasetsReady, EpisodesCollected, RobotDataset, RobotEpisodes
from bp_common.errors import AlreadyExists, InvalidInput, NotFound
from bp_common.ledger import StageState
from bp_common.runtime.stage import Stage, StageContext, StageOutput, StageStop
from bp_episode_format import FORMAT_NAME, FORMAT_VERSION

from bp_import.import_config import LeRobotSettings, QualitySettings
from bp_import.import_manifest import IMPORT_MANIFEST, manifest_bytes
from bp_import.quality.report import REPORT_DIR
from bp_import.robot_import import RobotImport
from bp_import.run_import import import_run

CHUNK = 1 << 20
_CONTENT_TYPES = {
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".parquet": "application/vnd.apache.parquet",
    ".mp4": "video/mp4",
    ".mkv": "video/x-matroska",
    ".png": "image/png",
    ".html": "text/html",
    ".md": "text/markdown",
}


def dataset_prefix(ctx: StageContext, robot: str) -> str:
    return f"{ctx.run_prefix}lerobot/{robot}/"


def _robot_dataset(prefix: str, manifest: dict[str, Any]) -> RobotDataset:
    counts, quality = manifest["counts"], manifest["quality"]
    return RobotDataset(
        robot=manifest["robot"],
        prefix=prefix,
        manifest=prefix + IMPORT_MANIFEST,
        codebase_version=manifest["codebase_version"],
        episodes=counts["dataset_episodes"],
        frames=counts["frames"],
        quality_pass_rate=quality["pass_rate"],
    )


def _committed(ctx: StageContext, robot: str) -> dict[str, Any] | None:
    key = dataset_prefix(ctx, robot) + IMPORT_MANIFEST
    try:
        return dict(json.loads(ctx.blobs.read_bytes(key)))
    except NotFound:
        return None


def _output(
    ctx: StageContext, event: EpisodesCollected, manifests: dict[str, dict[str, Any]]
) -> StageOutput:
    datasets = [
        _robot_dataset(dataset_prefix(ctx, r.robot), manifests[r.robot]) for r in event.robots
    ]
    counts: dict[str, float] = {
        "datasets": len(datasets),
        "episodes": sum(d.episodes for d in datasets),
        "frames": sum(d.frames for d in datasets),
    }
    for robot, manifest in manifests.items():
        counts[f"{robot}.episodes"] = manifest["counts"]["dataset_episodes"]
        counts[f"{robot}.frames"] = manifest["counts"]["frames"]
        counts[f"{robot}.pass_rate"] = manifest["quality"]["pass_rate"]
    event_out = DatasetsReady(
        scene_id=event.scene_id, run_id=event.run_id, bucket=event.bucket, datasets=datasets
    )
    return StageOutput(
        event_out,
        counts=counts,
        note=", ".join(f"{d.robot} {d.codebase_version}" for d in datasets),
    )


def _download(ctx: StageContext, key: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with ctx.blobs.open_read(key) as reader, target.open("wb") as writer:
        shutil.copyfileobj(reader, writer, CHUNK)


def _robot_episodes(
    ctx: StageContext, robot: RobotEpisodes, folder: Path
) -> tuple[list[Path], dict[str, Any]]:
    """Download every episode folder under the robot's prefix; returns folders and provenance.

    Folders the robot's manifest lists but the store lacks are created empty, so that they
    are reported (`not_committed`) rather than silently missing.
    """
    if not robot.prefix.startswith(ctx.run_prefix):
        raise InvalidInput(
            "episodes prefix lies outside the run", prefix=robot.prefix, run=ctx.run_id
        )
    try:
        manifest_raw = ctx.blobs.read_bytes(robot.manifest)
    except NotFound as exc:
        raise InvalidInput("robot episode manifest is missing", key=robot.manifest) from exc
    info = ctx.blobs.stat(robot.manifest)
    try:
        listed = [str(e["prefix"]).strip("/") for e in json.loads(manifest_raw)["episodes"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("robot episode manifest is unreadable", key=robot.manifest) from exc
    folders: set[str] = set()
    for blob in ctx.blobs.list(robot.prefix):
        relative = blob.key[len(robot.prefix) :]
        name, _, rest = relative.partition("/")
        if not rest:  # the robot's own files (manifest.json, job.json)
            continue
        folders.add(name)
        _download(ctx, blob.key, folder / name / rest)
    for name in listed:
        if name and "/" not in name and name not in (".", ".."):
            (folder / name).mkdir(parents=True, exist_ok=True)
            folders.add(name)
    provenance = {
        "bucket": ctx.blobs.uri(),
        "episodes_prefix": robot.prefix,
        "robot_manifest": robot.manifest,
        "robot_manifest_sha256": hashlib.sha256(manifest_raw).hexdigest(),
        "robot_manifest_generation": info.generation if info is not None else None,
        "episodes_listed": len(listed),
        "episode_folders": len(folders),
    }
    return [folder / name for name in sorted(folders)], provenance


def _upload_tree(
    ctx: StageContext, root: Path, prefix: str, files: dict[str, dict[str, Any]] | None = None
) -> None:
    """Stream each file up; with the manifest's inventory, each object carries its sha256."""
    names = (
        sorted(files)
        if files is not None
        else sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    )
    for name in names:
        path = root / name
        metadata = {"sha256": files[name]["sha256"]} if files is not None else None
        with (
            path.open("rb") as reader,
            ctx.blobs.open_write(
                prefix + name, content_type=_CONTENT_TYPES.get(path.suffix), metadata=metadata
            ) as writer,
        ):
            shutil.copyfileobj(reader, writer, CHUNK)


def make_import_stage(
    quality: QualitySettings | None = None, lerobot: LeRobotSettings | None = None
) -> Stage[EpisodesCollected]:
    """The stage; settings default to the BP_QUALITY_* / BP_LEROBOT_* environment, read at
    each delivery."""

    def handle(ctx: StageContext, event: EpisodesCollected) -> StageOutput | StageStop:
        gates = quality or QualitySettings()
        output = lerobot or LeRobotSettings()
        robots = sorted({r.robot for r in event.robots})
        if len(robots) != len(event.robots):
            raise InvalidInput("a robot is listed twice", robots=[r.robot for r in event.robots])
        manifests = {r: m for r in robots if (m := _committed(ctx, r)) is not None}
        if len(manifests) == len(robots):
            return _output(ctx, event, manifests)
        started = datetime.now(UTC).isoformat()
        with tempfile.TemporaryDirectory(prefix="bp-import-") as tmp:
            work = Path(tmp)
            episodes: dict[str, list[Path]] = {}
            inputs: dict[str, dict[str, Any]] = {}
            for robot in event.robots:
                if robot.robot not in manifests:
                    episodes[robot.robot], inputs[robot.robot] = _robot_episodes(
                        ctx, robot, work / "episodes" / robot.robot
                    )

            def provenance(robot: str) -> dict[str, Any]:
                return {
                    "pipeline_version": __version__,
                    "import_version": version("bp-import"),
                    "episode_format": {"name": FORMAT_NAME, "version": FORMAT_VERSION},
                    "configuration": {"quality": gates.record(), "lerobot": output.record()},
                    "input": {
                        **inputs[robot],
                        "scene_id": ctx.scene_id,
                        "run_id": ctx.run_id,
                        "episodes_collected_prefix": event.episodes_prefix,
                    },
                    "stage": {"name": ctx.stage, "attempt": ctx.attempt, "started": started},
                }

            def publish(robot: str, root: Path, done: RobotImport | None) -> None:
                prefix = dataset_prefix(ctx, robot)
                if done is None or done.manifest is None:
                    _upload_tree(ctx, root / REPORT_DIR, prefix + REPORT_DIR + "/")
                else:
                    _upload_tree(ctx, root, prefix, done.manifest["files"])
                    try:
                        ctx.blobs.create_only(
                            prefix + IMPORT_MANIFEST,
                            manifest_bytes(done.manifest),
                            content_type="application/json",
                        )
                        manifests[robot] = done.manifest
                    except AlreadyExists:  # a concurrent delivery committed this robot first
                        manifests[robot] = dict(
                            json.loads(ctx.blobs.read_bytes(prefix + IMPORT_MANIFEST))
                        )
                shutil.rmtree(root, ignore_errors=True)
                shutil.rmtree(work / "episodes" / robot, ignore_errors=True)

            result = import_run(
                ctx.scene_id, ctx.run_id, episodes, work / "out", gates, output, provenance, publish
            )
        counts = {
            f"{robot}.{name}": float(value)
            for robot, q in result.qualities.items()
            for name, value in q.counts.record().items()
            if not isinstance(value, dict)
        }
        if not result.passed:
            return StageStop(
                StageState.QUALITY_FAILED, f"quality gates failed: {result.note()}", counts=counts
            )
        return _output(ctx, event, manifests)

    return Stage(name="import", handle=handle)


IMPORT = make_import_stage()
