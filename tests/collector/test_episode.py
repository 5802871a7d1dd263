"""A recorded episode is physically sane, complete, verifiable and reproducible."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from bp_collector.demo_scenes import TABLE_TOP_Z, tabletop_scene
from bp_collector.mujoco.episode import EpisodeResult, simulate_episode
from bp_collector.mujoco.recording import EpisodeIntegrityError, read_episode
from bp_episode_format import SEGMENTATION_BOXES
from bp_scene_contract import read_scene_graph, read_task_config

from tests.collector.conftest import FPS, HEIGHT, WIDTH


def test_pick_place_lifts_the_cube_and_leaves_it_in_the_goal_region(
    cube_episode: EpisodeResult,
) -> None:
    episode = read_episode(cube_episode.out_dir)
    states = episode.states()
    ids = episode.manifest["state"]["object_ids"]
    cube = states["object_position"][:, ids.index("cube"), :]
    opening = states["gripper_opening"]
    start_z = cube[0, 2]

    assert cube_episode.success and episode.manifest["success"] is True
    # Lifted by the grasp: well above the table while the fingers are closed on it.
    lifted = (cube[:, 2] > start_z + 0.08) & (opening < 0.05)
    assert lifted.sum() > FPS // 2
    assert np.linalg.norm(states["ee_position"][lifted] - cube[lifted], axis=1).max() < 0.03
    region = episode.manifest["outcome"]["details"]
    final = cube[-1]
    assert 0.43 <= final[0] <= 0.57 and 0.02 <= final[1] <= 0.16
    assert abs(final[2] - (TABLE_TOP_Z + 0.025)) < 0.005
    assert region["at_rest"] is True
    assert episode.manifest["collisions"]["count"] == 0


def test_state_is_finite_and_timestamps_are_exactly_frame_index_over_fps(
    cube_episode: EpisodeResult,
) -> None:
    episode = read_episode(cube_episode.out_dir)
    states = episode.states()
    n = episode.n_frames
    assert n == cube_episode.n_frames > 0
    for name, array in states.items():
        if array.dtype.kind == "f":
            assert np.all(np.isfinite(array)), name
        if name.startswith(("contact_",)) or name == SEGMENTATION_BOXES:
            continue  # one row per contact or per visible object, not per frame
        assert len(array) == n, name
    assert np.array_equal(states["frame_index"], np.arange(n))
    assert np.array_equal(states["timestamp"], np.arange(n) / FPS)
    assert episode.manifest["fps"] == FPS
    assert episode.manifest["duration_s"] == n / FPS
    n_joints = len(episode.manifest["state"]["joint_names"])
    assert states["joint_position"].shape == (n, n_joints)
    assert states["action"].shape == (n, len(episode.manifest["state"]["action_names"]))
    norms = np.linalg.norm(states["ee_quaternion"], axis=1)
    assert np.allclose(norms, 1.0, atol=1e-9)


def test_every_camera_has_rgb_depth_and_segmentation_of_the_requested_size(
    cube_episode: EpisodeResult,
) -> None:
    episode = read_episode(cube_episode.out_dir)
    n = episode.n_frames
    assert episode.cameras == ["wrist", "overhead"]
    names = {int(k): v for k, v in episode.manifest["segmentation_ids"].items()}
    for camera in episode.cameras:
        rgb = episode.rgb(camera)
        depth = episode.depth_mm(camera)
        seg = episode.segmentation(camera)
        assert rgb.shape == (n, HEIGHT, WIDTH, 3) and rgb.dtype == np.uint8
        assert depth.shape == (n, HEIGHT, WIDTH) and depth.dtype == np.uint16
        assert seg.shape == (n, HEIGHT, WIDTH) and seg.dtype == np.uint16
        assert set(np.unique(seg).tolist()) <= set(names)
        assert rgb.std() > 5  # Not a blank image.
    overhead_seg = episode.segmentation("overhead")[0]
    overhead_depth = episode.depth_mm("overhead")[0]
    cube_id = next(k for k, v in names.items() if v == "cube")
    table_id = next(k for k, v in names.items() if v == "table")
    assert (overhead_seg == cube_id).any()
    # The table top is about a metre below the overhead camera, and the 5 cm cube stands out of
    # the table around it.
    cube = overhead_seg == cube_id
    rows, cols = np.nonzero(cube)
    around = np.zeros_like(cube)
    around[max(rows.min() - 3, 0) : rows.max() + 4, max(cols.min() - 3, 0) : cols.max() + 4] = True
    table_near = around & (overhead_seg == table_id)
    table_depth = float(np.median(overhead_depth[table_near]))
    cube_depth = float(np.median(overhead_depth[cube]))
    assert 700 < table_depth < 1500
    assert 20 < table_depth - cube_depth < 80
    wrist_seg = episode.segmentation("wrist")
    robot_id = next(k for k, v in names.items() if v == "robot")
    assert (wrist_seg == robot_id).any()  # The fingers are in the wrist camera's view.


def test_video_frames_are_presented_at_frame_index_over_fps(cube_episode: EpisodeResult) -> None:
    path = cube_episode.out_dir / "cameras" / "wrist" / "rgb.mp4"
    with av.open(str(path)) as container:
        times = [frame.time for frame in container.decode(video=0)]
    assert len(times) == cube_episode.n_frames
    assert np.allclose(times, np.arange(len(times)) / FPS, atol=1e-4, rtol=0)


def test_manifest_lists_every_file_with_its_checksum(cube_episode: EpisodeResult) -> None:
    manifest = json.loads((cube_episode.out_dir / "episode.json").read_text())
    listed = {f["path"] for f in manifest["files"]}
    on_disk = {
        p.relative_to(cube_episode.out_dir).as_posix()
        for p in cube_episode.out_dir.rglob("*")
        if p.is_file()
    } - {"episode.json"}
    assert listed == on_disk
    assert {
        "states.npz",
        "cameras/wrist/rgb.mp4",
        "cameras/overhead/depth.mkv",
        "cameras/overhead/segmentation.mkv",
    } <= listed
    assert manifest["format"] == "bp-raw-episode" and manifest["format_version"] == 2
    for key in (
        "episode_id",
        "task_id",
        "robot",
        "seed",
        "fps",
        "n_frames",
        "success",
        "collisions",
        "cameras",
    ):
        assert key in manifest


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flip_byte", "delete", "truncate"])
def test_a_damaged_file_is_detected(
    cube_episode: EpisodeResult, tmp_path: Path, damage: str
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(cube_episode.out_dir, copy)
    read_episode(copy)  # Intact copy verifies.
    target = copy / "cameras" / "overhead" / "depth.mkv"
    if damage == "flip_byte":
        _corrupt(target)
    elif damage == "delete":
        target.unlink()
    else:
        target.write_bytes(target.read_bytes()[:-10])
    with pytest.raises(EpisodeIntegrityError, match=r"depth\.mkv"):
        read_episode(copy)


def test_an_uncommitted_episode_is_refused(cube_episode: EpisodeResult, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(cube_episode.out_dir, copy)
    (copy / "episode.json").unlink()
    with pytest.raises(EpisodeIntegrityError, match="no manifest"):
        read_episode(copy)


def _run(
    scene: tuple[dict[str, Any], dict[str, Any]],
    out: Path,
    seed: int,
    task: str = "pick_place_cube",
    robot: str = "franka_panda",
) -> EpisodeResult:
    graph, config = scene
    return simulate_episode(
        read_scene_graph(graph), read_task_config(config), robot, task, seed, out, render=False
    )


def test_same_seed_gives_the_same_episode_and_another_seed_a_different_one(
    table_scene: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    first = _run(table_scene, tmp_path / "a", seed=11)
    again = _run(table_scene, tmp_path / "b", seed=11)
    other = _run(table_scene, tmp_path / "c", seed=12)
    sa, sb, sc = (read_episode(r.out_dir).states() for r in (first, again, other))
    assert first.n_frames == again.n_frames
    for key in sa:
        assert np.array_equal(sa[key], sb[key]), key
    assert first.success == again.success
    assert not np.array_equal(sa["object_position"][0], sc["object_position"][0])
    ma = json.loads((first.out_dir / "episode.json").read_text())
    mb = json.loads((again.out_dir / "episode.json").read_text())
    assert ma["files"] == mb["files"]  # Byte-identical states.npz.


def test_an_unreachable_target_is_recorded_as_a_failed_episode(
    table_scene: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    graph, config = table_scene
    # Move the cube onto the floor two metres behind the robot.
    cube = next(n for n in graph["nodes"] if n["asset_id"] == "cube")
    cube["bbox"] = {"min": [-2.025, -0.025, 0.0], "max": [-1.975, 0.025, 0.05]}
    cube["pose"]["position"] = [-2.0, 0.0, 0.025]
    result = simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        "franka_panda",
        "pick_place_cube",
        0,
        tmp_path / "unreachable",
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        max_seconds=4.0,
    )
    assert result.success is False
    episode = read_episode(result.out_dir)
    assert episode.manifest["success"] is False
    assert episode.manifest["outcome"]["reason"] == "object not in goal region"
    assert episode.n_frames == 4 * FPS
    assert episode.rgb("overhead").shape[0] == episode.n_frames


def test_an_obstacle_in_the_arms_path_is_counted_as_a_collision(
    table_scene: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    graph, config = table_scene
    z = TABLE_TOP_Z
    graph["nodes"].append(
        {
            "asset_id": "post",
            "semantic": "post",
            "size": [0.04, 0.04, 0.5],
            "pose": {"position": [0.47, -0.04, z + 0.25], "orientation": [1, 0, 0, 0]},
            "bbox": {"min": [0.45, -0.06, z], "max": [0.49, -0.02, z + 0.5]},
            "sim_role": "static",
            "affordances": [],
            "properties": {"mass": 5, "friction": 0.8},
            "is_static": True,
            "usd_path": "/World/Objects/post",
            "articulation": None,
        }
    )
    result = _run((graph, config), tmp_path / "blocked", seed=0)
    manifest = read_episode(result.out_dir).manifest
    assert result.collision_count > 0
    assert manifest["collisions"]["peak_force_n"] > 1.0
    assert any("node/post" in pair for pair in manifest["collisions"]["pairs"])
    states = read_episode(result.out_dir).states()
    assert states["collisions_started"].sum() == result.collision_count
    assert states["contact_is_collision"].any()


def test_grasping_the_target_is_not_a_collision(cube_episode: EpisodeResult) -> None:
    states = read_episode(cube_episode.out_dir).states()
    manifest = read_episode(cube_episode.out_dir).manifest
    names = {int(k): v for k, v in manifest["segmentation_ids"].items()}
    robot_id = next(k for k, v in names.items() if v == "robot")
    cube_id = next(k for k, v in names.items() if v == "cube")
    a, b = states["contact_entity_a"], states["contact_entity_b"]
    touching = ((a == robot_id) & (b == cube_id)) | ((b == robot_id) & (a == cube_id))
    assert touching.any()
    assert not states["contact_is_collision"][touching].any()


def test_recording_again_into_the_same_directory_replaces_the_episode_whole(
    table_scene: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    graph, config = table_scene
    out = tmp_path / "again"
    simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        "franka_panda",
        "pick_place_cube",
        0,
        out,
        cameras=("overhead",),
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        max_seconds=0.5,
    )
    assert (out / "cameras" / "overhead" / "rgb.mp4").is_file()
    simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        "franka_panda",
        "pick_place_cube",
        0,
        out,
        fps=FPS,
        max_seconds=0.5,
        render=False,
    )
    episode = read_episode(out)
    assert [f["path"] for f in episode.manifest["files"]] == ["states.npz"]
    assert not (out / "cameras").exists()


def test_a_task_the_expert_cannot_attempt_is_still_recorded_as_failed(
    table_scene: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    graph, config = table_scene
    task = next(t for t in config["tasks"] if t["task_id"] == "pick_place_cube")
    task["target"] = "table"  # A static node: nothing to pick up.
    result = simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        "franka_panda",
        "pick_place_cube",
        0,
        tmp_path / "static",
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        max_seconds=1.0,
    )
    episode = read_episode(result.out_dir)
    assert result.success is False
    assert episode.manifest["outcome"]["reason"].startswith("expert could not plan")
    assert episode.manifest["expert"]["phase"] == "not started"
    assert episode.n_frames >= 1  # Nothing to wait for: the episode ends after its first frame.
    assert episode.rgb("overhead").shape[0] == episode.n_frames


def test_fingertip_forces_carry_the_lifted_cube_and_squeeze_it_from_both_sides(
    cube_episode: EpisodeResult,
) -> None:
    episode = read_episode(cube_episode.out_dir)
    states = episode.states()
    ids = episode.manifest["state"]["object_ids"]
    cube = states["object_position"][:, ids.index("cube"), :]
    forces = states["fingertip_force_n"]
    arm = len(episode.manifest["state"]["action_names"]) - 1
    fingers = len(episode.manifest["state"]["joint_names"]) - arm
    lifted = (cube[:, 2] > cube[0, 2] + 0.08) & (states["gripper_opening"] < 0.05)

    assert forces.shape == (episode.n_frames, fingers, 3)
    # Held still in the air, the cube (0.1 kg) weighs on the fingers: their z forces sum to -m g.
    weight = forces[lifted].sum(axis=1)[:, 2].mean()
    assert weight == pytest.approx(-0.1 * 9.81, rel=0.15)
    # The grip squeezes: the two fingers are pushed apart, with equal and opposite forces.
    left, right = forces[lifted, 0].mean(axis=0), forces[lifted, 1].mean(axis=0)
    assert np.linalg.norm(left) > 2.0 and np.dot(left, right) < 0
    # Before the approach nothing touches the fingers.
    assert np.all(forces[0] == 0.0)


def test_a_run_sets_the_fixed_cameras_field_of_view_and_records_it(tmp_path: Path) -> None:
    graph, config = tabletop_scene("franka_panda")
    result = simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        "franka_panda",
        "pick_place_cube",
        seed=3,
        out_dir=tmp_path / "ep",
        cameras=("wrist", "overhead", "front"),
        width=80,
        height=60,
        fps=FPS,
        max_seconds=0.2,
        stop_when_done=False,
        fovy_deg=70.0,
    )
    cameras = {c["name"]: c for c in read_episode(result.out_dir).manifest["cameras"]}
    assert cameras["overhead"]["fovy_deg"] == pytest.approx(70.0)
    assert cameras["front"]["fovy_deg"] == pytest.approx(70.0)
    assert cameras["wrist"]["fovy_deg"] == pytest.approx(75.0)  # the hand camera keeps its lens
    assert (cameras["front"]["width"], cameras["front"]["height"]) == (80, 60)
