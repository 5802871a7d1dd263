"""The LeRobot writer: layout, schemas, indices, timestamps, exact stats and video frames."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from bp_common.errors import AlreadyExists
from bp_import.lerobot.episode_frames import (
    CameraFrames,
    DatasetSpec,
    EpisodeFrames,
    EpisodeFramesError,
)
from bp_import.lerobot.feature_stats import QUANTILES, STAT_NAMES
from bp_import.lerobot.synthetic_episodes import synthetic_episode
from bp_import.lerobot.writer import LeRobotDatasetWriter, write_lerobot_dataset

from .conftest import EPISODES, ReferenceEpisode, WrittenDataset

FPS = 30
TOLERANCE_S = 1e-4


def numpy_stats(values: np.ndarray) -> dict[str, Any]:
    """Reference statistics of an (N, D) array over its frames."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    stats: dict[str, Any] = {
        "min": values.min(0),
        "max": values.max(0),
        "mean": values.mean(0),
        "std": values.std(0),
        "count": [len(values)],
    }
    for name, q in QUANTILES.items():
        stats[name] = np.quantile(values, q, axis=0)
    return stats


def numpy_image_stats(frames: np.ndarray) -> dict[str, Any]:
    pixels = frames.reshape(-1, 3).astype(np.float64) / 255.0
    stats = numpy_stats(pixels)
    stats = {k: np.asarray(v).reshape(3, 1, 1) for k, v in stats.items() if k != "count"}
    stats["count"] = [len(frames)]
    return stats


def assert_stats_equal(got: dict[str, Any], expected: dict[str, Any], feature: str) -> None:
    assert set(got) == set(STAT_NAMES), feature
    for name in STAT_NAMES:
        want = np.asarray(expected[name])
        have = np.asarray(got[name])
        if (want.ndim == 1 and have.ndim == 1) or name == "count":
            want = want.reshape(have.shape)
        assert have.shape == want.shape, f"{feature}/{name}: {have.shape} != {want.shape}"
        # numpy's float64 sums over ~10^6 pixels carry ~1e-12 of rounding; ours are exact.
        np.testing.assert_allclose(have, want, rtol=1e-10, atol=1e-12, err_msg=f"{feature}/{name}")


def expected_feature_values(refs: list[ReferenceEpisode]) -> dict[str, np.ndarray]:
    """Every per-frame column of the whole dataset, recomputed from the inputs."""
    tasks: dict[str, int] = {}
    for ref in refs:
        tasks.setdefault(ref.task, len(tasks))
    lengths = [len(r.state) for r in refs]
    return {
        "observation.state": np.concatenate([r.state for r in refs]),
        "action": np.concatenate([r.action for r in refs]),
        "timestamp": np.concatenate([(np.arange(n) / FPS).astype(np.float32) for n in lengths]),
        "frame_index": np.concatenate([np.arange(n) for n in lengths]),
        "episode_index": np.concatenate([np.full(n, i) for i, n in enumerate(lengths)]),
        "index": np.arange(sum(lengths)),
        "task_index": np.concatenate([np.full(len(r.state), tasks[r.task]) for r in refs]),
    }


def read_frames(root: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted((root / "data").rglob("*.parquet"))])


def decode(path: Path) -> Iterator[tuple[float, np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        for frame in container.decode(stream):
            yield float(frame.pts * stream.time_base), frame.to_ndarray(format="rgb24")


def assert_frames_at_their_times(
    decoded: list[tuple[float, np.ndarray]], start: float, original: np.ndarray
) -> None:
    """Frame k is presented at start + k/fps (within 1e-4 s) and looks like original frame k."""
    times = np.array([t for t, _ in decoded])
    for k, frame in enumerate(original):
        gap = np.abs(times - (start + np.float32(k / FPS)))
        match = int(gap.argmin())
        assert gap[match] < TOLERANCE_S, f"frame {k}: nearest decoded frame {gap[match]} s off"
        error = np.abs(decoded[match][1].astype(int) - frame.astype(int)).mean()
        assert error < 6.0, f"frame {k} decoded with mean error {error}"
        for other in (k - 3, k + 3):
            if 0 <= other < len(original):
                assert (
                    error
                    < np.abs(decoded[match][1].astype(int) - original[other].astype(int)).mean()
                )


# ---------------------------------------------------------------------------------------------
# v3.0


def test_v30_layout(dataset_v30: WrittenDataset) -> None:
    files = {p.relative_to(dataset_v30.root).as_posix() for p in dataset_v30.summary.files()}
    assert files == {
        "README.md",
        "meta/info.json",
        "meta/stats.json",
        "meta/tasks.parquet",
        "meta/episodes/chunk-000/file-000.parquet",
        "data/chunk-000/file-000.parquet",
        "videos/observation.images.overhead/chunk-000/file-000.mp4",
        "videos/observation.images.wrist/chunk-000/file-000.mp4",
    }


def test_v30_info_json(dataset_v30: WrittenDataset, spec: DatasetSpec) -> None:
    info = json.loads((dataset_v30.root / "meta/info.json").read_text())
    total = sum(n for n, _, _ in EPISODES)
    assert info["codebase_version"] == "v3.0"
    assert info["robot_type"] == "franka_panda" and info["fps"] == FPS
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (4, total, 2)
    assert info["splits"] == {"train": "0:4"}
    assert info["chunks_size"] == 1000
    assert info["data_files_size_in_mb"] == 100 and info["video_files_size_in_mb"] == 200
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == (
        "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    )
    features = info["features"]
    assert list(features) == [
        "observation.state",
        "action",
        "observation.images.overhead",
        "observation.images.wrist",
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
    ]
    assert features["observation.state"] == {
        "dtype": "float32",
        "shape": [9],
        "names": list(spec.state_names),
    }
    assert features["action"]["names"] == list(spec.action_names)
    video = features["observation.images.wrist"]
    assert video["dtype"] == "video" and video["shape"] == [64, 96, 3]
    assert video["names"] == ["height", "width", "channels"]
    assert {
        k: video["info"][k]
        for k in (
            "video.height",
            "video.width",
            "video.codec",
            "video.pix_fmt",
            "video.fps",
            "video.channels",
            "has_audio",
            "is_depth_map",
        )
    } == {
        "video.height": 64,
        "video.width": 96,
        "video.codec": "h264",
        "video.pix_fmt": "yuv420p",
        "video.fps": FPS,
        "video.channels": 3,
        "has_audio": False,
        "is_depth_map": False,
    }
    assert features["timestamp"] == {"dtype": "float32", "shape": [1], "names": None}


def test_v30_frames_schema_indices_and_timestamps(dataset_v30: WrittenDataset) -> None:
    path = dataset_v30.root / "data/chunk-000/file-000.parquet"
    schema = pq.read_schema(path)
    assert {f.name: f.type for f in schema} == {
        "observation.state": pa.list_(pa.float32(), 9),
        "action": pa.list_(pa.float32(), 8),
        "timestamp": pa.float32(),
        "frame_index": pa.int64(),
        "episode_index": pa.int64(),
        "index": pa.int64(),
        "task_index": pa.int64(),
    }
    # Whole episodes share row groups (a writer keeps each group's metadata until it closes).
    assert pq.ParquetFile(path).num_row_groups == 1
    table = read_frames(dataset_v30.root)
    expected = expected_feature_values(dataset_v30.references)
    for column, values in expected.items():
        got = (
            table.column(column).to_numpy()
            if column not in ("observation.state", "action")
            else np.stack(table.column(column).to_pylist())
        )
        np.testing.assert_array_equal(got, values, err_msg=column)
    # The float32 timestamp of frame k is k / fps to float32 precision.
    assert (
        np.abs(
            table.column("timestamp").to_numpy().astype(np.float64) - expected["frame_index"] / FPS
        ).max()
        < 1e-5
    )


def test_v30_episodes_table(dataset_v30: WrittenDataset) -> None:
    rows = pq.read_table(dataset_v30.root / "meta/episodes/chunk-000/file-000.parquet")
    assert rows.schema.field("tasks").type == pa.list_(pa.string())
    assert rows.schema.field("stats/observation.images.wrist/mean").type == pa.list_(
        pa.list_(pa.list_(pa.float64()))
    )
    start = 0
    for i, (row, (length, _, task)) in enumerate(zip(rows.to_pylist(), EPISODES, strict=True)):
        assert row["episode_index"] == i and row["tasks"] == [task] and row["length"] == length
        assert (row["dataset_from_index"], row["dataset_to_index"]) == (start, start + length)
        assert (row["data/chunk_index"], row["data/file_index"]) == (0, 0)
        for camera in ("overhead", "wrist"):
            key = f"videos/observation.images.{camera}"
            assert row[f"{key}/from_timestamp"] == pytest.approx(start / FPS, abs=1e-12)
            assert row[f"{key}/to_timestamp"] == pytest.approx((start + length) / FPS, abs=1e-12)
            assert (row[f"{key}/chunk_index"], row[f"{key}/file_index"]) == (0, 0)
        start += length


def test_v30_tasks_parquet_is_indexed_by_task(dataset_v30: WrittenDataset) -> None:
    table = pq.read_table(dataset_v30.root / "meta/tasks.parquet")
    assert table.to_pydict() == {
        "task_index": [0, 1],
        "task": ["put the red cube in the bin", "open the top drawer"],
    }
    pandas_meta = json.loads(table.schema.metadata[b"pandas"])
    assert pandas_meta["index_columns"] == ["task"]


def test_v30_dataset_stats_equal_numpy_over_all_frames(dataset_v30: WrittenDataset) -> None:
    stats = json.loads((dataset_v30.root / "meta/stats.json").read_text())
    refs = dataset_v30.references
    for feature, values in expected_feature_values(refs).items():
        assert_stats_equal(stats[feature], numpy_stats(values), feature)
    for camera in ("overhead", "wrist"):
        frames = np.concatenate([r.rgb[camera] for r in refs])
        key = f"observation.images.{camera}"
        assert_stats_equal(stats[key], numpy_image_stats(frames), key)
        assert np.min(stats[key]["min"]) >= 0.0 and np.max(stats[key]["max"]) <= 1.0


def test_v30_episode_stats_equal_numpy_per_episode(dataset_v30: WrittenDataset) -> None:
    rows = pq.read_table(dataset_v30.root / "meta/episodes/chunk-000/file-000.parquet")
    refs = dataset_v30.references
    everything = expected_feature_values(refs)
    start = 0
    for row, ref in zip(rows.to_pylist(), refs, strict=True):
        end = start + len(ref.state)
        for feature, values in everything.items():
            got = {s: row[f"stats/{feature}/{s}"] for s in STAT_NAMES}
            assert_stats_equal(got, numpy_stats(values[start:end]), feature)
        for camera, frames in ref.rgb.items():
            key = f"observation.images.{camera}"
            got = {s: row[f"stats/{key}/{s}"] for s in STAT_NAMES}
            assert_stats_equal(got, numpy_image_stats(frames), key)
        start = end


def test_v30_video_frames_decode_at_from_timestamp_plus_timestamp(
    dataset_v30: WrittenDataset,
) -> None:
    rows = pq.read_table(dataset_v30.root / "meta/episodes/chunk-000/file-000.parquet")
    for camera in ("overhead", "wrist"):
        key = f"observation.images.{camera}"
        path = dataset_v30.root / f"videos/{key}/chunk-000/file-000.mp4"
        decoded = list(decode(path))
        total = sum(n for n, _, _ in EPISODES)
        assert len(decoded) == total
        np.testing.assert_allclose([t for t, _ in decoded], np.arange(total) / FPS, atol=1e-9)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264" and stream.average_rate == Fraction(FPS)
            assert (stream.width, stream.height, stream.format.name) == (96, 64, "yuv420p")
        for row, ref in zip(rows.to_pylist(), dataset_v30.references, strict=True):
            assert_frames_at_their_times(
                decoded, row[f"videos/{key}/from_timestamp"], ref.rgb[camera]
            )


def test_dataset_card(dataset_v30: WrittenDataset) -> None:
    card = (dataset_v30.root / "README.md").read_text()
    assert card.startswith("---\nlicense: other\ntask_categories:\n- robotics\n")
    assert "- LeRobot" in card and "path: data/*/*.parquet" in card
    assert "franka_panda" in card and "Episodes: 4, frames: 166, fps: 30" in card
    assert "put the red cube in the bin" in card and "- run: test" in card
    assert "../ground_truth/franka_panda" in card


# ---------------------------------------------------------------------------------------------
# v2.1


def test_v21_layout_and_info(dataset_v21: WrittenDataset) -> None:
    root = dataset_v21.root
    files = {p.relative_to(root).as_posix() for p in dataset_v21.summary.files()}
    expected = {
        "README.md",
        "meta/info.json",
        "meta/stats.json",
        "meta/tasks.jsonl",
        "meta/episodes.jsonl",
        "meta/episodes_stats.jsonl",
    }
    for i in range(len(EPISODES)):
        expected.add(f"data/chunk-000/episode_{i:06d}.parquet")
        for camera in ("overhead", "wrist"):
            expected.add(f"videos/chunk-000/observation.images.{camera}/episode_{i:06d}.mp4")
    assert files == expected
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v2.1"
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (4, 166, 2)
    assert (info["total_videos"], info["total_chunks"], info["chunks_size"]) == (8, 1, 1000)
    assert info["data_path"] == (
        "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet"
    )
    assert info["video_path"] == (
        "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"
    )


def test_v21_jsonl_metadata(dataset_v21: WrittenDataset) -> None:
    meta = dataset_v21.root / "meta"
    lines = [json.loads(x) for x in (meta / "tasks.jsonl").read_text().splitlines()]
    assert lines == [
        {"task_index": 0, "task": "put the red cube in the bin"},
        {"task_index": 1, "task": "open the top drawer"},
    ]
    episodes = [json.loads(x) for x in (meta / "episodes.jsonl").read_text().splitlines()]
    assert episodes == [
        {"episode_index": i, "tasks": [task], "length": n}
        for i, (n, _, task) in enumerate(EPISODES)
    ]


def test_v21_episode_files_and_stats(dataset_v21: WrittenDataset) -> None:
    root = dataset_v21.root
    refs = dataset_v21.references
    everything = expected_feature_values(refs)
    stats_lines = [
        json.loads(x) for x in (root / "meta/episodes_stats.jsonl").read_text().splitlines()
    ]
    start = 0
    for i, ref in enumerate(refs):
        end = start + len(ref.state)
        table = pq.read_table(root / f"data/chunk-000/episode_{i:06d}.parquet")
        assert table.column("index").to_pylist() == list(range(start, end))
        assert table.column("frame_index").to_pylist() == list(range(end - start))
        assert stats_lines[i]["episode_index"] == i
        stats = stats_lines[i]["stats"]
        for feature, values in everything.items():
            assert_stats_equal(stats[feature], numpy_stats(values[start:end]), feature)
        for camera, frames in ref.rgb.items():
            key = f"observation.images.{camera}"
            assert_stats_equal(stats[key], numpy_image_stats(frames), key)
            path = root / f"videos/chunk-000/{key}/episode_{i:06d}.mp4"
            decoded = list(decode(path))
            assert len(decoded) == len(frames)
            assert_frames_at_their_times(decoded, 0.0, frames)
        start = end


def test_v21_dataset_stats_equal_those_of_v30(
    dataset_v21: WrittenDataset, dataset_v30: WrittenDataset
) -> None:
    v21 = json.loads((dataset_v21.root / "meta/stats.json").read_text())
    v30 = json.loads((dataset_v30.root / "meta/stats.json").read_text())
    assert v21 == v30


# ---------------------------------------------------------------------------------------------
# Refusals and recovery


def test_refuses_a_non_empty_directory(tmp_path: Path, spec: DatasetSpec) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "old.txt").write_text("x")
    with pytest.raises(AlreadyExists):
        LeRobotDatasetWriter(tmp_path / "ds", spec)


def with_nan(e: EpisodeFrames) -> None:
    e.state = np.where(np.arange(9) == 2, np.nan, e.state)


def with_slow_clock(e: EpisodeFrames) -> None:
    e.timestamps = np.arange(e.length) / 29.0


def with_short_action(e: EpisodeFrames) -> None:
    e.action = e.action[:-1]


def without_overhead_camera(e: EpisodeFrames) -> None:
    e.cameras = {"wrist": e.cameras["wrist"]}


def without_frames(e: EpisodeFrames) -> None:
    e.state, e.action, e.timestamps = e.state[:0], e.action[:0], None


@pytest.mark.parametrize(
    "damage, message",
    [
        (with_nan, "NaN"),
        (with_slow_clock, "frame_index / fps"),
        (with_short_action, "differ in length"),
        (without_overhead_camera, "cameras differ"),
        (without_frames, "no frames"),
    ],
)
def test_bad_episodes_are_refused_before_anything_is_written(
    tmp_path: Path, spec: DatasetSpec, damage: Callable[[EpisodeFrames], None], message: str
) -> None:
    writer = LeRobotDatasetWriter(tmp_path / "ds", spec)
    episode = synthetic_episode(spec, 10, seed=1)
    damage(episode)
    with pytest.raises(EpisodeFramesError, match=message):
        writer.add_episode(episode)
    writer.abort()
    assert not (tmp_path / "ds" / "meta" / "info.json").exists()


def short_camera(spec: DatasetSpec, length: int, seed: int) -> Any:
    episode = synthetic_episode(spec, length, seed)
    wrist = episode.cameras["wrist"]
    frames = list(wrist.rgb)[: length - 3]
    episode.cameras = {
        **episode.cameras,
        "wrist": CameraFrames(
            rgb=iter(frames),
            depth_mm=wrist.depth_mm,
            segmentation=wrist.segmentation,
            intrinsics=wrist.intrinsics,
            camera_to_world=wrist.camera_to_world,
        ),
    }
    return episode


@pytest.mark.parametrize("codebase", ["v3.0", "v2.1"])
def test_an_episode_failing_mid_stream_is_dropped_and_writing_goes_on(
    tmp_path: Path, spec: DatasetSpec, codebase: Any
) -> None:
    rejected: list[str] = []
    episodes = [
        synthetic_episode(spec, 20, seed=1),
        short_camera(spec, 25, seed=2),
        synthetic_episode(spec, 15, seed=3),
    ]
    summary = write_lerobot_dataset(
        tmp_path / "ds",
        spec,
        episodes,
        codebase=codebase,
        on_rejected=lambda e, err: rejected.append(f"{e.source_id}: {err.message}"),
    )
    assert rejected == ["synthetic.franka_panda.s2: camera has fewer frames than the state"]
    assert (summary.total_episodes, summary.total_frames) == (2, 35)
    table = read_frames(tmp_path / "ds")
    assert table.column("index").to_pylist() == list(range(35))
    assert table.column("episode_index").to_pylist() == [0] * 20 + [1] * 15
    gt_index = json.loads((tmp_path / "ground_truth/ds/ground_truth.json").read_text())
    assert [e["source_id"] for e in gt_index["episodes"]] == [
        "synthetic.franka_panda.s1",
        "synthetic.franka_panda.s3",
    ]
    if codebase == "v3.0":
        rows = pq.read_table(tmp_path / "ds/meta/episodes/chunk-000/file-000.parquet")
        # The second good episode starts a new video file at time 0.
        assert rows.column("videos/observation.images.wrist/file_index").to_pylist() == [0, 1]
        assert rows.column("videos/observation.images.wrist/from_timestamp").to_pylist() == [
            0.0,
            0.0,
        ]
        decoded = list(
            decode(tmp_path / "ds/videos/observation.images.wrist/chunk-000/file-001.mp4")
        )
        assert len(decoded) == 15


def test_v30_files_rotate_by_size_without_splitting_episodes(
    tmp_path: Path, spec: DatasetSpec
) -> None:
    summary = write_lerobot_dataset(
        tmp_path / "ds",
        spec,
        (synthetic_episode(spec, 60, seed=s, ground_truth=False) for s in range(4)),
        data_files_size_in_mb=0.004,
        video_files_size_in_mb=0.05,
    )
    rows = pq.read_table(tmp_path / "ds/meta/episodes/chunk-000/file-000.parquet").to_pylist()
    data_files = [r["data/file_index"] for r in rows]
    video_files = [r["videos/observation.images.overhead/file_index"] for r in rows]
    assert data_files == sorted(data_files) and len(set(data_files)) > 1
    assert video_files == sorted(video_files) and len(set(video_files)) > 1
    for row in rows:
        path = tmp_path / "ds" / (f"data/chunk-000/file-{row['data/file_index']:03d}.parquet")
        indices = pq.read_table(path).column("index").to_pylist()
        assert set(range(row["dataset_from_index"], row["dataset_to_index"])) <= set(indices)
    assert summary.total_frames == 240
