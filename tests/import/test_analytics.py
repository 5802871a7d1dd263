"""Every analytics measure against values worked out by hand on small constructed episodes."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from bp_import.analytics.coverage import (
    coverage_map,
    diversity_score,
    normalised_entropy,
    randomisation_factors,
)
from bp_import.analytics.document import contact_row
from bp_import.analytics.embodiment import embodiment_matrix
from bp_import.analytics.language import assign_instructions, language_annotations
from bp_import.analytics.sim_to_real import sim_to_real_notes
from bp_import.analytics.trajectory import EpisodeTrajectory, measure_trajectory, per_task
from bp_import.episodes.validation import RawEpisodeManifest

FPS = 10


def manifest(**changes: Any) -> RawEpisodeManifest:
    body: dict[str, Any] = {
        "episode_id": "scene.pick_cube.arm.s1",
        "scene_id": "scene",
        "task_id": "pick_cube",
        "target": "cube",
        "instructions": ["Pick up the cube."],
        "robot": "arm",
        "seed": 1,
        "fps": FPS,
        "n_frames": 6,
        "success": True,
        "collisions": {"count": 0, "peak_force_n": 0.0, "frames_in_collision": 0, "pairs": {}},
        "cameras": [],
        "segmentation_ids": {"0": "background", "1": "floor", "2": "robot", "3": "cube"},
        "state": {
            "file": "states.npz",
            "joint_names": ["j0", "j1", "finger_l", "finger_r"],
            "joint_limits": {"lower": [-1.0, -0.5, 0.0, 0.0], "upper": [1.0, 0.5, 0.04, 0.04]},
            "action_names": ["j0", "j1", "gripper"],
            "object_ids": ["cube"],
            "articulation_joints": [],
            "geom_names": [],
        },
    }
    body.update(changes)
    return RawEpisodeManifest.model_validate(body)


def states() -> dict[str, np.ndarray]:
    """Six frames at 10 fps: the hand moves 0.1 m per frame along x three times, then 0.1 m
    along y, then rests; the gripper is commanded closed in frames 2 and 3, touching the cube
    from frame 2; the cube moves 0.1 m between frames 2 and 3 and stays."""
    q0 = [0.0, 0.1, 0.2, 0.3, 0.4, 0.4]
    return {
        "ee_position": np.array(
            [[0, 0, 0], [0.1, 0, 0], [0.2, 0, 0], [0.3, 0, 0], [0.3, 0.1, 0], [0.3, 0.1, 0]],
            dtype=float,
        ),
        "joint_position": np.array([[q, 0.0, 0.04, 0.04] for q in q0]),
        "action": np.array(
            [[q, 0.0, g] for q, g in zip(q0, [0.04, 0.04, 0, 0, 0.04, 0.04], strict=True)]
        ),
        "gripper_opening": np.array([0.08, 0.08, 0.05, 0.05, 0.08, 0.08]),
        "object_position": np.array(
            [[[x, 0.0, 0.02]] for x in (0.5, 0.5, 0.5, 0.6, 0.6, 0.6)], dtype=float
        ),
        "articulation_position": np.zeros((6, 0)),
        "contact_frame": np.array([2, 3], dtype=np.int32),
        "contact_entity_a": np.array([2, 3], dtype=np.uint16),
        "contact_entity_b": np.array([3, 2], dtype=np.uint16),
    }


def test_trajectory_measures_match_the_hand_computation() -> None:
    t = measure_trajectory(manifest(), states(), jerk_scale_rad_s3=50.0, path_efficiency=0.8)

    assert t.path_length_m == pytest.approx(0.4)
    # Grasp at frame 2 (closed and touching), place at frame 4 (open again): carried from
    # (0.2, 0) via (0.3, 0) to (0.3, 0.1), 0.2 m against a straight 0.1 * sqrt(2) m.
    assert (t.grasp_frame, t.place_frame) == (2, 4)
    assert t.carry_path_m == pytest.approx(0.2)
    assert t.carry_optimum_m == pytest.approx(0.1 * math.sqrt(2))
    assert t.carry_optimality == pytest.approx(math.sqrt(2) / 2)
    # Third differences of j0: 0, 0, -0.1 rad per (0.1 s)^3; j1 never moves: 6 values.
    assert t.joint_jerk_rms_rad_s3 == pytest.approx(math.sqrt(100.0**2 / 6))
    assert t.smoothness == pytest.approx(1 / (1 + math.sqrt(100.0**2 / 6) / 50))
    # x: 0, -100, 100; y: 0, 100, -200; z: 0, 0, 0 (m/s^3): 9 values.
    assert t.ee_jerk_rms_m_s3 == pytest.approx(math.sqrt(70000 / 9))
    # The cube is within 1 cm of where it ends from frame 3 on.
    assert t.time_to_success_s == pytest.approx(0.3)
    # Only the last step (frame 4 to 5) has nothing moving.
    assert t.idle_time_s == pytest.approx(0.1)
    # j0 comes to 0.6 rad of its upper limit, j1 stays 0.5 rad from both: j1 is closest in
    # radians; as a fraction of the range j0 is (0.6 / 2 = 0.3 against 0.5 / 1).
    assert t.min_joint_margin_rad == pytest.approx(0.5)
    assert t.min_joint_margin_joint == "j1"
    assert t.min_joint_margin_fraction == pytest.approx(0.3)
    assert t.duration_s == pytest.approx(0.6)
    assert t.path_efficiency == 0.8


def test_a_failed_episode_has_no_time_to_success_and_an_open_gripper_no_carry() -> None:
    arrays = states()
    arrays["action"][:, -1] = 0.04
    t = measure_trajectory(manifest(success=False), arrays, jerk_scale_rad_s3=50.0)

    assert t.time_to_success_s is None
    assert t.grasp_frame is None and t.carry_optimality is None


def test_an_articulated_target_settles_on_its_joint() -> None:
    arrays = states()
    arrays["articulation_position"] = np.array([[0.0], [0.5], [1.0], [1.2], [1.21], [1.2]])
    state = {
        **manifest().state.model_dump(),
        "object_ids": [],
        "articulation_joints": ["cube/hinge"],
    }
    arrays["object_position"] = np.zeros((6, 0, 3))
    t = measure_trajectory(manifest(state=state), arrays, jerk_scale_rad_s3=50.0)

    # Within 0.02 of the final 1.2 from frame 3 on.
    assert t.time_to_success_s == pytest.approx(0.3)


def trajectory(
    robot: str, task: str, success: bool, duration: float, efficiency: float
) -> EpisodeTrajectory:
    base = measure_trajectory(manifest(), states(), jerk_scale_rad_s3=50.0)
    return replace(
        base,
        robot=robot,
        task_id=task,
        success=success,
        duration_s=duration,
        path_efficiency=efficiency,
    )


def test_per_task_summaries_are_means_minima_and_maxima() -> None:
    rows = per_task([trajectory("a", "t1", True, 2.0, 0.5), trajectory("a", "t1", False, 4.0, 0.7)])

    assert rows["t1"]["episodes"] == 2 and rows["t1"]["success_rate"] == 0.5
    assert rows["t1"]["duration_s"] == {"n": 2, "mean": 3.0, "min": 2.0, "max": 4.0}
    assert rows["t1"]["path_efficiency"]["mean"] == pytest.approx(0.6)


def test_the_embodiment_matrix_names_the_tasks_only_some_robots_do() -> None:
    matrix = embodiment_matrix(
        {
            "panda": [
                trajectory("panda", "t1", True, 2.0, 0.5),
                trajectory("panda", "t1", False, 4.0, 0.7),
                trajectory("panda", "t2", True, 3.0, 0.9),
            ],
            "ur5e": [trajectory("ur5e", "t1", False, 10.0, 0.3)],
        }
    )

    panda, ur5e = matrix["matrix"]["t1"]["panda"], matrix["matrix"]["t1"]["ur5e"]
    assert panda == {
        "episodes": 2,
        "success_rate": 0.5,
        "path_efficiency": 0.6,
        "episode_time_s": 2.0,
    }
    # No success: the time is over every episode.
    assert ur5e == {
        "episodes": 1,
        "success_rate": 0.0,
        "path_efficiency": 0.3,
        "episode_time_s": 10.0,
    }
    assert matrix["matrix"]["t2"]["ur5e"] is None
    assert matrix["attempted_by_only_some"] == {"t2": ["panda"]}
    assert matrix["done_by_only_some"] == {"t1": ["panda"]}


def test_normalised_entropy_and_the_diversity_score() -> None:
    assert normalised_entropy([0.0, 1.0, 2.0, 3.0]) == pytest.approx(1.0)
    # Four bins over [0, 1]: 3 values in the first, 1 in the last.
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) / math.log(4)
    assert normalised_entropy([0.0, 0.0, 0.0, 1.0]) == pytest.approx(expected)
    assert normalised_entropy([5.0, 5.0, 5.0]) == 0.0
    score, per_factor = diversity_score(
        [{"a": 0.0, "b": 5.0}, {"a": 1.0, "b": 5.0}, {"a": 2.0, "b": 5.0}, {"a": 3.0, "b": 5.0}]
    )
    assert per_factor == {"a": 1.0, "b": 0.0} and score == pytest.approx(0.5)
    assert diversity_score([{"a": 1.0}]) == (0.0, {})


def test_the_coverage_map_counts_start_points_in_a_ten_by_ten_grid() -> None:
    grid = coverage_map(np.array([[0.0, 0.0], [0.01, 0.0], [0.019, 0.019]]))

    # Side max(0.019, 2 cm) = 0.02 m around the box's centre (0.0095, 0.0095).
    assert grid["side_m"] == pytest.approx(0.02)
    assert grid["origin_xy"] == pytest.approx([-0.0005, -0.0005])
    counts = np.array(grid["counts"])
    assert counts[0, 0] == 1 and counts[0, 5] == 1 and counts[9, 9] == 1
    assert grid["coverage"] == pytest.approx(0.03)


def test_randomisation_factors_read_the_draw_of_the_manifest() -> None:
    draw = {
        "objects": {"cube": {"dx": 0.01, "dy": -0.02, "dyaw": 0.3}},
        "light_direction": [0.0, -0.6, -0.8],
        "light_intensity": 0.8,
        "colour_scale": {"cube": [0.9, 1.0, 1.1]},
        "floor_rgb": [0.5, 0.5, 0.475],
        "cameras": {"wrist": {"position": [0.01, 0.0, -0.01], "target": [0.0, 0.02, 0.0]}},
    }
    factors = randomisation_factors(manifest(randomization=draw))

    assert factors["object.cube.dy"] == -0.02
    assert factors["light.azimuth_rad"] == pytest.approx(-math.pi / 2)
    assert factors["light.elevation_rad"] == pytest.approx(math.asin(0.8))
    assert factors["colour.cube"] == pytest.approx(1.0)
    assert factors["colour.floor"] == 0.5
    assert factors["camera.wrist.target.y"] == 0.02
    assert len(factors) == 3 + 3 + 2 + 6


def test_instructions_are_spread_over_a_tasks_episodes_in_seed_order() -> None:
    lines = ["Put the cube on the plate.", "Place the cube onto the plate.", "Set the cube down."]
    episodes = [
        manifest(episode_id=f"scene.t.arm.s{seed}", seed=seed, instructions=lines)
        for seed in (5, 1, 3, 2)
    ]
    chosen = assign_instructions(episodes)

    assert [chosen[f"scene.t.arm.s{s}"] for s in (1, 2, 3, 5)] == [*lines, lines[0]]
    annotations = language_annotations(episodes, chosen)
    task = annotations["tasks"]["pick_cube"]
    assert task["count"] == 3
    assert task["episodes_per_instruction"] == {lines[0]: 2, lines[1]: 1, lines[2]: 1}
    assert annotations["instructions_in_dataset"] == 3


def test_sim_to_real_puts_the_simulated_span_beside_the_real_range() -> None:
    factors = {
        "light.intensity": {"min": 0.5, "max": 1.0},
        "object.cube.dx": {"min": -0.02, "max": 0.01},
    }
    rows = {r["variation"]: r for r in sim_to_real_notes(factors)["ranges"]}

    assert rows["light intensity"]["simulated"]["max_over_min"] == 2.0
    assert rows["object position"]["simulated"] == {
        "varied": True,
        "factors": 1,
        "min": -0.02,
        "max": 0.01,
    }
    assert rows["object size"]["simulated"] == {
        "varied": False,
        "note": "not randomised in these episodes",
    }


def test_contact_forces_take_the_peak_and_the_mean_while_touching() -> None:
    forces = np.zeros((4, 2, 3))
    forces[1] = [[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]  # 5 N on one finger
    forces[2] = [[0.0, 0.0, 1.0], [0.0, 0.0, -2.0]]  # 1 N and 2 N
    row = contact_row("a", forces)

    assert row["peak_finger_force_n"] == 5.0
    assert row["mean_total_force_in_contact_n"] == pytest.approx((5.0 + 3.0) / 2)
    assert row["frames_in_contact"] == 2
