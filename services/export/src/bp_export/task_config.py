"""The shape of `task_config.json` and how its success predicates are checked.

    {"schema_version": 1, "scene_id": str,
     "robots": [{"robot": "franka_panda" | "ur5e" | "fetch",
                 "base_pose": {"position": [x, y, z], "orientation": [w, x, y, z]} | null,
                 "tasks": [task_id, ...]}],
     "tasks": [TaskSpec, ...],
     "dropped": [{"task_id", "robot", "reason"}]}

`tasks` lists every task the scene's objects suggest; each robot entry lists the ones that
robot keeps, all reachable from its `base_pose` (null when it keeps none). `dropped` says, per
robot, why a task is not on its list: the robot's reach, gripper or payload, or the scene itself
(an object enclosed behind a closed door, one that does not fit its container, a goal that is
not free), in which case no robot keeps it. Only the robots' lists are work to do. Coordinates
are world (Z up, metres); quaternions are (w, x, y, z).

A `pick_place` task's `goal_region` holds the positions its object's centre may come to rest
at; wherever in it the object lands, all of it stands on the destination's top, clear of
everything else.

Success predicates are data, checked against an observation of the final state (see
`predicate_holds`):

- `object_in_region`: the centre of `object`'s box lies inside `region` and the object moves
  slower than `max_speed` (m/s).
- `object_on`: `object`'s bottom is within `tolerance` of `support`'s top, its centre lies over
  `support`'s footprint, and it moves slower than `max_speed`.
- `object_inside`: the centre of `object`'s box lies inside `container`'s box (up to
  `tolerance` above its rim) and it moves slower than `max_speed`.
- `joint_at_least` / `joint_at_most`: joint `joint` of `object` has reached `value`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bp_export.graph_model import Aabb, Vec3

TaskKind = Literal["pick_place", "place_in", "stack", "open_close"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ObjectInRegion(_Strict):
    predicate: Literal["object_in_region"] = "object_in_region"
    object: str
    region: Aabb
    max_speed: float = 0.05


class ObjectOn(_Strict):
    predicate: Literal["object_on"] = "object_on"
    object: str
    support: str
    tolerance: float = 0.02
    max_speed: float = 0.05


class ObjectInside(_Strict):
    predicate: Literal["object_inside"] = "object_inside"
    object: str
    container: str
    tolerance: float = 0.02
    max_speed: float = 0.05


class JointAtLeast(_Strict):
    predicate: Literal["joint_at_least"] = "joint_at_least"
    object: str
    joint: str
    value: float


class JointAtMost(_Strict):
    predicate: Literal["joint_at_most"] = "joint_at_most"
    object: str
    joint: str
    value: float


SuccessPredicate = Annotated[
    ObjectInRegion | ObjectOn | ObjectInside | JointAtLeast | JointAtMost,
    Field(discriminator="predicate"),
]


class JointGoal(_Strict):
    """Move `joint` of the target from `initial_value` (set at reset) to `value`."""

    joint: str
    initial_value: float
    value: float


class Difficulty(_Strict):
    """`score` in [0, 1] from clutter around start and goal, travel distance and object size."""

    level: Literal["easy", "medium", "hard"]
    score: float
    clutter: int
    distance_m: float
    smallest_extent_m: float


class TaskSpec(_Strict):
    task_id: str
    kind: TaskKind
    target: str
    """asset_id of the object moved or the articulated object operated."""
    destination: str | None = None
    """asset_id of the support surface or container it goes to, where there is one."""
    action: Literal["open", "close"] | None = None
    """For open_close tasks: which way the joint goes."""
    goal_region: Aabb | None = None
    joint_goal: JointGoal | None = None
    success: SuccessPredicate
    instructions: tuple[str, ...]
    difficulty: Difficulty


class BasePoseSpec(_Strict):
    position: Vec3
    orientation: tuple[float, float, float, float]


class RobotAssignment(_Strict):
    robot: str
    base_pose: BasePoseSpec | None
    tasks: tuple[str, ...]


class DroppedTask(_Strict):
    task_id: str
    robot: str
    reason: str


class TaskConfig(_Strict):
    schema_version: Literal[1] = 1
    scene_id: str
    robots: tuple[RobotAssignment, ...]
    tasks: tuple[TaskSpec, ...]
    dropped: tuple[DroppedTask, ...]


class ObjectState(BaseModel):
    """What the checker needs of one object at the end of an episode."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    bbox: Aabb
    speed: float = 0.0


class Observation(BaseModel):
    """Final state of an episode: object boxes and speeds, and joint values by object."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    objects: dict[str, ObjectState] = {}
    joints: dict[str, dict[str, float]] = {}


class _PredicateHolder(BaseModel):
    success: SuccessPredicate


def predicate_holds(predicate: Mapping[str, Any] | BaseModel, observation: Observation) -> bool:
    """True when `predicate` (a task's `success`) is met by `observation`.

    An object or joint missing from the observation fails the predicate rather than passing it.
    """
    data = predicate.model_dump() if isinstance(predicate, BaseModel) else dict(predicate)
    check = _PredicateHolder.model_validate({"success": data}).success
    if isinstance(check, JointAtLeast | JointAtMost):
        value = observation.joints.get(check.object, {}).get(check.joint)
        if value is None:
            return False
        return value >= check.value if isinstance(check, JointAtLeast) else value <= check.value
    state = observation.objects.get(check.object)
    if state is None or state.speed > check.max_speed:
        return False
    centre = state.bbox.centre
    if isinstance(check, ObjectInRegion):
        return check.region.contains_point(centre)
    other_id = check.support if isinstance(check, ObjectOn) else check.container
    other = observation.objects.get(other_id)
    if other is None:
        return False
    if isinstance(check, ObjectOn):
        over = all(other.bbox.min[i] <= centre[i] <= other.bbox.max[i] for i in range(2))
        return over and abs(state.bbox.min[2] - other.bbox.max[2]) <= check.tolerance
    inside = all(other.bbox.min[i] <= centre[i] <= other.bbox.max[i] for i in range(2))
    return inside and other.bbox.min[2] <= centre[2] <= other.bbox.max[2] + check.tolerance
