"""Datasets written once per session from synthetic episodes, real recorded raw episodes, and
the conformance marker."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from bp_import.lerobot.episode_frames import CodebaseVersion, DatasetSpec, EpisodeFrames
from bp_import.lerobot.synthetic_episodes import synthetic_episode, synthetic_spec
from bp_import.lerobot.writer import DatasetSummary, write_lerobot_dataset
from numpy.typing import NDArray

from .raw_episodes import RecordedEpisodes, record_episodes

# (length, seed, task): a one-frame episode between longer ones, two tasks interleaved.
EPISODES: tuple[tuple[int, int, str], ...] = (
    (45, 11, "put the red cube in the bin"),
    (1, 12, "open the top drawer"),
    (90, 13, "put the red cube in the bin"),
    (30, 14, "open the top drawer"),
)


def pytest_configure(config: pytest.Config) -> None:
    # Until the root pyproject registers it; registering twice is harmless.
    config.addinivalue_line("markers", "conformance: runs the real lerobot conformance check")


@dataclass(frozen=True)
class ReferenceEpisode:
    """What an episode holds, materialised for numpy recomputation."""

    task: str
    state: NDArray[np.float32]
    action: NDArray[np.float32]
    rgb: dict[str, NDArray[np.uint8]]
    depth: dict[str, NDArray[np.uint16]]
    segmentation: dict[str, NDArray[np.uint16]]


def make_episode(spec: DatasetSpec, length: int, seed: int, task: str) -> EpisodeFrames:
    return synthetic_episode(spec, length, seed, task=task)


def reference_episode(spec: DatasetSpec, length: int, seed: int, task: str) -> ReferenceEpisode:
    episode = make_episode(spec, length, seed, task)
    cams = episode.cameras
    return ReferenceEpisode(
        task=task,
        state=np.asarray(episode.state),
        action=np.asarray(episode.action),
        rgb={n: np.stack(list(c.rgb)) for n, c in cams.items()},
        depth={n: np.stack(list(c.depth_mm or [])) for n, c in cams.items()},
        segmentation={n: np.stack(list(c.segmentation or [])) for n, c in cams.items()},
    )


@dataclass(frozen=True)
class WrittenDataset:
    root: Path
    ground_truth: Path
    summary: DatasetSummary = field(repr=False)
    spec: DatasetSpec = field(repr=False)
    references: list[ReferenceEpisode] = field(repr=False)


@pytest.fixture(scope="session")
def spec() -> DatasetSpec:
    return synthetic_spec(robot_type="franka_panda", fps=30, width=96, height=64)


@pytest.fixture(scope="session")
def references(spec: DatasetSpec) -> list[ReferenceEpisode]:
    return [reference_episode(spec, n, seed, task) for n, seed, task in EPISODES]


def _write(
    tmp: Path, spec: DatasetSpec, references: list[ReferenceEpisode], codebase: CodebaseVersion
) -> WrittenDataset:
    root = tmp / "franka_panda"
    summary = write_lerobot_dataset(
        root,
        spec,
        (make_episode(spec, n, seed, task) for n, seed, task in EPISODES),
        codebase=codebase,
        provenance={"run": "test"},
    )
    return WrittenDataset(
        root=root,
        ground_truth=tmp / "ground_truth" / "franka_panda",
        summary=summary,
        spec=spec,
        references=references,
    )


@pytest.fixture(scope="session")
def dataset_v30(
    tmp_path_factory: pytest.TempPathFactory, spec: DatasetSpec, references: list[ReferenceEpisode]
) -> WrittenDataset:
    return _write(tmp_path_factory.mktemp("v30"), spec, references, "v3.0")


@pytest.fixture(scope="session")
def dataset_v21(
    tmp_path_factory: pytest.TempPathFactory, spec: DatasetSpec, references: list[ReferenceEpisode]
) -> WrittenDataset:
    return _write(tmp_path_factory.mktemp("v21"), spec, references, "v2.1")


@pytest.fixture(scope="session")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> RecordedEpisodes:
    """Five real episodes from the collector (two successes, two short failures, one frame)."""
    return record_episodes(tmp_path_factory.mktemp("recorded"))
