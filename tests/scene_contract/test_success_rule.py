"""The success rule, predicate by predicate, at the edges of its tolerances."""

from __future__ import annotations

import pytest
from bp_scene_contract import (
    BodyState,
    Box,
    JointAtLeast,
    JointAtMost,
    ObjectInRegion,
    ObjectInside,
    ObjectOn,
    Observation,
    judge,
)
from bp_scene_contract.success import REGION_SLACK_M, REST_ANGULAR_RAD_S

TABLE = Box(min=(0.0, 0.0, 0.0), max=(1.0, 1.0, 0.75))
# A thin region on the table top, and a 6 cm cube (half height 3 cm).
REGION = Box(min=(0.4, 0.4, 0.75), max=(0.6, 0.6, 0.76))
HALF = 0.03


def cube(x: float, y: float, z: float, speed: float = 0.0, spin: float = 0.0) -> Observation:
    return Observation(bodies={"cube": BodyState((x, y, z), HALF, speed, spin)})


IN_REGION = ObjectInRegion(object="cube", region=REGION)


def test_an_object_standing_in_its_region_at_rest_succeeds_with_the_numbers_it_was_judged_on() -> (
    None
):
    outcome = judge(IN_REGION, cube(0.5, 0.5, 0.75 + HALF))
    assert (outcome.success, outcome.reason) == (True, "object at rest in goal region")
    assert outcome.to_record()["details"] == {
        "object_position": [0.5, 0.5, 0.78],
        "linear_speed_m_s": 0.0,
        "angular_speed_rad_s": 0.0,
        "inside_xy": True,
        "inside_z": True,
        "at_rest": True,
    }


def test_the_region_has_no_slack_across_but_half_a_height_and_slack_below() -> None:
    assert not judge(IN_REGION, cube(0.601, 0.5, 0.78)).success
    assert judge(IN_REGION, cube(0.6, 0.5, 0.78)).success
    floor = REGION.min[2] - HALF - REGION_SLACK_M
    assert judge(IN_REGION, cube(0.5, 0.5, floor + 1e-6)).success
    assert not judge(IN_REGION, cube(0.5, 0.5, floor - 1e-3)).success
    assert judge(IN_REGION, cube(0.5, 0.5, REGION.max[2] + HALF)).success
    outcome = judge(IN_REGION, cube(0.5, 0.5, REGION.max[2] + HALF + 1e-3))
    assert (outcome.success, outcome.reason) == (False, "object not in goal region")
    assert outcome.details["inside_xy"] and not outcome.details["inside_z"]


def test_a_placed_object_that_still_moves_or_spins_has_not_succeeded() -> None:
    sliding = judge(IN_REGION, cube(0.5, 0.5, 0.78, speed=IN_REGION.max_speed))
    assert (sliding.success, sliding.reason) == (False, "object in goal region but still moving")
    spinning = judge(IN_REGION, cube(0.5, 0.5, 0.78, spin=REST_ANGULAR_RAD_S))
    assert not spinning.success and not spinning.details["at_rest"]
    assert judge(IN_REGION, cube(0.5, 0.5, 0.78, speed=0.049, spin=0.49)).success


def test_on_a_support_means_over_its_top_and_touching_it_within_the_tolerance() -> None:
    on = ObjectOn(object="cube", support="table")
    boxes = {"table": TABLE}

    def at(x: float, z: float) -> Observation:
        return Observation(bodies=cube(x, 0.5, z).bodies, boxes=boxes)

    assert judge(on, at(0.5, 0.75 + HALF)).success
    assert judge(on, at(1.0 + on.tolerance, 0.75 + HALF)).success  # over the grown footprint
    assert not judge(on, at(1.0 + on.tolerance + 1e-3, 0.75 + HALF)).success
    lifted = judge(on, at(0.5, 0.75 + HALF + on.tolerance + 1e-3))
    assert (lifted.success, lifted.reason) == (False, "object not on table")
    assert lifted.details["bottom_gap_m"] == pytest.approx(0.021)


def test_inside_a_container_means_within_its_box_grown_by_the_tolerance() -> None:
    bowl = Box(min=(0.2, 0.2, 0.75), max=(0.3, 0.3, 0.8))
    inside = ObjectInside(object="cube", container="bowl")

    def at(z: float) -> Observation:
        return Observation(bodies=cube(0.25, 0.25, z).bodies, boxes={"bowl": bowl})

    assert judge(inside, at(0.78)).reason == "object at rest inside bowl"
    assert judge(inside, at(0.8 + inside.tolerance)).success
    assert not judge(inside, at(0.8 + inside.tolerance + 1e-3)).success
    assert not judge(inside, at(0.75 - inside.tolerance - 1e-3)).success


def test_joints_are_judged_by_their_bound() -> None:
    at_least = JointAtLeast(object="cabinet", joint="door", value=0.8)
    at_most = JointAtMost(object="cabinet", joint="door", value=0.1)
    half_open = Observation(joints={("cabinet", "door"): 0.8})
    done = judge(at_least, half_open)
    assert (done.success, done.reason) == (True, "joint reached the required value")
    assert done.details == {"joint_value": 0.8, "required": 0.8, "bound": "at least"}
    assert judge(at_most, half_open).reason == "joint short of the required value"


def test_what_the_observation_lacks_fails_and_a_diverged_simulation_fails_everything() -> None:
    assert judge(IN_REGION, Observation()).reason == "object 'cube' is not a free body in the world"
    on = ObjectOn(object="cube", support="shelf")
    assert judge(on, cube(0.5, 0.5, 0.78)).reason == "object 'shelf' is not in the world"
    door = JointAtLeast(object="cabinet", joint="door", value=0.8)
    assert not judge(door, Observation()).success
    diverged = Observation(bodies=cube(0.5, 0.5, 0.78).bodies, diverged=True)
    outcome = judge(IN_REGION, diverged)
    assert (outcome.success, outcome.reason) == (False, "simulation diverged (non-finite state)")
