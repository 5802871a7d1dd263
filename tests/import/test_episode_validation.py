"""Corrupt and edge-case raw episodes: each is reported with its typed reason and left out of the
dataset, the good ones beside it go in, and nothing crashes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bp_episode_format import read_episode
from bp_import.episodes.selection import path_preview
from bp_import.episodes.validation import DefectReason, validate_episode
from bp_import.import_config import LeRobotSettings, QualitySettings
from bp_import.robot_import import assess_robot, write_robot_dataset

from .raw_episodes import (
    ROBOT,
    SCENE_ID,
    RecordedEpisodes,
    copy_episode,
    edit_manifest,
    edit_states,
    long_episode,
    manifest_of,
    recommit,
)

RUN_ID = "run-00000000000000000001"
# Lets short episodes (which end before their task does) into a dataset.
PERMISSIVE = QualitySettings(
    require_success=False,
    min_score=0.0,
    min_success_rate=0.0,
    min_collision_free_rate=0.0,
    min_pass_rate=0.0,
)


def truncate(relative: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        path = folder / relative
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    return apply


def flip_byte(relative: str) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        data = bytearray((folder / relative).read_bytes())
        data[len(data) // 2] ^= 0xFF
        (folder / relative).write_bytes(bytes(data))

    return apply


def delete(relative: str) -> Callable[[Path], None]:
    return lambda folder: (folder / relative).unlink()


def set_item(array: str, index: tuple[int, ...], value: float) -> Callable[[Path], None]:
    def change(arrays: dict[str, np.ndarray]) -> None:
        arrays[array][index] = value

    return edit_states(change)


def frames_only(count: int) -> Callable[[Path], None]:
    """Cut the states (and the manifest's n_frames) to `count` frames; videos stay as they are."""

    def cut(arrays: dict[str, np.ndarray]) -> None:
        n = arrays["frame_index"].shape[0]
        keep = arrays["contact_frame"] < count
        for name, array in list(arrays.items()):
            if name.startswith("contact_"):
                arrays[name] = array[keep]
            elif array.shape[:1] == (n,):
                arrays[name] = array[:count]

    def apply(folder: Path) -> None:
        edit_states(cut)(folder)
        edit_manifest(lambda m: m.update(n_frames=count))(folder)

    return apply


def swap_timestamps(arrays: dict[str, np.ndarray]) -> None:
    arrays["timestamp"][[10, 11]] = arrays["timestamp"][[11, 10]]


def stretch_timestamps(arrays: dict[str, np.ndarray]) -> None:
    arrays["timestamp"] = arrays["timestamp"] * 1.001


def drop_action_column(arrays: dict[str, np.ndarray]) -> None:
    arrays["action"] = arrays["action"][:, :-1]


def scale_quaternion(arrays: dict[str, np.ndarray]) -> None:
    arrays["ee_quaternion"][3] *= 1.5


def past_joint_limit(folder: Path) -> None:
    upper = manifest_of(folder)["state"]["joint_limits"]["upper"][0]
    set_item("joint_position", (20, 0), upper + 0.5)(folder)


def drop_camera(camera: str) -> Callable[[Path], None]:
    """A valid episode recorded without one of the dataset's cameras."""

    def apply(folder: Path) -> None:
        manifest = manifest_of(folder)
        index = [c["name"] for c in manifest["cameras"]].index(camera)
        manifest["cameras"].pop(index)
        manifest["episode_id"] += ".wrist_only"
        for name in ("camera_position", "camera_quaternion"):

            def cut(arrays: dict[str, np.ndarray], name: str = name) -> None:
                arrays[name] = np.delete(arrays[name], index, axis=1)

            edit_states(cut)(folder)
        for path in sorted((folder / "cameras" / camera).iterdir()):
            path.unlink()
        (folder / "cameras" / camera).rmdir()
        recommit(folder, manifest)

    return apply


def unsafe_path(manifest: dict[str, Any]) -> None:
    manifest["files"][0]["path"] = "../elsewhere/states.npz"


def garbage_states(folder: Path) -> None:
    (folder / "states.npz").write_bytes(b"PK\x03\x04 not really a zip file" * 10)
    recommit(folder)


# (case, damage, reason): each damages a copy of a real short episode.
CASES: list[tuple[str, Callable[[Path], object], str]] = [
    ("truncated_video", truncate("cameras/wrist/rgb.mp4"), DefectReason.SIZE_MISMATCH),
    ("truncated_states", truncate("states.npz"), DefectReason.SIZE_MISMATCH),
    ("wrong_checksum", flip_byte("states.npz"), DefectReason.CHECKSUM_MISMATCH),
    ("missing_camera_file", delete("cameras/overhead/depth.mkv"), DefectReason.MISSING_FILE),
    ("never_committed", delete("episode.json"), DefectReason.NOT_COMMITTED),
    (
        "unreadable_manifest",
        lambda f: (f / "episode.json").write_text('{"format": '),
        DefectReason.UNREADABLE_MANIFEST,
    ),
    (
        "future_format_version",
        edit_manifest(lambda m: m.update(format_version=3), checksums=False),
        DefectReason.UNSUPPORTED_VERSION,
    ),
    ("path_outside_episode", edit_manifest(unsafe_path, checksums=False), DefectReason.UNSAFE_PATH),
    ("manifest_without_fps", edit_manifest(lambda m: m.pop("fps")), DefectReason.SCHEMA),
    ("another_robot", edit_manifest(lambda m: m.update(robot="ur5e")), DefectReason.WRONG_ROBOT),
    ("zero_frames", frames_only(0), DefectReason.NO_FRAMES),
    ("states_not_a_zip", garbage_states, DefectReason.UNREADABLE_STATES),
    ("action_column_missing", edit_states(drop_action_column), DefectReason.SHAPE),
    ("nan_in_state", set_item("joint_position", (5, 2), np.nan), DefectReason.NON_FINITE),
    ("infinite_action", set_item("action", (7, 0), np.inf), DefectReason.NON_FINITE),
    ("non_monotonic_time", edit_states(swap_timestamps), DefectReason.TIMESTAMPS),
    ("time_not_at_fps", edit_states(stretch_timestamps), DefectReason.TIMESTAMPS),
    ("joint_beyond_limit", past_joint_limit, DefectReason.JOINT_LIMIT),
    ("quaternion_not_unit", edit_states(scale_quaternion), DefectReason.QUATERNION_NORM),
    ("contact_after_the_end", set_item("contact_frame", (0,), 10_000), DefectReason.CONTACTS),
    ("video_longer_than_states", frames_only(59), DefectReason.CAMERA_STREAM),
    ("missing_camera", drop_camera("overhead"), "missing_camera"),
    ("duplicate_episode_id", lambda f: None, "duplicate_episode"),
]


@pytest.fixture(scope="module")
def damaged(recorded: RecordedEpisodes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One robot folder: a good short episode, then one damaged copy of it per case."""
    folder = tmp_path_factory.mktemp("damaged")
    good = copy_episode(recorded.failed[0], folder / "a-good")
    for case, damage, _ in CASES:
        damage(copy_episode(good, folder / f"b-{case}"))
    return folder


@pytest.mark.parametrize(("case", "reason"), [(c, r) for c, _, r in CASES])
def test_a_damaged_episode_is_left_out_with_its_reason(
    damaged: Path, case: str, reason: str
) -> None:
    quality = assess_robot(
        SCENE_ID, RUN_ID, ROBOT, [damaged / "a-good", damaged / f"b-{case}"], PERMISSIVE
    )
    good, bad = quality.assessments
    assert good.included and good.reason is None
    assert not bad.included
    assert bad.reason == reason, bad.message


def test_every_damaged_episode_together_leaves_a_dataset_of_the_good_one(
    damaged: Path, tmp_path: Path
) -> None:
    quality = assess_robot(SCENE_ID, RUN_ID, ROBOT, sorted(damaged.iterdir()), PERMISSIVE)
    done = write_robot_dataset(quality, tmp_path / ROBOT, LeRobotSettings(), {})
    assert done.committed and done.summary is not None
    assert done.summary.total_episodes == 1
    reasons = {a.source: a.reason for a in done.quality.assessments}
    assert reasons == {"a-good": None, **{f"b-{c}": r for c, _, r in CASES}}
    assert done.quality.counts.excluded["non_finite"] == 2


def test_validation_reports_what_it_measured(damaged: Path) -> None:
    check = validate_episode(damaged / "b-joint_beyond_limit", QualitySettings())
    assert check.defect is not None
    details = check.defect.details
    assert details["joint"] == "robot/joint1" and details["frame"] == 20
    assert details["value"] > details["upper"] + 0.4
    late = validate_episode(damaged / "b-non_monotonic_time", QualitySettings())
    assert late.defect is not None and late.defect.details["frame"] == 11


def test_a_finger_slightly_past_its_soft_limit_is_tolerated(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    folder = copy_episode(recorded.failed[0], tmp_path / "ep")
    # The hand's driving joint: the last one with limits (the joints following it have none).
    uppers = manifest_of(folder)["state"]["joint_limits"]["upper"]
    finger = max(i for i, value in enumerate(uppers) if value is not None)
    set_item("joint_position", (30, finger), uppers[finger] + 0.01)(folder)
    assert validate_episode(folder, QualitySettings()).is_valid
    strict = QualitySettings(joint_limit_tolerance=0.001)
    assert validate_episode(folder, strict).defect.reason is DefectReason.JOINT_LIMIT  # type: ignore[union-attr]


def test_a_one_frame_episode_is_valid_counted_and_kept_out_unless_allowed(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    folders = [recorded.failed[0], recorded.one_frame]
    default = assess_robot(SCENE_ID, RUN_ID, ROBOT, folders, QualitySettings())
    one = next(a for a in default.assessments if a.facts and a.facts.n_frames == 1)
    assert one.is_valid and one.reason == "task_failed"
    assert one.quality is not None and one.quality.smoothness is None  # no jerk from 1 frame
    allowed = assess_robot(SCENE_ID, RUN_ID, ROBOT, folders, PERMISSIVE)
    done = write_robot_dataset(allowed, tmp_path / ROBOT, LeRobotSettings(), {})
    assert done.summary is not None
    assert sorted(e.length for e in done.summary.episodes) == [1, 60]


def test_a_very_long_episode_streams_into_the_dataset(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    folder = long_episode(recorded.failed[0], tmp_path / "episodes" / "long-episode", 2400)
    assert read_episode(folder).n_frames == 2400
    quality = assess_robot(SCENE_ID, RUN_ID, ROBOT, [folder], QualitySettings())
    [episode] = quality.assessments
    assert episode.included, episode.message
    assert len(path_preview(read_episode(folder).states())) <= 121
    done = write_robot_dataset(quality, tmp_path / ROBOT, LeRobotSettings(), {})
    assert done.summary is not None and done.summary.total_frames == 2400
    assert done.summary.episodes[0].length == 2400
