"""The ground-truth pack: lossless depth and segmentation, boxes, cameras, beside the dataset."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from bp_import.lerobot.episode_frames import EpisodeFrames, EpisodeFramesError
from bp_import.lerobot.ground_truth import read_ground_truth_episode
from bp_import.lerobot.synthetic_episodes import synthetic_episode, synthetic_spec
from bp_import.lerobot.video_encoding import LosslessEncoder, Mp4Encoder, VideoSettings
from bp_import.lerobot.writer import LeRobotDatasetWriter
from numpy.typing import NDArray

from .conftest import EPISODES, WrittenDataset, make_episode, reference_episode


def test_index_describes_the_pack(dataset_v30: WrittenDataset) -> None:
    index = json.loads((dataset_v30.ground_truth / "ground_truth.json").read_text())
    assert (index["format"], index["format_version"]) == ("bp-ground-truth", 1)
    assert index["dataset"] == "../../franka_panda"
    assert (dataset_v30.ground_truth / index["dataset"]).resolve() == dataset_v30.root.resolve()
    assert index["depth"]["unit"] == "mm" and index["depth"]["lossless"] is True
    assert [e["episode_index"] for e in index["episodes"]] == list(range(len(EPISODES)))
    assert [e["length"] for e in index["episodes"]] == [n for n, _, _ in EPISODES]
    assert index["episodes"][0]["streams"] == {
        "overhead": ["depth", "segmentation"],
        "wrist": ["depth", "segmentation"],
    }


@pytest.mark.parametrize("episode_index", range(len(EPISODES)))
def test_depth_and_segmentation_round_trip_bit_for_bit(
    dataset_v30: WrittenDataset, episode_index: int
) -> None:
    ref = dataset_v30.references[episode_index]
    truth = read_ground_truth_episode(dataset_v30.ground_truth, episode_index)
    for camera in ("overhead", "wrist"):
        assert truth.depth_mm[camera].dtype == np.uint16
        np.testing.assert_array_equal(truth.depth_mm[camera], ref.depth[camera])
        np.testing.assert_array_equal(truth.segmentation[camera], ref.segmentation[camera])


def test_boxes_enclose_exactly_each_objects_pixels(dataset_v30: WrittenDataset) -> None:
    ref = dataset_v30.references[2]
    truth = read_ground_truth_episode(dataset_v30.ground_truth, 2)
    rows = truth.boxes.to_pylist()
    expected = []
    for camera in ("overhead", "wrist"):
        for frame_index, ids in enumerate(ref.segmentation[camera]):
            for object_id in np.unique(ids):
                if object_id == 0:
                    continue
                ys, xs = np.nonzero(ids == object_id)
                expected.append(
                    (
                        frame_index,
                        camera,
                        int(object_id),
                        int(xs.min()),
                        int(ys.min()),
                        int(xs.max()),
                        int(ys.max()),
                        int(ys.size),
                    )
                )
    got = [
        (
            r["frame_index"],
            r["camera"],
            r["object_id"],
            r["x_min"],
            r["y_min"],
            r["x_max"],
            r["y_max"],
            r["pixels"],
        )
        for r in rows
    ]
    assert sorted(got) == sorted(expected)
    labels = {r["object_id"]: r["label"] for r in rows}
    assert labels[1] == "floor" and labels[3] == "cube_0"
    assert truth.objects[3] == "cube_0"


def test_cameras_carry_intrinsics_and_poses(dataset_v30: WrittenDataset) -> None:
    length, seed, task = EPISODES[0]
    episode = synthetic_episode(dataset_v30.spec, length, seed, task=task)
    cameras = read_ground_truth_episode(dataset_v30.ground_truth, 0).cameras
    overhead, wrist = cameras["overhead"], cameras["wrist"]
    focal = 0.5 * 64 / np.tan(np.radians(58.0) / 2)
    assert overhead["intrinsics"]["fx"] == pytest.approx(focal)
    assert overhead["intrinsics"]["matrix"] == [
        [focal, 0.0, 48.0],
        [0.0, focal, 32.0],
        [0.0, 0.0, 1.0],
    ]
    assert overhead["extrinsics"]["static"] is True
    np.testing.assert_array_equal(
        overhead["extrinsics"]["camera_to_world"], episode.cameras["overhead"].camera_to_world
    )
    assert wrist["extrinsics"]["static"] is False
    poses = np.asarray(wrist["extrinsics"]["camera_to_world"])
    assert poses.shape == (length, 4, 4)
    np.testing.assert_array_equal(poses, episode.cameras["wrist"].camera_to_world)
    np.testing.assert_allclose(
        poses[:, :3, :3] @ poses[:, :3, :3].transpose(0, 2, 1),
        np.broadcast_to(np.eye(3), (length, 3, 3)),
        atol=1e-12,
    )


def _lossless(path: Path, frames: NDArray[np.uint16], fps: int) -> Path:
    encoder = LosslessEncoder(path, frames.shape[2], frames.shape[1], fps)
    for frame in frames:
        encoder.encode(frame)
    encoder.close()
    return path


def _with_files(
    episode: EpisodeFrames, depth: dict[str, Path], segmentation: dict[str, Path]
) -> EpisodeFrames:
    cameras = {
        name: replace(frames, depth_file=depth[name], segmentation_file=segmentation[name])
        for name, frames in episode.cameras.items()
    }
    return replace(episode, cameras=cameras)


def test_streams_already_lossless_are_copied_and_others_encoded(tmp_path: Path) -> None:
    spec = synthetic_spec(width=32, height=24)
    ref = reference_episode(spec, 20, 5, "open the top drawer")
    files = tmp_path / "source"
    depth = {n: _lossless(files / n / "depth.mkv", d, spec.fps) for n, d in ref.depth.items()}
    segmentation = {
        n: _lossless(files / n / "segmentation.mkv", s, spec.fps)
        for n, s in ref.segmentation.items()
    }
    # One camera's "depth" is not FFV1 gray16le at all: that one is encoded from its frames.
    depth["wrist"] = tmp_path / "not-lossless.mp4"
    Mp4Encoder(depth["wrist"], 32, 24, spec.fps, VideoSettings()).close()
    root = tmp_path / "franka_panda"
    with LeRobotDatasetWriter(root, spec, ground_truth_root=tmp_path / "gt") as writer:
        writer.add_episode(
            _with_files(make_episode(spec, 20, 5, "open the top drawer"), depth, segmentation)
        )
    pack = tmp_path / "gt" / "chunk-000" / "episode_000000"
    assert (pack / "overhead" / "depth.mkv").read_bytes() == depth["overhead"].read_bytes()
    for camera in ("overhead", "wrist"):
        copied = (pack / camera / "segmentation.mkv").read_bytes()
        assert copied == segmentation[camera].read_bytes()
    truth = read_ground_truth_episode(tmp_path / "gt", 0)
    for camera in ("overhead", "wrist"):
        np.testing.assert_array_equal(truth.depth_mm[camera], ref.depth[camera])
        np.testing.assert_array_equal(truth.segmentation[camera], ref.segmentation[camera])
    assert truth.boxes.num_rows > 0


def test_a_copied_stream_of_another_length_drops_the_episode(tmp_path: Path) -> None:
    spec = synthetic_spec(width=32, height=24)
    ref = reference_episode(spec, 20, 6, "open the top drawer")
    short = {
        n: _lossless(tmp_path / n / "depth.mkv", d[:15], spec.fps) for n, d in ref.depth.items()
    }
    whole = {
        n: _lossless(tmp_path / n / "segmentation.mkv", s, spec.fps)
        for n, s in ref.segmentation.items()
    }
    writer = LeRobotDatasetWriter(
        tmp_path / "franka_panda", spec, ground_truth_root=tmp_path / "gt"
    )
    with pytest.raises(EpisodeFramesError, match="another number of frames"):
        writer.add_episode(_with_files(make_episode(spec, 20, 6, "x"), short, whole))
    writer.abort()
