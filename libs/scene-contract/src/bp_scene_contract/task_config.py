"""The typed model of `task_config.json`: a scene's tasks, and which robot does which from where.

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
everything else. A task's `success` is a predicate over the final state of an episode; what
each predicate means, with its tolerances, is `bp_scene_contract.success`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from bp_scene_contract.errors import Inconsistent, InvalidSceneDocument
from bp_scene_contract.geometry import ContractModel, OrderedBox, Pose

SCHEMA_VERSION: Literal[1] = 1

TaskKind = Literal["pick_place", "place_in", "stack", "open_close"]
RobotName = Literal["franka_panda", "ur5e", "ur10", "fetch", "gr1"]

MOVE_KINDS: tuple[TaskKind, ...] = ("pick_place", "place_in", "stack")
"""Kinds whose task is a grasp, a carry and a place into `goal_region`."""

REST_SPEED_M_S = 0.05
"""Default `max_speed` of the object predicates: slower than this (m/s), an object is at rest."""
CONTACT_TOLERANCE_M = 0.02
"""Default `tolerance` of `object_on` and `object_inside` (m)."""


class ObjectInRegion(ContractModel):
    predicate: Literal["object_in_region"] = "object_in_region"
    object: str
    region: OrderedBox
    max_speed: float = REST_SPEED_M_S


class ObjectOn(ContractModel):
    predicate: Literal["object_on"] = "object_on"
    object: str
    support: str
    tolerance: float = CONTACT_TOLERANCE_M
    max_speed: float = REST_SPEED_M_S


class ObjectInside(ContractModel):
    predicate: Literal["object_inside"] = "object_inside"
    object: str
    container: str
    tolerance: float = CONTACT_TOLERANCE_M
    max_speed: float = REST_SPEED_M_S


class JointAtLeast(ContractModel):
    predicate: Literal["joint_at_least"] = "joint_at_least"
    object: str
    joint: str
    value: float


class JointAtMost(ContractModel):
    predicate: Literal["joint_at_most"] = "joint_at_most"
    object: str
    joint: str
    value: float


SuccessPredicate = Annotated[
    ObjectInRegion | ObjectOn | ObjectInside | JointAtLeast | JointAtMost,
    Field(discriminator="predicate"),
]
ObjectPredicate = ObjectInRegion | ObjectOn | ObjectInside
JointPredicate = JointAtLeast | JointAtMost


class JointGoal(ContractModel):
    """Move `joint` of the target from `initial_value` (set at reset) to `value`."""

    joint: str
    initial_value: float
    value: float


class Difficulty(ContractModel):
    """`score` in [0, 1] from clutter around start and goal, travel distance and object size."""

    level: Literal["easy", "medium", "hard"]
    score: float
    clutter: int
    distance_m: float
    smallest_extent_m: float


class TaskSpec(ContractModel):
    task_id: str = Field(min_length=1)
    kind: TaskKind
    target: str
    """asset_id of the object moved or the articulated object operated."""
    destination: str | None = None
    """asset_id of the support surface or container it goes to, where there is one."""
    action: Literal["open", "close"] | None = None
    """For open_close tasks: which way the joint goes."""
    goal_region: OrderedBox | None = None
    joint_goal: JointGoal | None = None
    success: SuccessPredicate
    instructions: tuple[str, ...]
    difficulty: Difficulty

    @property
    def moves_object(self) -> bool:
        return self.kind in MOVE_KINDS

    @property
    def joint_name(self) -> str | None:
        """The articulated joint an open/close task works, if it names one."""
        if self.joint_goal is not None:
            return self.joint_goal.joint
        return self.success.joint if isinstance(self.success, JointPredicate) else None


class RobotAssignment(ContractModel):
    robot: RobotName
    base_pose: Pose | None
    tasks: tuple[str, ...]


class DroppedTask(ContractModel):
    task_id: str
    robot: str
    reason: str


class TaskConfig(ContractModel):
    """`task_config.json`: every task the scene affords, and each robot's share of them."""

    schema_version: Literal[1] = SCHEMA_VERSION
    scene_id: str = Field(min_length=1)
    robots: tuple[RobotAssignment, ...]
    tasks: tuple[TaskSpec, ...]
    dropped: tuple[DroppedTask, ...]

    @model_validator(mode="after")
    def _consistent(self) -> TaskConfig:
        known: set[str] = set()
        for i, task in enumerate(self.tasks):
            if task.task_id in known:
                raise Inconsistent("task id is repeated", f"tasks.{i}.task_id", task.task_id)
            known.add(task.task_id)
        robots: set[str] = set()
        for i, assignment in enumerate(self.robots):
            if assignment.robot in robots:
                raise Inconsistent("robot is repeated", f"robots.{i}.robot", assignment.robot)
            robots.add(assignment.robot)
            for j, task_id in enumerate(assignment.tasks):
                if task_id not in known:
                    raise Inconsistent(
                        f"robot {assignment.robot} keeps an unknown task",
                        f"robots.{i}.tasks.{j}",
                        task_id,
                    )
        return self

    def task(self, task_id: str) -> TaskSpec:
        for task in self.tasks:
            if task.task_id == task_id:
                return task
        raise InvalidSceneDocument(
            "no such task in the task config", scene_id=self.scene_id, task=task_id
        )

    def assignment(self, robot: str) -> RobotAssignment:
        for assignment in self.robots:
            if assignment.robot == robot:
                return assignment
        raise InvalidSceneDocument(
            "robot not assigned in the task config", scene_id=self.scene_id, robot=robot
        )
