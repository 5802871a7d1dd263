"""Datasets written by us load and decode in the real lerobot 0.6.1 (the shared check)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bp_import.lerobot.episode_frames import DatasetSpec, EpisodeFrames
from bp_import.lerobot.synthetic_episodes import synthetic_episode
from bp_import.lerobot.video_encoding import VideoSettings
from bp_import.lerobot.writer import write_lerobot_dataset

from ..conformance import check_dataset as conformance
from .conftest import WrittenDataset
from .test_lerobot_writer import short_camera

pytestmark = pytest.mark.conformance


def test_v30_dataset_is_valid(dataset_v30: WrittenDataset) -> None:
    assert "codebase v3.0, episodes 4, frames 166" in conformance(dataset_v30.root)


def test_v21_dataset_converts_and_is_valid(dataset_v21: WrittenDataset) -> None:
    assert "episodes 4, frames 166" in conformance(dataset_v21.root)


@pytest.mark.parametrize("codebase", ["v3.0", "v2.1"])
def test_av1_datasets_are_valid(tmp_path: Path, spec: DatasetSpec, codebase: str) -> None:
    write_lerobot_dataset(
        tmp_path / "ds",
        spec,
        (synthetic_episode(spec, n, seed=n, ground_truth=False) for n in (12, 1, 20)),
        codebase=codebase,
        video=VideoSettings.av1(),
    )
    assert "episodes 3, frames 33" in conformance(tmp_path / "ds")


def test_rotated_files_and_a_dropped_episode_stay_valid(tmp_path: Path, spec: DatasetSpec) -> None:
    episodes = [
        synthetic_episode(spec, 40, seed=1),
        short_camera(spec, 30, seed=2),
        *(synthetic_episode(spec, 50, seed=s) for s in (3, 4, 5)),
    ]
    summary = write_lerobot_dataset(
        tmp_path / "ds",
        spec,
        episodes,
        data_files_size_in_mb=0.006,
        video_files_size_in_mb=0.03,
        on_rejected=lambda episode, error: None,
    )
    assert len({e.data_file for e in summary.episodes}) > 1
    assert len({e.video_files["observation.images.wrist"] for e in summary.episodes}) > 2
    assert "episodes 4, frames 190" in conformance(tmp_path / "ds")


@pytest.mark.parametrize("codebase", ["v3.0", "v2.1"])
def test_camera_less_dataset_with_one_joint_is_valid(tmp_path: Path, codebase: str) -> None:
    """Episodes recorded without rendering, and a one-column state (a scalar parquet column)."""
    spec = DatasetSpec(
        robot_type="gripper_only", fps=10, state_names=("opening",), action_names=("command",)
    )
    episodes = [
        EpisodeFrames(
            task="squeeze",
            state=np.linspace(0, 0.04, n)[:, None],
            action=np.linspace(0.04, 0, n)[:, None],
        )
        for n in (4, 1, 7)
    ]
    write_lerobot_dataset(tmp_path / "ds", spec, episodes, codebase=codebase)
    assert "episodes 3, frames 12" in conformance(tmp_path / "ds")
