"""RGB recorded with the dataset's settings is copied into the dataset, not encoded again.

The raw RGB comes from the collector's own episode writer; a stream recorded otherwise (libx264's
defaults, as episodes were recorded before: B-frames, a keyframe every 250 frames) is encoded.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
from bp_collector.mujoco.recording import EpisodeWriter
from bp_import.lerobot.episode_frames import (
    CameraFrames,
    CameraSpec,
    CodebaseVersion,
    DatasetSpec,
    EpisodeFrames,
)
from bp_import.lerobot.video_copy import copyable_rgb
from bp_import.lerobot.video_encoding import VideoSettings
from bp_import.lerobot.writer import LeRobotDatasetWriter

WIDTH, HEIGHT, FPS = 64, 48, 30
SPEC = DatasetSpec(
    robot_type="franka_panda",
    fps=FPS,
    state_names=("j1", "j2"),
    action_names=("a1", "a2"),
    cameras=(CameraSpec("front", WIDTH, HEIGHT),),
)


def moving_frames(length: int, seed: int) -> np.ndarray:
    """A textured scene that drifts frame by frame: what a lossy encoder cannot keep exactly."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 4, 3), dtype=np.uint8)
    texture = np.kron(blocks, np.ones((8, 8, 1), dtype=np.uint8))
    return np.stack([np.roll(texture, 2 * i, axis=1)[:, :WIDTH] for i in range(length)])


def collector_rgb(folder: Path, frames: np.ndarray) -> Path:
    """The RGB file as the collector records it."""
    writer = EpisodeWriter(folder, ("front",), WIDTH, HEIGHT, FPS)
    zeros = np.zeros((HEIGHT, WIDTH), dtype=np.uint16)
    for index, rgb in enumerate(frames):
        writer.add_images(index, "front", rgb, zeros, zeros)
    writer.close_streams()
    return folder / "cameras/front/rgb.mp4"


def default_x264_rgb(path: Path, frames: np.ndarray) -> Path:
    """The RGB file as episodes were recorded before: libx264's defaults, crf 23, veryfast."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(
            "libx264", rate=FPS, options={"crf": "23", "preset": "veryfast"}
        )
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for index, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def decoded(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def packets(path: Path) -> list[tuple[bytes, int, int]]:
    """(payload, pts, dts) of every packet, timestamps in frames."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.time_base is not None
        step = 1 / (stream.time_base * FPS)
        return [
            (bytes(p), round(p.pts / step), round(p.dts / step))
            for p in container.demux(stream)
            if p.size > 0 and p.pts is not None and p.dts is not None
        ]


def episode(frames: np.ndarray, rgb_file: Path, task: str = "pick the cube") -> EpisodeFrames:
    n = len(frames)
    state = np.linspace(0, 1, 2 * n, dtype=np.float32).reshape(n, 2)
    return EpisodeFrames(
        task=task,
        state=state,
        action=state,
        cameras={"front": CameraFrames(rgb=iter(frames), rgb_file=rgb_file)},
    )


def video_file(root: Path, file_index: int = 0) -> Path:
    return root / f"videos/observation.images.front/chunk-000/file-{file_index:03d}.mp4"


def test_the_collectors_rgb_is_copyable_and_the_old_recordings_are_not(tmp_path: Path) -> None:
    frames = moving_frames(6, seed=0)
    recorded = collector_rgb(tmp_path / "new", frames)
    old = default_x264_rgb(tmp_path / "old.mp4", frames)
    settings = VideoSettings()
    assert copyable_rgb(recorded, WIDTH, HEIGHT, FPS, settings)
    assert not copyable_rgb(old, WIDTH, HEIGHT, FPS, settings)
    assert not copyable_rgb(recorded, WIDTH, HEIGHT, 25, settings)
    assert not copyable_rgb(recorded, WIDTH + 2, HEIGHT, FPS, settings)
    assert not copyable_rgb(recorded, WIDTH, HEIGHT, FPS, VideoSettings(crf=30))
    assert not copyable_rgb(recorded, WIDTH, HEIGHT, FPS, VideoSettings(gop=10))
    assert not copyable_rgb(recorded, WIDTH, HEIGHT, FPS, VideoSettings.av1())


@pytest.mark.parametrize("codebase", ["v3.0", "v2.1"])
def test_a_copied_episode_decodes_to_the_raw_frames_and_its_stats_count_them(
    tmp_path: Path, codebase: CodebaseVersion
) -> None:
    frames = moving_frames(9, seed=1)
    raw = collector_rgb(tmp_path / "raw", frames)
    root = tmp_path / "dataset"
    with LeRobotDatasetWriter(root, SPEC, codebase=codebase) as writer:
        writer.add_episode(episode(frames, raw))
    video = (
        video_file(root)
        if codebase == "v3.0"
        else root / "videos/chunk-000/observation.images.front/episode_000000.mp4"
    )
    raw_frames = decoded(raw)
    # The very packets of the raw file, at their frame numbers: nothing was encoded again.
    assert [p for p, _, _ in packets(video)] == [p for p, _, _ in packets(raw)]
    assert [(pts, dts) for _, pts, dts in packets(video)] == [(i, i) for i in range(9)]
    np.testing.assert_array_equal(decoded(video), raw_frames)
    stats = json.loads((root / "meta/stats.json").read_text())["observation.images.front"]
    channels = raw_frames.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(np.ravel(stats["mean"]), channels.mean(axis=0), atol=1e-12)
    np.testing.assert_allclose(np.ravel(stats["std"]), channels.std(axis=0), atol=1e-12)
    np.testing.assert_allclose(np.ravel(stats["max"]), channels.max(axis=0), atol=1e-12)
    assert stats["count"] == [9]


def test_a_stream_recorded_otherwise_is_encoded_in_a_file_of_its_own(tmp_path: Path) -> None:
    first, second = moving_frames(8, seed=2), moving_frames(5, seed=3)
    copied = collector_rgb(tmp_path / "raw", first)
    old = default_x264_rgb(tmp_path / "old.mp4", second)
    root = tmp_path / "dataset"
    with LeRobotDatasetWriter(root, SPEC) as writer:
        writer.add_episode(episode(first, copied))
        writer.add_episode(episode(second, old))
    rows = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [r["videos/observation.images.front/file_index"] for r in rows] == [0, 1]
    assert [r["videos/observation.images.front/from_timestamp"] for r in rows] == [0.0, 0.0]
    assert [p for p, _, _ in packets(video_file(root, 0))] == [p for p, _, _ in packets(copied)]
    encoded = packets(video_file(root, 1))
    # Encoded with the dataset's settings: no B-frames (the old file has them), every frame
    # close to what was given.
    assert [(pts, dts) for _, pts, dts in encoded] == [(i, i) for i in range(5)]
    assert any(pts != dts for _, pts, dts in packets(old))
    error = np.abs(decoded(video_file(root, 1)).astype(int) - second.astype(int)).mean()
    assert error < 8


def test_concatenated_copied_episodes_are_found_at_their_timestamps(tmp_path: Path) -> None:
    lengths = (7, 4, 10)
    episodes = [moving_frames(n, seed=10 + i) for i, n in enumerate(lengths)]
    raws = [collector_rgb(tmp_path / f"raw{i}", f) for i, f in enumerate(episodes)]
    root = tmp_path / "dataset"
    with LeRobotDatasetWriter(root, SPEC) as writer:
        for frames, raw in zip(episodes, raws, strict=True):
            writer.add_episode(episode(frames, raw))
    rows = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    starts = [r["videos/observation.images.front/from_timestamp"] for r in rows]
    assert starts == pytest.approx([0.0, 7 / FPS, 11 / FPS])
    with av.open(str(video_file(root))) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == Fraction(FPS) and stream.time_base is not None
        for start, raw in zip(starts, raws, strict=True):
            raw_frames = decoded(raw)
            for k in range(len(raw_frames)):
                # As LeRobot reads a frame: seek to the keyframe before it, decode up to it.
                target = start + k / FPS
                container.seek(int(target / stream.time_base), stream=stream, backward=True)
                found = next(
                    f
                    for f in container.decode(stream)
                    if f.pts is not None and abs(float(f.pts * stream.time_base) - target) < 1e-4
                )
                np.testing.assert_array_equal(found.to_ndarray(format="rgb24"), raw_frames[k])
