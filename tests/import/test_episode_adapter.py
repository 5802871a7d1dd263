"""A real raw episode becomes a dataset episode: named state and action, every frame, and a
ground-truth pack with the raw depth and segmentation bit for bit, intrinsics and extrinsics."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from bp_episode_format import object_boxes, read_episode
from bp_import.episodes.adapter import camera_to_world
from bp_import.import_config import LeRobotSettings, QualitySettings
from bp_import.lerobot.ground_truth import read_ground_truth_episode
from bp_import.robot_import import RobotImport, assess_robot, write_robot_dataset

from .raw_episodes import ROBOT, SCENE_ID, RecordedEpisodes, states_of

RUN_ID = "run-00000000000000000003"


@pytest.fixture(scope="module")
def imported(recorded: RecordedEpisodes, tmp_path_factory: pytest.TempPathFactory) -> RobotImport:
    quality = assess_robot(SCENE_ID, RUN_ID, ROBOT, [recorded.succeeded[0]], QualitySettings())
    return write_robot_dataset(
        quality, tmp_path_factory.mktemp("adapted") / ROBOT, LeRobotSettings(), {}
    )


def test_state_and_action_keep_their_names_and_values(
    recorded: RecordedEpisodes, imported: RobotImport
) -> None:
    raw = read_episode(recorded.succeeded[0])
    info = json.loads((imported.root / "meta" / "info.json").read_text())
    names = raw.manifest["state"]
    assert info["features"]["observation.state"]["names"] == names["joint_names"]
    assert info["features"]["action"]["names"] == names["action_names"]
    assert set(info["features"]) >= {"observation.images.wrist", "observation.images.overhead"}
    table = pq.read_table(imported.root / "data" / "chunk-000" / "file-000.parquet")
    states = states_of(recorded.succeeded[0])
    assert table.num_rows == raw.n_frames
    state = np.array(table.column("observation.state").to_pylist())
    action = np.array(table.column("action").to_pylist())
    assert np.allclose(state, states["joint_position"], atol=1e-6)
    assert np.allclose(action, states["action"], atol=1e-6)
    tasks = pq.read_table(imported.root / "meta" / "tasks.parquet").to_pylist()
    assert [t["task"] for t in tasks] == [raw.manifest["instructions"][0]]


def test_ground_truth_is_the_raw_depth_and_segmentation_with_camera_geometry(
    recorded: RecordedEpisodes, imported: RobotImport
) -> None:
    raw = read_episode(recorded.succeeded[0])
    truth = read_ground_truth_episode(imported.root / "ground_truth", 0)
    for camera in ("wrist", "overhead"):
        assert np.array_equal(truth.depth_mm[camera], raw.depth_mm(camera))
        assert np.array_equal(truth.segmentation[camera], raw.segmentation(camera))
    assert truth.objects[2] == "robot"
    wrist, overhead = truth.cameras["wrist"], truth.cameras["overhead"]
    focal = 0.5 * 64 / np.tan(np.radians(raw.camera("overhead")["fovy_deg"]) / 2)
    assert overhead["intrinsics"]["fy"] == pytest.approx(focal)
    assert overhead["extrinsics"]["static"] and not wrist["extrinsics"]["static"]
    assert np.shape(wrist["extrinsics"]["camera_to_world"]) == (raw.n_frames, 4, 4)
    pose = np.asarray(overhead["extrinsics"]["camera_to_world"])
    assert pose[2, 2] < -0.5  # OpenCV z (forward) of a camera high above looks down
    # The boxes the collector recorded are those of the decoded segmentation.
    assert truth.boxes.num_rows > 0
    for camera in ("wrist", "overhead"):
        segmentation = raw.segmentation(camera)
        expected = [
            (i, b.object_id, b.x_min, b.y_min, b.x_max, b.y_max, b.pixels)
            for i in range(raw.n_frames)
            for b in object_boxes(segmentation[i])
        ]
        rows = [r for r in truth.boxes.to_pylist() if r["camera"] == camera]
        columns = ("frame_index", "object_id", "x_min", "y_min", "x_max", "y_max", "pixels")
        got = [tuple(r[c] for c in columns) for r in rows]
        assert got == expected


def test_camera_poses_convert_from_mujoco_to_opencv_axes() -> None:
    looking_down = np.array([[1.0, 0.0, 0.0, 0.0]])  # MuJoCo cameras look along their -z
    pose = camera_to_world(np.array([[0.0, 0.0, 2.0]]), looking_down)
    assert pose.shape == (4, 4)
    assert np.allclose(pose[:3, 2], [0, 0, -1]) and np.allclose(pose[:3, 1], [0, -1, 0])
    assert np.allclose(pose[:3, 3], [0, 0, 2])
