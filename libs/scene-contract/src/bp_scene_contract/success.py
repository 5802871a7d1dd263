"""The success rule: whether a task's success predicate holds in the observed end of an episode.

This is the rule every dataset so far was judged by (it was the MuJoCo collector's); a backend
only observes, it never judges on its own. An observation is plain numbers in the world frame:
where each movable object's body is, half its height, its linear and angular speed; where every
object's box is now (a movable object's scene-graph box moved with its body, any other object's
box as the scene graph has it); the value of every articulated joint; and whether the simulation
diverged.

- A diverged simulation (a non-finite state) fails every predicate.
- The object of `object_in_region`, `object_on` and `object_inside` must be a movable body of
  the observation. It is at rest when its linear speed is below the predicate's `max_speed`
  (m/s) and its angular speed below `REST_ANGULAR_RAD_S`; a placed object that is not at rest
  fails ("still moving").
- `object_in_region`: the object's centre lies over the region's footprint (no slack), and its
  height is at most half the object's height above the region's top and at most half its height
  plus `REGION_SLACK_M` below the region's floor: the region marks where the object stands, and
  a thin region on a table top holds an object whose centre is half its height above it.
- `object_inside`: the object's centre lies over the container's footprint grown by the
  predicate's `tolerance` on every side, between the container's floor and its top, each moved
  out by `tolerance`.
- `object_on`: the object's centre lies over the support's footprint grown by `tolerance`, and
  its bottom (centre minus half its height) is within `tolerance` of the support's top.
- `joint_at_least` / `joint_at_most`: the joint's value is at least / at most `value`. A joint
  the observation does not have fails.

An object or joint the observation does not hold fails the predicate; it never passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bp_scene_contract.geometry import Box, Vec3
from bp_scene_contract.task_config import (
    JointAtLeast,
    JointAtMost,
    ObjectInRegion,
    ObjectInside,
    ObjectOn,
)

REST_ANGULAR_RAD_S = 0.5
"""An object turning slower than this (rad/s), and moving slower than its predicate's
`max_speed`, is at rest."""
REGION_SLACK_M = 0.02
"""How far (m) below a region's floor, beyond half its height, an object's centre may be."""


@dataclass(frozen=True)
class BodyState:
    """A movable object at the end of an episode."""

    position: Vec3
    """Its body's origin: the centre of its box."""
    half_height: float
    linear_speed: float
    """m/s"""
    angular_speed: float
    """rad/s"""


@dataclass(frozen=True)
class Observation:
    """The end of an episode, as the success rule needs it."""

    bodies: Mapping[str, BodyState] = field(default_factory=dict)
    """Movable objects by asset id."""
    boxes: Mapping[str, Box] = field(default_factory=dict)
    """Every object's box where the object is now, by asset id."""
    joints: Mapping[tuple[str, str], float] = field(default_factory=dict)
    """Articulated joint values by (asset id, joint name)."""
    diverged: bool = False


@dataclass(frozen=True)
class Outcome:
    """Whether the task succeeded, a short reason, and the numbers it was decided on."""

    success: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


Predicate = ObjectInRegion | ObjectOn | ObjectInside | JointAtLeast | JointAtMost


def judge(predicate: Predicate, observation: Observation) -> Outcome:
    """Success from the observed state alone."""
    if observation.diverged:
        return Outcome(False, "simulation diverged (non-finite state)")
    if isinstance(predicate, JointAtLeast | JointAtMost):
        return _joint(predicate, observation)
    state = observation.bodies.get(predicate.object)
    if state is None:
        return Outcome(False, f"object {predicate.object!r} is not a free body in the world")
    if isinstance(predicate, ObjectInRegion):
        return _in_region(predicate, state)
    other = predicate.support if isinstance(predicate, ObjectOn) else predicate.container
    box = observation.boxes.get(other)
    if box is None:
        return Outcome(False, f"object {other!r} is not in the world")
    if isinstance(predicate, ObjectOn):
        return _on(predicate, state, box)
    return _inside(predicate, state, box)


def _round4(value: float) -> float:
    # Datasets recorded these numbers rounded by numpy, which can differ from round() in the
    # last digit; keep numpy's so that a re-run records the same details.
    return float(np.round(value, 4))


def _record(state: BodyState) -> dict[str, Any]:
    return {
        "object_position": np.round(np.asarray(state.position, dtype=float), 4).tolist(),
        "linear_speed_m_s": round(state.linear_speed, 4),
        "angular_speed_rad_s": round(state.angular_speed, 4),
    }


def _at_rest(
    state: BodyState, max_speed: float, placed: bool, where: str, details: dict[str, Any]
) -> Outcome:
    at_rest = state.linear_speed < max_speed and state.angular_speed < REST_ANGULAR_RAD_S
    details = {**_record(state), **details, "at_rest": at_rest}
    if not placed:
        return Outcome(False, f"object not {where}", details)
    if not at_rest:
        return Outcome(False, f"object {where} but still moving", details)
    return Outcome(True, f"object at rest {where}", details)


def _within(
    state: BodyState, box: Box, slack_xy: float, below: float, above: float
) -> tuple[bool, bool]:
    pos = state.position
    inside_xy = all(box.min[i] - slack_xy <= pos[i] <= box.max[i] + slack_xy for i in range(2))
    inside_z = box.min[2] - below <= pos[2] <= box.max[2] + above
    return inside_xy, inside_z


def _in_region(predicate: ObjectInRegion, state: BodyState) -> Outcome:
    below = state.half_height + REGION_SLACK_M
    inside_xy, inside_z = _within(state, predicate.region, 0.0, below, state.half_height)
    return _at_rest(
        state,
        predicate.max_speed,
        inside_xy and inside_z,
        "in goal region",
        {"inside_xy": inside_xy, "inside_z": inside_z},
    )


def _inside(predicate: ObjectInside, state: BodyState, container: Box) -> Outcome:
    tol = predicate.tolerance
    inside_xy, inside_z = _within(state, container, tol, tol, tol)
    return _at_rest(
        state,
        predicate.max_speed,
        inside_xy and inside_z,
        f"inside {predicate.container}",
        {"inside_xy": inside_xy, "inside_z": inside_z},
    )


def _on(predicate: ObjectOn, state: BodyState, support: Box) -> Outcome:
    pos, tol = state.position, predicate.tolerance
    bottom = pos[2] - state.half_height
    over = all(support.min[i] - tol <= pos[i] <= support.max[i] + tol for i in range(2))
    resting = abs(bottom - support.max[2]) <= tol
    return _at_rest(
        state,
        predicate.max_speed,
        over and resting,
        f"on {predicate.support}",
        {"over_support": over, "bottom_gap_m": _round4(bottom - support.max[2])},
    )


def _joint(predicate: JointAtLeast | JointAtMost, observation: Observation) -> Outcome:
    value = observation.joints.get((predicate.object, predicate.joint))
    if value is None:
        return Outcome(
            False, f"no articulated joint {predicate.object}/{predicate.joint} in the world"
        )
    at_least = isinstance(predicate, JointAtLeast)
    details = {
        "joint_value": round(value, 5),
        "required": predicate.value,
        "bound": "at least" if at_least else "at most",
    }
    if (value >= predicate.value) if at_least else (value <= predicate.value):
        return Outcome(True, "joint reached the required value", details)
    return Outcome(False, "joint short of the required value", details)
