"""Typed views of the export stage's scene graph and task config, as far as the collector reads.

Only the fields the collector uses are declared; anything else the export stage writes is
ignored, so the two stages can grow their formats independently within a schema version.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from bp_common.errors import InvalidInput
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]

SUPPORTED_SCHEMA_VERSION = 1


class SceneInputError(InvalidInput):
    """A scene graph or task config the collector cannot simulate (malformed or inconsistent)."""


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Box(_Lenient):
    """An axis-aligned box in the world frame (metres)."""

    min: Vec3
    max: Vec3

    @model_validator(mode="after")
    def _ordered(self) -> Box:
        if any(lo > hi for lo, hi in zip(self.min, self.max, strict=True)):
            raise ValueError(f"box min {self.min} exceeds max {self.max}")
        return self

    @property
    def center(self) -> Vec3:
        return (
            (self.min[0] + self.max[0]) / 2,
            (self.min[1] + self.max[1]) / 2,
            (self.min[2] + self.max[2]) / 2,
        )

    @property
    def extents(self) -> Vec3:
        return (
            self.max[0] - self.min[0],
            self.max[1] - self.min[1],
            self.max[2] - self.min[2],
        )


class Pose(_Lenient):
    """A position in metres and an orientation quaternion w, x, y, z."""

    position: Vec3
    orientation: Quat = (1.0, 0.0, 0.0, 0.0)


DEFAULT_MASS_KG = 0.2
DEFAULT_FRICTION = 0.8


class PhysicalProperties(_Lenient):
    """Mass and friction; the export stage writes null where the scene does not say."""

    mass: float | None = Field(default=None, gt=0)
    friction: float | None = Field(default=None, gt=0)

    @property
    def mass_kg(self) -> float:
        return self.mass if self.mass is not None else DEFAULT_MASS_KG

    @property
    def friction_coefficient(self) -> float:
        return self.friction if self.friction is not None else DEFAULT_FRICTION


class ArticulatedJoint(_Lenient):
    name: str
    type: Literal["revolute", "prismatic"]
    axis: Vec3
    anchor: Vec3
    lower: float
    upper: float
    moving_part_bbox: Box


class Articulation(_Lenient):
    joints: list[ArticulatedJoint]


class SceneNode(_Lenient):
    asset_id: str
    semantic: str = "object"
    size: Vec3
    pose: Pose
    bbox: Box
    sim_role: str = "unknown"
    affordances: list[str] = Field(default_factory=list)
    properties: PhysicalProperties = Field(default_factory=PhysicalProperties)
    is_static: bool
    usd_path: str | None = None
    articulation: Articulation | None = None


class SceneEdge(_Lenient):
    source: str
    target: str
    relation: str
    confidence: float = 1.0


class SceneGraph(_Lenient):
    schema_version: int
    scene_id: str
    nodes: list[SceneNode]
    edges: list[SceneEdge] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> SceneGraph:
        ids = [n.asset_id for n in self.nodes]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate asset ids: {duplicates}")
        return self

    def node(self, asset_id: str) -> SceneNode:
        for n in self.nodes:
            if n.asset_id == asset_id:
                return n
        raise SceneInputError(
            "no such node in the scene graph", scene=self.scene_id, object=asset_id
        )


RobotName = Literal["franka_panda", "ur5e", "fetch"]


class RobotAssignment(_Lenient):
    robot: RobotName
    base_pose: Pose | None
    tasks: list[str] = Field(default_factory=list)


REST_SPEED_M_S = 0.05


class ObjectInRegion(_Lenient):
    predicate: Literal["object_in_region"]
    object: str
    region: Box
    max_speed: float = REST_SPEED_M_S


class ObjectOn(_Lenient):
    predicate: Literal["object_on"]
    object: str
    support: str
    tolerance: float = 0.02
    max_speed: float = REST_SPEED_M_S


class ObjectInside(_Lenient):
    predicate: Literal["object_inside"]
    object: str
    container: str
    tolerance: float = 0.02
    max_speed: float = REST_SPEED_M_S


class JointAtLeast(_Lenient):
    predicate: Literal["joint_at_least"]
    object: str
    joint: str
    value: float


class JointAtMost(_Lenient):
    predicate: Literal["joint_at_most"]
    object: str
    joint: str
    value: float


SuccessPredicate = Annotated[
    ObjectInRegion | ObjectOn | ObjectInside | JointAtLeast | JointAtMost,
    Field(discriminator="predicate"),
]
JointPredicate = JointAtLeast | JointAtMost


class JointGoal(_Lenient):
    """Move `joint` of the target from `initial_value` (set at reset) to `value`."""

    joint: str
    initial_value: float
    value: float


# Kinds whose expert is a grasp, a carry and a place into `goal_region`.
MOVE_KINDS = ("pick_place", "place_in", "stack")


class TaskSpec(_Lenient):
    task_id: str
    kind: Literal["pick_place", "place_in", "stack", "open_close"]
    target: str
    destination: str | None = None
    action: Literal["open", "close"] | None = None
    goal_region: Box | None = None
    joint_goal: JointGoal | None = None
    success: SuccessPredicate
    instructions: list[str] = Field(default_factory=list)
    difficulty: Any = None

    @property
    def moves_object(self) -> bool:
        return self.kind in MOVE_KINDS

    @property
    def joint_name(self) -> str | None:
        """The articulated joint an open/close task works, if it names one."""
        if self.joint_goal is not None:
            return self.joint_goal.joint
        return getattr(self.success, "joint", None)


class TaskConfig(_Lenient):
    schema_version: int
    scene_id: str
    robots: list[RobotAssignment]
    tasks: list[TaskSpec]

    def task(self, task_id: str) -> TaskSpec:
        for t in self.tasks:
            if t.task_id == task_id:
                return t
        raise SceneInputError("no such task in the task config", scene=self.scene_id, task=task_id)

    def assignment(self, robot: str) -> RobotAssignment:
        for r in self.robots:
            if r.robot == robot:
                if r.base_pose is None:
                    raise SceneInputError(
                        "robot has no base pose in the task config",
                        scene=self.scene_id,
                        robot=robot,
                    )
                return r
        raise SceneInputError(
            "robot not assigned in the task config", scene=self.scene_id, robot=robot
        )


def parse_scene_graph(raw: dict[str, Any]) -> SceneGraph:
    """Validate a scene graph document, raising a permanent error that names the problem."""
    try:
        graph = SceneGraph.model_validate(raw)
    except ValidationError as exc:
        raise SceneInputError(f"invalid scene graph: {exc}", scene=raw.get("scene_id")) from exc
    if graph.schema_version != SUPPORTED_SCHEMA_VERSION:
        raise SceneInputError(
            f"unsupported scene graph schema_version {graph.schema_version}", scene=graph.scene_id
        )
    return graph


def parse_task_config(raw: dict[str, Any]) -> TaskConfig:
    """Validate a task config document, raising a permanent error that names the problem."""
    try:
        config = TaskConfig.model_validate(raw)
    except ValidationError as exc:
        raise SceneInputError(f"invalid task config: {exc}", scene=raw.get("scene_id")) from exc
    if config.schema_version != SUPPORTED_SCHEMA_VERSION:
        raise SceneInputError(
            f"unsupported task config schema_version {config.schema_version}", scene=config.scene_id
        )
    return config
