"""The import stage: `episodes-collected` in, one LeRobot dataset per robot, `datasets-ready` out.

Each robot's raw episodes are streamed from the blob store into a temporary folder, validated,
measured and gated (`run_import`). Every robot is gated on its own: a passing robot's dataset,
ground truth and quality report are written and uploaded under this delivery's own attempt
prefix, `runs/{scene}/{run}/lerobot/{robot}/attempts/{attempt}/`, and committed by
`runs/{scene}/{run}/lerobot/{robot}/import_manifest.json`, create-only, which names that attempt
(bp_common.runtime.attempts). A robot that fails its gates is held back: its quality report is
uploaded under the attempt and committed by `held_back.json` (create-only too), which names the
failed gates. `datasets-ready` lists the publishable robots and names the held-back ones, and the
run ends `partially_published`; when no robot passes, the stage stops the run as
`quality_failed`, publishing nothing. A concurrent delivery that loses a commit removes only its
own attempt. A redelivery re-emits from the committed manifests without redoing any work.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections import Counter
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bp_common import __version__
from bp_common.contracts.events import (
    DatasetsReady,
    EpisodesCollected,
    HeldBackDataset,
    RobotDataset,
    RobotEpisodes,
)
from bp_common.errors import InvalidInput, NotFound
from bp_common.ledger import StageState
from bp_common.runtime.attempts import AttemptWriter, Committed, read_committed
from bp_common.runtime.limits import Footprint
from bp_common.runtime.stage import Stage, StageContext, StageOutput, StageStop
from bp_episode_format import FORMAT_NAME, FORMAT_VERSION

from bp_import.episodes.selection import ExclusionReason
from bp_import.episodes.validation import DefectReason
from bp_import.import_config import LeRobotSettings, QualitySettings
from bp_import.import_manifest import IMPORT_MANIFEST
from bp_import.quality.report import REPORT_DIR, REPORT_HTML, quality_summary
from bp_import.robot_import import RobotImport
from bp_import.run_import import RunImport, held_back_reasons, import_run

HELD_BACK_MANIFEST = "held_back.json"
"""Commits a robot held back by its gates: the reasons, and the attempt holding its report."""

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


def dataset_unit(ctx: StageContext, robot: str) -> str:
    """The robot's folder: its attempts, and the manifest that commits one of them."""
    return f"{ctx.run_prefix}lerobot/{robot}/"


def _robot_dataset(committed: Committed) -> RobotDataset:
    manifest = committed.document
    counts, quality = manifest["counts"], manifest["quality"]
    return RobotDataset(
        robot=manifest["robot"],
        prefix=committed.root,
        manifest=committed.manifest_key,
        codebase_version=manifest["codebase_version"],
        episodes=counts["dataset_episodes"],
        frames=counts["frames"],
        quality_pass_rate=quality["pass_rate"],
    )


def _committed(ctx: StageContext, robot: str) -> Committed | None:
    return read_committed(ctx.blobs, dataset_unit(ctx, robot) + IMPORT_MANIFEST)


def _held_back(ctx: StageContext, robot: str) -> Committed | None:
    return read_committed(ctx.blobs, dataset_unit(ctx, robot) + HELD_BACK_MANIFEST)


def _held_back_dataset(committed: Committed) -> HeldBackDataset:
    report = f"{REPORT_DIR}/{REPORT_HTML}"
    return HeldBackDataset(
        robot=committed.document["robot"],
        reasons=committed.document["reasons"],
        manifest=committed.manifest_key,
        report=committed.root + report if report in committed.files else None,
    )


def _output(
    ctx: StageContext,
    event: EpisodesCollected,
    commits: dict[str, Committed],
    held: dict[str, Committed],
    counts: dict[str, float],
) -> StageOutput | StageStop:
    """The publishable robots' datasets and the held-back ones; `quality_failed` when none is
    publishable."""
    held_back = [_held_back_dataset(held[r]) for r in sorted(held)]
    why = {h.robot: ", ".join(h.reasons) for h in held_back}
    if not commits:
        note = "; ".join(f"{robot}: {reasons}" for robot, reasons in why.items())
        return StageStop(StageState.QUALITY_FAILED, f"quality gates failed: {note}", counts=counts)
    datasets = [_robot_dataset(commits[r.robot]) for r in event.robots if r.robot in commits]
    counts = {
        **counts,
        "datasets": len(datasets),
        "held_back": len(held_back),
        "episodes": sum(d.episodes for d in datasets),
        "frames": sum(d.frames for d in datasets),
    }
    for robot, committed in commits.items():
        manifest = committed.document
        counts[f"{robot}.episodes"] = manifest["counts"]["dataset_episodes"]
        counts[f"{robot}.frames"] = manifest["counts"]["frames"]
        counts[f"{robot}.pass_rate"] = manifest["quality"]["pass_rate"]
    event_out = DatasetsReady(
        scene_id=event.scene_id,
        run_id=event.run_id,
        bucket=event.bucket,
        datasets=datasets,
        held_back=held_back,
    )
    note = ", ".join(f"{d.robot} {d.codebase_version}" for d in datasets)
    if why:
        note += "; held back " + "; ".join(f"{robot}: {reasons}" for robot, reasons in why.items())
    return StageOutput(event_out, counts=counts, note=note, held_back=why)


def _download(ctx: StageContext, key: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with ctx.blobs.open_read(key) as reader, target.open("wb") as writer:
        shutil.copyfileobj(reader, writer, CHUNK)


def _robot_episodes(
    ctx: StageContext, robot: RobotEpisodes, folder: Path
) -> tuple[list[Path], dict[str, Any]]:
    """Download the episode folders the robot's manifest lists; returns folders and provenance.

    The manifest is the commit record: a folder under the prefix that it does not list is an
    attempt that never committed (its collector was killed while copying it, and a redelivery
    committed another attempt), not an episode, so it is neither read nor counted. Folders the
    manifest lists but the store lacks are created empty, so that they are reported
    (`not_committed`) rather than silently missing.
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
    folders = {name for name in listed if name and "/" not in name and name not in (".", "..")}
    uncommitted: set[str] = set()
    for blob in ctx.blobs.list(robot.prefix):
        relative = blob.key[len(robot.prefix) :]
        name, _, rest = relative.partition("/")
        if not rest:  # the robot's own files (manifest.json, the episodes' commit markers)
            continue
        if name not in folders:
            uncommitted.add(name)
            continue
        _download(ctx, blob.key, folder / name / rest)
    for name in folders:
        (folder / name).mkdir(parents=True, exist_ok=True)
    if uncommitted:
        ctx.log.info(
            "%s: %d episode attempt(s) never committed, not read: %s",
            robot.robot,
            len(uncommitted),
            ", ".join(sorted(uncommitted)[:5]),
        )
    provenance = {
        "bucket": ctx.blobs.uri(),
        "episodes_prefix": robot.prefix,
        "robot_manifest": robot.manifest,
        "robot_manifest_sha256": hashlib.sha256(manifest_raw).hexdigest(),
        "robot_manifest_generation": info.generation if info is not None else None,
        "episodes_listed": len(listed),
        "episode_folders": len(folders),
        "uncommitted_folders": len(uncommitted),
    }
    return [folder / name for name in sorted(folders)], provenance


def _upload_tree(attempt: AttemptWriter, root: Path, files: dict[str, dict[str, Any]]) -> None:
    """Stream each file up under the attempt's prefix, checked against its recorded sha256."""
    for name in sorted(files):
        path = root / name
        attempt.put_file(
            name,
            path,
            sha256=files[name].get("sha256"),
            content_type=_CONTENT_TYPES.get(path.suffix),
        )


def _reports(root: Path) -> dict[str, dict[str, Any]]:
    folder = root / REPORT_DIR
    return {p.relative_to(root).as_posix(): {} for p in sorted(folder.rglob("*")) if p.is_file()}


EXCLUSION_REASONS = frozenset(r.value for r in (*ExclusionReason, *DefectReason))


def _measure(ctx: StageContext, result: RunImport) -> None:
    """Each robot's assessment and dataset on the pipeline's metrics (bp_common.metrics)."""
    m = ctx.metrics
    for robot, assessed in result.qualities.items():
        done = result.imports.get(robot)
        final = done.quality if done is not None else assessed
        included = sum(1 for a in final.assessments if a.included)
        m.import_episodes.add(included, robot=robot, verdict="included")
        m.import_episodes.add(len(final.assessments) - included, robot=robot, verdict="excluded")
        excluded = Counter(a.reason or "unknown" for a in final.assessments if not a.included)
        # Every known reason's series, at 0 when no episode had it: a chart reads 0, not no data.
        for reason in sorted(EXCLUSION_REASONS | set(excluded)):
            m.import_excluded.add(excluded[reason], robot=robot, reason=reason)
        if done is None or not done.committed or done.summary is None:
            m.import_datasets.add(1, robot=robot, verdict="failed")
            continue
        m.import_datasets.add(1, robot=robot, verdict="passed")
        m.import_frames.add(done.summary.total_frames, robot=robot)
        if done.write_seconds > 0:
            rate = done.summary.total_frames / done.write_seconds
            m.import_frame_rate.record(rate, robot=robot)


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
        commits = {r: c for r in robots if (c := _committed(ctx, r)) is not None}
        held = {r: c for r in robots if r not in commits and (c := _held_back(ctx, r)) is not None}
        if len(commits) + len(held) == len(robots):
            return _output(ctx, event, commits, held, {})
        started = datetime.now(UTC).isoformat()
        with tempfile.TemporaryDirectory(prefix="bp-import-") as tmp:
            work = Path(tmp)
            episodes: dict[str, list[Path]] = {}
            inputs: dict[str, dict[str, Any]] = {}
            for robot in event.robots:
                if robot.robot not in commits and robot.robot not in held:
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

            def publish(robot: str, root: Path, done: RobotImport) -> None:
                with AttemptWriter(
                    ctx.blobs,
                    dataset_unit(ctx, robot),
                    ctx.attempt_id,
                    IMPORT_MANIFEST if done.committed else HELD_BACK_MANIFEST,
                    ctx.lease_check,
                ) as attempt:
                    if not done.committed:
                        _upload_tree(attempt, root, _reports(root))  # the report alone
                        held[robot] = attempt.commit(
                            {
                                "format_version": 1,
                                "scene_id": ctx.scene_id,
                                "run_id": ctx.run_id,
                                "robot": robot,
                                "reasons": held_back_reasons(done.quality),
                                "quality": quality_summary(done.quality),
                                "provenance": provenance(robot),
                            }
                        )
                    else:
                        manifest = done.manifest()
                        _upload_tree(attempt, root, manifest["files"])
                        # a concurrent delivery may have committed this robot first: its
                        # commit stands, and this attempt's files are removed
                        commits[robot] = attempt.commit(manifest)
                shutil.rmtree(root, ignore_errors=True)
                shutil.rmtree(work / "episodes" / robot, ignore_errors=True)

            result = import_run(
                ctx.scene_id, ctx.run_id, episodes, work / "out", gates, output, provenance, publish
            )
        _measure(ctx, result)
        counts = {
            f"{robot}.{name}": float(value)
            for robot, q in result.qualities.items()
            for name, value in q.counts.record().items()
            if not isinstance(value, dict)
        }
        return _output(ctx, event, commits, held, counts)

    # Encoding keeps a core busy per camera stream and holds a few episodes' frames in memory.
    return Stage(name="import", handle=handle, footprint=Footprint(cpus=1.0, memory_mb=2048))


IMPORT = make_import_stage()
