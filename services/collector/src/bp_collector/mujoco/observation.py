"""Judge an episode from the physics state against the task's success predicate."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import mujoco
import numpy as np

from bp_collector.scene import (
    Box,
    JointAtLeast,
    JointAtMost,
    ObjectInRegion,
    ObjectInside,
    ObjectOn,
    SceneGraph,
    TaskSpec,
)
from bp_collector.world import World

REST_ANGULAR_RAD_S = 0.5
REGION_SLACK_M = 0.02


@dataclass(frozen=True)
class Outcome:
    success: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _ObjectState:
    position: np.ndarray
    half_height: float
    linear_speed: float
    angular_speed: float

    def record(self) -> dict[str, Any]:
        return {
            "object_position": self.position.round(4).tolist(),
            "linear_speed_m_s": round(self.linear_speed, 4),
            "angular_speed_rad_s": round(self.angular_speed, 4),
        }


def _object_state(world: World, data: mujoco.MjData, asset_id: str) -> _ObjectState | None:
    obj = world.free_objects.get(asset_id)
    if obj is None:
        return None
    body = world.model.body(obj.body).id
    vel = np.zeros(6)
    mujoco.mj_objectVelocity(world.model, data, mujoco.mjtObj.mjOBJ_BODY, body, vel, 0)
    return _ObjectState(
        data.xpos[body].copy(),
        obj.half_extents[2],
        float(np.linalg.norm(vel[3:])),
        float(np.linalg.norm(vel[:3])),
    )


def _rest_outcome(
    state: _ObjectState, max_speed: float, placed: bool, where: str, details: dict[str, Any]
) -> Outcome:
    at_rest = state.linear_speed < max_speed and state.angular_speed < REST_ANGULAR_RAD_S
    details = {**state.record(), **details, "at_rest": at_rest}
    if not placed:
        return Outcome(False, f"object not {where}", details)
    if not at_rest:
        return Outcome(False, f"object {where} but still moving", details)
    return Outcome(True, f"object at rest {where}", details)


def _in_box(
    state: _ObjectState, box: Box, slack_xy: float, below: float, above: float
) -> tuple[bool, bool]:
    lo, hi, pos = np.array(box.min), np.array(box.max), state.position
    inside_xy = bool(np.all(pos[:2] >= lo[:2] - slack_xy) and np.all(pos[:2] <= hi[:2] + slack_xy))
    inside_z = bool(lo[2] - below <= pos[2] <= hi[2] + above)
    return inside_xy, inside_z


def _object_in_region(world: World, data: mujoco.MjData, pred: ObjectInRegion) -> Outcome:
    state = _object_state(world, data, pred.object)
    if state is None:
        return Outcome(False, f"object {pred.object!r} is not a free body in the world")
    # The region marks where the object should stand: its centre may sit up to half its height
    # above the region's top or below its floor (a thin region on a table top), plus slack.
    inside_xy, inside_z = _in_box(
        state, pred.region, 0.0, state.half_height + REGION_SLACK_M, state.half_height
    )
    return _rest_outcome(
        state,
        pred.max_speed,
        inside_xy and inside_z,
        "in goal region",
        {"inside_xy": inside_xy, "inside_z": inside_z},
    )


def _object_inside(
    world: World, graph: SceneGraph, data: mujoco.MjData, pred: ObjectInside
) -> Outcome:
    state = _object_state(world, data, pred.object)
    if state is None:
        return Outcome(False, f"object {pred.object!r} is not a free body in the world")
    box = _current_box(world, graph, data, pred.container)
    inside_xy, inside_z = _in_box(state, box, pred.tolerance, pred.tolerance, pred.tolerance)
    return _rest_outcome(
        state,
        pred.max_speed,
        inside_xy and inside_z,
        f"inside {pred.container}",
        {"inside_xy": inside_xy, "inside_z": inside_z},
    )


def _object_on(world: World, graph: SceneGraph, data: mujoco.MjData, pred: ObjectOn) -> Outcome:
    state = _object_state(world, data, pred.object)
    if state is None:
        return Outcome(False, f"object {pred.object!r} is not a free body in the world")
    box = _current_box(world, graph, data, pred.support)
    bottom = state.position[2] - state.half_height
    over = bool(
        np.all(state.position[:2] >= np.array(box.min[:2]) - pred.tolerance)
        and np.all(state.position[:2] <= np.array(box.max[:2]) + pred.tolerance)
    )
    resting = abs(bottom - box.max[2]) <= pred.tolerance
    return _rest_outcome(
        state,
        pred.max_speed,
        over and resting,
        f"on {pred.support}",
        {"over_support": over, "bottom_gap_m": round(bottom - box.max[2], 4)},
    )


def _current_box(world: World, graph: SceneGraph, data: mujoco.MjData, asset_id: str) -> Box:
    """The node's box where it is now: a free node's graph box moved with its body."""
    box = graph.node(asset_id).bbox
    obj = world.free_objects.get(asset_id)
    if obj is None:
        return box
    shift = data.xpos[world.model.body(obj.body).id] - np.array(box.center)
    lo, hi = np.array(box.min) + shift, np.array(box.max) + shift
    return Box(
        min=(float(lo[0]), float(lo[1]), float(lo[2])),
        max=(float(hi[0]), float(hi[1]), float(hi[2])),
    )


def _joint(world: World, data: mujoco.MjData, pred: JointAtLeast | JointAtMost) -> Outcome:
    part = world.parts.get((pred.object, pred.joint))
    if part is None:
        return Outcome(False, f"no articulated joint {pred.object}/{pred.joint} in the world")
    value = float(data.qpos[world.model.joint(part.mj_joint).qposadr[0]])
    at_least = isinstance(pred, JointAtLeast)
    details = {
        "joint_value": round(value, 5),
        "required": pred.value,
        "bound": "at least" if at_least else "at most",
    }
    if (value >= pred.value) if at_least else (value <= pred.value):
        return Outcome(True, "joint reached the required value", details)
    return Outcome(False, "joint short of the required value", details)


def judge(world: World, graph: SceneGraph, data: mujoco.MjData, task: TaskSpec) -> Outcome:
    """Success from the state alone; a state with NaNs is a failure of the simulation."""
    if not (np.all(np.isfinite(data.qpos)) and np.all(np.isfinite(data.qvel))):
        return Outcome(False, "simulation diverged (non-finite state)")
    pred = task.success
    if isinstance(pred, ObjectInRegion):
        return _object_in_region(world, data, pred)
    if isinstance(pred, ObjectInside):
        return _object_inside(world, graph, data, pred)
    if isinstance(pred, ObjectOn):
        return _object_on(world, graph, data, pred)
    return _joint(world, data, pred)
