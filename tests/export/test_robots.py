"""Planning's robots: the simulated models' chains, IK round trips, reach and limits.

That each chain is exactly the simulated arm, and matches the published kinematics, is tested
with the models themselves (tests/robot_models).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from bp_common.errors import InvalidInput
from bp_export.tasks.kinematics import IkTarget, forward_kinematics, solve_ik
from bp_export.tasks.robots import (
    ROBOT_NAMES,
    approximate_reach,
    get_robot,
    reach_upper_bound,
)


def test_planning_knows_the_five_simulated_robots() -> None:
    assert set(ROBOT_NAMES) == {"franka_panda", "ur5e", "ur10", "fetch", "gr1"}
    assert [get_robot(n).dof for n in ROBOT_NAMES] == [7, 6, 6, 7, 8]


def test_an_unknown_robot_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        get_robot("kuka_iiwa")
    assert caught.value.context["robot"] == "kuka_iiwa"


def test_panda_ready_pose_points_the_hand_straight_down_ahead_of_the_base() -> None:
    panda = get_robot("franka_panda")
    tcp = forward_kinematics(panda.chain, panda.home)
    np.testing.assert_allclose(tcp[:3, 3][:2], [0.307, 0.0], atol=1e-3)
    np.testing.assert_allclose(tcp[:3, 2], [0.0, 0.0, -1.0], atol=1e-3)


def test_ur5e_base_joint_turns_the_whole_arm_about_vertical() -> None:
    ur5e = get_robot("ur5e")
    q = list(ur5e.home)
    before = forward_kinematics(ur5e.chain, q)[:3, 3]
    q[0] += math.pi / 2
    after = forward_kinematics(ur5e.chain, q)[:3, 3]
    np.testing.assert_allclose(after, [-before[1], before[0], before[2]], atol=1e-9)


def test_the_gripper_span_is_read_from_the_hand_model() -> None:
    assert get_robot("franka_panda").gripper_max_opening == pytest.approx(0.08, abs=1e-3)
    assert get_robot("ur5e").gripper_max_opening == pytest.approx(0.0825, abs=2e-3)


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
    centre = robot.reach_centre()
    # Ahead of the shoulder by half its reach and a little below it, as a table top would be.
    ahead = 0.5 * approximate_reach(name)
    target = IkTarget((centre[0] + ahead, centre[1], centre[2] - 0.25), approach=(0.0, 0.0, -1.0))
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
    assert 0.4 < approximate_reach(name) <= reach_upper_bound(name)


@pytest.mark.parametrize("name", ["franka_panda", "ur5e", "ur10"])
def test_reach_agrees_with_the_datasheets(name: str) -> None:
    # The datasheet's reach ends at the flange; the hand adds up to about 0.2 m beyond it.
    published = get_robot(name).published_reach
    assert published is not None
    assert published < approximate_reach(name) < published + 0.25
