"""One robot's import on local folders: assess its episodes, write its dataset, report, commit.

Two steps, so that a run can check every robot's gates before writing any dataset:
`assess_robot` validates and measures every episode folder and evaluates the gates;
`write_robot_dataset` writes the LeRobot dataset, its ground-truth pack and the quality report
into the robot's folder and commits it with `import_manifest.json`, written last. When the
gates fail, `write_quality_report` alone writes the report. The robot's folder:

    meta/ data/ videos/ README.md          the LeRobot dataset (v3.0, or v2.1 on request)
    ground_truth/                          depth, segmentation, boxes, cameras (`ground_truth`)
    quality/quality_report.json|.html, quality/contact_sheet.png
    import_manifest.json                   the inventory; its presence commits the folder
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bp_import.episodes.adapter import dataset_spec, episode_frames
from bp_import.episodes.selection import (
    EpisodeAssessment,
    ExclusionReason,
    assess_episode,
    dataset_layout,
    select_episodes,
)
from bp_import.import_config import LeRobotSettings, QualitySettings
from bp_import.import_manifest import commit_import_manifest, import_manifest
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

GROUND_TRUTH_DIR = "ground_truth"
SHEET_EPISODES = 4
TRAJECTORY_EPISODES = 4


@dataclass(frozen=True)
class RobotImport:
    """What one robot's import produced; `manifest` is set when the folder was committed."""

    quality: RobotQuality
    root: Path
    codebase_version: str
    summary: DatasetSummary | None
    manifest: dict[str, Any] | None

    @property
    def committed(self) -> bool:
        return self.manifest is not None


def assess_robot(
    scene_id: str, run_id: str, robot: str, episode_dirs: Sequence[Path], settings: QualitySettings
) -> RobotQuality:
    """Validate, measure and select every episode folder, then evaluate the robot's gates."""
    folders = sorted(episode_dirs, key=lambda p: p.name)
    layout = dataset_layout(folders)
    assessments = [assess_episode(path, settings, robot, layout) for path in folders]
    selected = select_episodes(assessments, layout, settings)
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


def _write_episodes(
    quality: RobotQuality, root: Path, lerobot: LeRobotSettings, card: Mapping[str, str]
) -> tuple[RobotQuality, DatasetSummary | None]:
    assert quality.layout is not None
    writer = LeRobotDatasetWriter(
        root,
        dataset_spec(quality.robot, quality.layout),
        codebase=lerobot.format,
        video=lerobot.video(),
        ground_truth_root=root / GROUND_TRUTH_DIR,
        provenance=card,
    )
    updated: list[EpisodeAssessment] = []
    try:
        for item in quality.assessments:
            if not item.included or item.raw is None or item.manifest is None:
                updated.append(item)
                continue
            try:
                record = writer.add_episode(episode_frames(item.raw, item.manifest))
            except (EpisodeFramesError, OSError, ValueError) as error:
                updated.append(item.excluded(ExclusionReason.REJECTED_BY_WRITER, str(error)))
            else:
                updated.append(replace(item, dataset_index=record.episode_index))
        if not any(item.included for item in updated):
            writer.abort()
            return _with_gates(replace(quality, assessments=updated)), None
        summary = writer.finalize()
    except BaseException:
        writer.abort()
        raise
    return _with_gates(replace(quality, assessments=updated)), summary


def _sheet_rows(quality: RobotQuality) -> list[SheetRow]:
    shown = [a for a in quality.assessments if a.included] or [
        a for a in quality.assessments if a.is_valid
    ]
    rows: list[SheetRow] = []
    for item in shown[:SHEET_EPISODES]:
        assert item.raw is not None
        for camera in item.raw.cameras:
            try:
                frames = sample_frames(item.raw, camera)
            except Exception:  # an undecodable stream shows as an empty row, not a failed run
                frames = []
            rows.append(SheetRow(f"{_label(item)}\n{camera}", frames))
    return rows


def _example_paths(quality: RobotQuality) -> list[tuple[str, NDArray[np.float64]]]:
    shown = [a for a in quality.assessments if a.included] or [
        a for a in quality.assessments if a.is_valid
    ]
    return [(_label(a), a.preview) for a in shown[:TRAJECTORY_EPISODES] if a.preview is not None]


def _label(item: EpisodeAssessment) -> str:
    return f"{item.manifest.task_id} s{item.manifest.seed}" if item.manifest else item.source


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
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def write_robot_dataset(
    quality: RobotQuality, root: Path, lerobot: LeRobotSettings, provenance: Mapping[str, Any]
) -> RobotImport:
    """Write the dataset, ground truth and report; commit with the manifest if gates still hold.

    `root` must be absent or empty. If the writer refuses episodes so that a gate no longer
    holds, the dataset files are removed and only the report stays (nothing is committed).
    """
    card = {
        "scene": quality.scene_id,
        "run": quality.run_id,
        "pipeline version": str(provenance.get("pipeline_version", "")),
        "quality report": f"{REPORT_DIR}/{REPORT_HTML}",
    }
    written, summary = _write_episodes(quality, root, lerobot, card)
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
        return RobotImport(written, root, lerobot.format, None, None)
    write_quality_report(written, root, dataset)
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
    commit_import_manifest(root, document)
    return RobotImport(written, root, summary.codebase_version, summary, document)
