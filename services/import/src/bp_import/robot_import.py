"""One robot's import on local folders: assess its episodes, write its dataset, report, commit.

Two steps, so that a run can check every robot's gates before writing any dataset:
`assess_robot` validates and measures every episode folder and evaluates the gates;
`write_robot_dataset` writes the LeRobot dataset, its ground-truth pack and the quality report
into the robot's folder and commits it with `import_manifest.json`, written last. When the
gates fail, `write_quality_report` alone writes the report. The robot's folder:

    meta/ data/ videos/ README.md          the LeRobot dataset (v3.0, or v2.1 on request)
    ground_truth/                          depth, segmentation, boxes, cameras (`ground_truth`)
    quality/quality_report.json|.html, quality/contact_sheet.png
    analytics/analytics.json|.html         trajectory, embodiment, coverage, language, contact,
                                           sim-to-real (`bp_import.analytics`), summed up in
                                           the dataset card
    import_manifest.json                   the inventory; its presence commits the folder
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bp_import.analytics.document import (
    ANALYTICS_DIR,
    ANALYTICS_HTML,
    ANALYTICS_JSON,
    MeasuredEpisode,
    force_trace,
    robot_analytics,
    run_trajectories,
    summary_lines,
)
from bp_import.analytics.language import assign_instructions
from bp_import.analytics.page import analytics_html
from bp_import.episodes.adapter import (
    CONTACT_FORCE,
    dataset_spec,
    episode_frames,
    records_contact_force,
)
from bp_import.episodes.reopen import reopen
from bp_import.episodes.selection import (
    EpisodeAssessment,
    ExclusionReason,
    assess_episode,
    dataset_layout,
    path_preview,
    select_episodes,
)
from bp_import.import_config import LeRobotSettings, QualitySettings
from bp_import.import_manifest import (
    IMPORT_MANIFEST,
    commit_import_manifest,
    import_manifest,
    read_import_manifest,
)
from bp_import.lerobot.episode_frames import EpisodeFramesError
from bp_import.lerobot.writer import DatasetSummary, LeRobotDatasetWriter
from bp_import.quality.contact_sheet import SheetRow, contact_sheet_png, sample_frames
from bp_import.quality.gates import EpisodeCounts, dataset_gates
from bp_import.quality.report import (
    CONTACT_SHEET,
    REPORT_DIR,
    REPORT_HTML,
    REPORT_JSON,
    RobotQuality,
    quality_document,
    quality_summary,
)
from bp_import.quality.report_page import report_html
from bp_import.streamed_json import write_json

GROUND_TRUTH_DIR = "ground_truth"
SHEET_EPISODES = 4
TRAJECTORY_EPISODES = 4


@dataclass(frozen=True)
class RobotImport:
    """What one robot's import produced; `manifest_path` is set when the folder was committed."""

    quality: RobotQuality
    root: Path
    codebase_version: str
    summary: DatasetSummary | None
    manifest_path: Path | None
    write_seconds: float = 0.0
    """How long writing the dataset, ground truth and report took."""

    @property
    def committed(self) -> bool:
        return self.manifest_path is not None

    def manifest(self) -> dict[str, Any]:
        """The committed manifest, read again: its file list grows with the episodes, so it is
        not kept."""
        assert self.manifest_path is not None, "not committed"
        return read_import_manifest(self.root)


def assess_robot(
    scene_id: str, run_id: str, robot: str, episode_dirs: Sequence[Path], settings: QualitySettings
) -> RobotQuality:
    """Validate, measure and select every episode folder, then evaluate the robot's gates."""
    folders = sorted(episode_dirs, key=lambda p: p.name)
    layout = dataset_layout(folders)
    assessments = [assess_episode(path, settings, robot, layout) for path in folders]
    selected = select_episodes(assessments, settings)
    return _with_gates(
        RobotQuality(
            scene_id=scene_id,
            run_id=run_id,
            robot=robot,
            layout=layout,
            assessments=selected,
            counts=EpisodeCounts.of(selected),
            gates=[],
            settings=settings,
        )
    )


def _with_gates(quality: RobotQuality) -> RobotQuality:
    counts = EpisodeCounts.of(quality.assessments)
    return replace(quality, counts=counts, gates=dataset_gates(counts, quality.settings))


def _clear(root: Path, keep: str = REPORT_DIR) -> None:
    if root.is_dir():
        for child in root.iterdir():
            if child.name != keep:
                shutil.rmtree(child) if child.is_dir() else child.unlink()


@dataclass(frozen=True)
class WrittenEpisodes:
    """What writing the episodes settled: who is in, which instruction each carries, and
    whether the dataset has the contact-force feature."""

    quality: RobotQuality
    summary: DatasetSummary | None
    instructions: dict[str, str]
    contact_feature: str | None


def _write_episodes(
    quality: RobotQuality, root: Path, lerobot: LeRobotSettings, card: Mapping[str, str]
) -> WrittenEpisodes:
    assert quality.layout is not None
    chosen = [a.facts for a in quality.assessments if a.included and a.facts is not None]
    # The feature needs every episode to have it; episodes recorded before it was added lack it.
    force = bool(chosen) and all(
        records_contact_force(a.path) for a in quality.assessments if a.included and a.facts
    )
    instructions = assign_instructions(chosen)
    writer = LeRobotDatasetWriter(
        root,
        dataset_spec(quality.robot, quality.layout, contact_force=force),
        codebase=lerobot.format,
        video=lerobot.video(),
        ground_truth_root=root / GROUND_TRUTH_DIR,
        provenance=card,
    )
    updated: list[EpisodeAssessment] = []
    try:
        for item in quality.assessments:
            if not item.included or item.facts is None:
                updated.append(item)
                continue
            try:
                raw, manifest = reopen(item.path)
                record = writer.add_episode(
                    episode_frames(
                        raw,
                        manifest,
                        task=instructions.get(manifest.episode_id),
                        contact_force=force,
                    )
                )
            except (EpisodeFramesError, OSError, ValueError) as error:
                updated.append(item.excluded(ExclusionReason.REJECTED_BY_WRITER, str(error)))
            else:
                updated.append(replace(item, dataset_index=record.episode_index))
        if not any(item.included for item in updated):
            writer.abort()
            return WrittenEpisodes(
                _with_gates(replace(quality, assessments=updated)), None, instructions, None
            )
        summary = writer.finalize()
    except BaseException:
        writer.abort()
        raise
    kept = {a.episode_id for a in updated if a.included}
    return WrittenEpisodes(
        _with_gates(replace(quality, assessments=updated)),
        summary,
        {k: v for k, v in instructions.items() if k in kept},
        CONTACT_FORCE if force else None,
    )


def _sheet_rows(quality: RobotQuality) -> list[SheetRow]:
    shown = [a for a in quality.assessments if a.included] or [
        a for a in quality.assessments if a.is_valid
    ]
    rows: list[SheetRow] = []
    for item in shown[:SHEET_EPISODES]:
        raw, _ = reopen(item.path)
        for camera in raw.cameras:
            try:
                frames = sample_frames(raw, camera)
            except Exception:  # an undecodable stream shows as an empty row, not a failed run
                frames = []
            rows.append(SheetRow(f"{_label(item)}\n{camera}", frames))
    return rows


def _example_paths(quality: RobotQuality) -> list[tuple[str, NDArray[np.float64]]]:
    shown = [a for a in quality.assessments if a.included] or [
        a for a in quality.assessments if a.is_valid
    ]
    return [
        (_label(a), path_preview(reopen(a.path)[0].states())) for a in shown[:TRAJECTORY_EPISODES]
    ]


def _label(item: EpisodeAssessment) -> str:
    return f"{item.facts.task_id} s{item.facts.seed}" if item.facts else item.source


def write_quality_report(
    quality: RobotQuality, root: Path, dataset: dict[str, Any] | None = None
) -> Path:
    """quality/quality_report.json, .html and contact_sheet.png under `root`."""
    folder = root / REPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    document = quality_document(quality, dataset)
    sheet = contact_sheet_png(_sheet_rows(quality))
    (folder / CONTACT_SHEET).write_bytes(sheet)
    (folder / REPORT_HTML).write_text(report_html(document, _example_paths(quality), sheet))
    path = folder / REPORT_JSON
    write_json(path, document)
    return path


def write_analytics(
    written: WrittenEpisodes,
    root: Path,
    measured: Mapping[str, Collection[MeasuredEpisode]],
) -> dict[str, Any]:
    """analytics/analytics.json and .html under `root`, and their summary in README.md."""
    quality = written.quality
    document = robot_analytics(
        quality, measured, written.instructions, contact_feature=written.contact_feature
    )
    folder = root / ANALYTICS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / ANALYTICS_JSON, document)
    trace = force_trace(measured.get(quality.robot, []))
    (folder / ANALYTICS_HTML).write_text(analytics_html(document, trace))
    card = root / "README.md"
    if card.is_file():
        card.write_text(
            card.read_text().rstrip("\n") + "\n\n" + "\n".join(summary_lines(document)) + "\n"
        )
    return document


def write_robot_dataset(
    quality: RobotQuality,
    root: Path,
    lerobot: LeRobotSettings,
    provenance: Mapping[str, Any],
    measured: Mapping[str, Collection[MeasuredEpisode]] | None = None,
) -> RobotImport:
    """Write the dataset, ground truth, report and analytics; commit with the manifest if gates
    still hold.

    `root` must be absent or empty. `measured` holds every robot of the run, measured once by
    `run_trajectories` (the embodiment matrix compares them); alone, the robot is measured
    here. If the writer refuses episodes so that a gate no longer holds, the dataset files are
    removed and only the report stays (nothing is committed).
    """
    started = time.monotonic()
    card = {
        "scene": quality.scene_id,
        "run": quality.run_id,
        "pipeline version": str(provenance.get("pipeline_version", "")),
        "quality report": f"{REPORT_DIR}/{REPORT_HTML}",
    }
    episodes = _write_episodes(quality, root, lerobot, card)
    written, summary = episodes.quality, episodes.summary
    dataset = (
        None
        if summary is None
        else {
            "codebase_version": summary.codebase_version,
            "episodes": summary.total_episodes,
            "frames": summary.total_frames,
            "tasks": len(summary.tasks),
            "ground_truth": GROUND_TRUTH_DIR if summary.ground_truth_root else None,
        }
    )
    if not written.passed or summary is None:
        _clear(root)
        write_quality_report(written, root, None)
        return RobotImport(written, root, lerobot.format, None, None, time.monotonic() - started)
    write_quality_report(written, root, dataset)
    if measured is not None:
        write_analytics(episodes, root, measured)
    else:
        with tempfile.TemporaryDirectory(prefix="bp-import-measures-", dir=root.parent) as work:
            write_analytics(episodes, root, run_trajectories({written.robot: written}, Path(work)))
    counts = {
        **written.counts.record(),
        "dataset_episodes": summary.total_episodes,
        "frames": summary.total_frames,
        "tasks": len(summary.tasks),
    }
    document = import_manifest(
        root,
        scene_id=quality.scene_id,
        run_id=quality.run_id,
        robot=quality.robot,
        codebase_version=summary.codebase_version,
        counts=counts,
        quality=quality_summary(written),
        provenance=provenance,
    )
    manifest = commit_import_manifest(
        root, document, root.parent / f".{root.name}.{IMPORT_MANIFEST}"
    )
    return RobotImport(
        written, root, summary.codebase_version, summary, manifest, time.monotonic() - started
    )
