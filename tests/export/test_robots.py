"""Robot kinematics: forward kinematics against published poses, IK round trips and limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bp_common.errors import InvalidInput
from bp_export.tasks.kinematics import IkTarget, forward_kinematics, solve_ik
from bp_export.tasks.robots import (
    FETCH_TORSO_HEIGHT,
    ROBOT_NAMES,
    approximate_reach,
    get_robot,
    reach_upper_bound,
)


def test_the_three_robots_are_known_by_name() -> None:
    assert set(ROBOT_NAMES) == {"franka_panda", "ur5e", "fetch"}
    assert get_robot("franka_panda").dof == 7
    assert get_robot("ur5e").dof == 6
    assert get_robot("fetch").dof == 7


def test_an_unknown_robot_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        get_robot("kuka_iiwa")
    assert caught.value.context["robot"] == "kuka_iiwa"


def test_panda_ready_pose_puts_the_hand_where_franka_publishes_it() -> None:
    # Franka's "ready" configuration; the hand TCP is then 0.307 m ahead at 0.487 m height,
    # pointing straight down with its x axis along the base x axis.
    panda = get_robot("franka_panda")
    tcp = forward_kinematics(panda.chain, panda.home)
    np.testing.assert_allclose(tcp[:3, 3], [0.3069, 0.0, 0.4869], atol=5e-4)
    np.testing.assert_allclose(tcp[:3, :3], np.diag([1.0, -1.0, -1.0]), atol=1e-6)


def test_panda_zero_configuration_matches_the_dh_table() -> None:
    # All joints at zero (joint 4 just outside its range, which FK does not care about): the
    # flange points down at x = a7 = 0.088 m, z = d1 + d3 + d5 - d_flange = 0.926 m.
    panda = get_robot("franka_panda")
    tcp = forward_kinematics(panda.chain, [0.0] * 7)
    flange = tcp[:3, 3] - 0.1034 * tcp[:3, 2]
    np.testing.assert_allclose(flange, [0.088, 0.0, 0.926], atol=1e-6)
    np.testing.assert_allclose(tcp[:3, 2], [0.0, 0.0, -1.0], atol=1e-9)


def test_ur5e_zero_configuration_matches_the_published_dh_pose() -> None:
    # With every joint at zero the UR5e flange is at (a2 + a3, -(d4 + d6), d1 - d5).
    ur5e = get_robot("ur5e")
    tcp = forward_kinematics(ur5e.chain, [0.0] * 6)
    flange = tcp[:3, 3] - 0.15 * tcp[:3, 2]
    np.testing.assert_allclose(flange, [-0.8172, -0.2329, 0.0628], atol=1e-4)


def test_ur5e_base_joint_turns_the_whole_arm_about_vertical() -> None:
    ur5e = get_robot("ur5e")
    q = list(ur5e.home)
    before = forward_kinematics(ur5e.chain, q)[:3, 3]
    q[0] += math.pi / 2
    after = forward_kinematics(ur5e.chain, q)[:3, 3]
    np.testing.assert_allclose(after, [-before[1], before[0], before[2]], atol=1e-9)


def test_fetch_straight_arm_reaches_forward_at_shoulder_height() -> None:
    fetch = get_robot("fetch")
    tcp = forward_kinematics(fetch.chain, [0.0] * 7)
    shoulder_z = 0.37743 + FETCH_TORSO_HEIGHT + 0.34858 + 0.06
    forward = -0.086875 + 0.119525 + 0.117 + 0.219 + 0.133 + 0.197 + 0.1245 + 0.1385 + 0.16645
    np.testing.assert_allclose(tcp[:3, 3], [forward, 0.0, shoulder_z], atol=1e-6)
    np.testing.assert_allclose(tcp[:3, 2], [1.0, 0.0, 0.0], atol=1e-9)


def test_fetch_elbow_flex_pitches_the_forearm_down() -> None:
    fetch = get_robot("fetch")
    tcp = forward_kinematics(fetch.chain, [0.0, 0.0, 0.0, math.pi / 2, 0.0, 0.0, 0.0])
    elbow_x = -0.086875 + 0.119525 + 0.117 + 0.219 + 0.133
    shoulder_z = 0.37743 + FETCH_TORSO_HEIGHT + 0.34858 + 0.06
    below = 0.197 + 0.1245 + 0.1385 + 0.16645
    np.testing.assert_allclose(tcp[:3, 3], [elbow_x, 0.0, shoulder_z - below], atol=1e-6)
    np.testing.assert_allclose(tcp[:3, 2], [0.0, 0.0, -1.0], atol=1e-9)


@pytest.mark.parametrize("name", ROBOT_NAMES)
def test_ik_recovers_poses_of_random_configurations(name: str) -> None:
    robot = get_robot(name)
    chain = robot.chain
    rng = np.random.default_rng(42)
    for _ in range(8):
        q = rng.uniform(np.maximum(chain.lower, -3.0), np.minimum(chain.upper, 3.0))
        goal = forward_kinematics(chain, q)
        solution = solve_ik(
            chain, IkTarget(tuple(goal[:3, 3]), rotation=goal[:3, :3]), seeds=[robot.home]
        )
        assert solution.success
        assert chain.within_limits(solution.q)
        reached = forward_kinematics(chain, solution.q)
        assert np.linalg.norm(reached[:3, 3] - goal[:3, 3]) < 0.005
        cos_angle = (np.trace(reached[:3, :3].T @ goal[:3, :3]) - 1) / 2
        assert math.acos(min(1.0, cos_angle)) < 0.03


@pytest.mark.parametrize("name", ROBOT_NAMES)
def test_ik_finds_a_top_down_grasp_in_front_of_the_robot(name: str) -> None:
    robot = get_robot(name)
    height = 0.8 if robot.mount == "mobile_base" else 0.1
    target = IkTarget((0.55, 0.1, height), approach=(0.0, 0.0, -1.0))
    solution = solve_ik(robot.chain, target, seeds=[robot.home])
    assert solution.success
    tcp = forward_kinematics(robot.chain, solution.q)
    np.testing.assert_allclose(tcp[:3, 3], target.position, atol=0.005)
    assert tcp[:3, 2] @ np.array([0.0, 0.0, -1.0]) > math.cos(0.03)


@pytest.mark.parametrize("name", ROBOT_NAMES)
def test_ik_reports_failure_for_a_target_beyond_reach(name: str) -> None:
    robot = get_robot(name)
    far = reach_upper_bound(name) + 0.3
    solution = solve_ik(robot.chain, IkTarget((far, 0.0, 0.5)), seeds=[robot.home])
    assert not solution.success
    assert solution.position_error > 0.2
    assert robot.chain.within_limits(solution.q)


def test_ik_keeps_panda_joint_four_inside_its_limits() -> None:
    panda = get_robot("franka_panda")
    solution = solve_ik(
        panda.chain, IkTarget((0.3, -0.2, 0.2), approach=(0.0, 0.0, -1.0)), seeds=[panda.home]
    )
    assert solution.success
    assert -3.0718 <= solution.q[3] <= -0.0698


@pytest.mark.parametrize("name", ROBOT_NAMES)
def test_approximate_reach_is_positive_and_below_the_bound(name: str) -> None:
    assert 0.5 < approximate_reach(name) <= reach_upper_bound(name)


def test_panda_reach_agrees_with_its_datasheet() -> None:
    # 855 mm to the flange; the hand adds up to 0.1034 m beyond it.
    assert 0.855 < approximate_reach("franka_panda") < 0.855 + 0.1034 + 0.01
