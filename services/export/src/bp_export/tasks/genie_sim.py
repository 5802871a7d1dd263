"""`genie_sim_tasks.json`: each robot's tasks in Genie Sim's own task-config format.

A Genie Sim user can run their own data collection on our export: one task config per kept
task and robot, as Genie Sim's task-config guide lays them out (task, origin, scene with its
workspaces, objects, robot, stages, task description, recording settings, task metric), each
validated against the models below before it is written. Coordinates are the pipeline's world
frame (z up, metres), so the origin is the identity; quaternions are (w, x, y, z) as in the guide.

Every movable object gets a one-pose workspace (the guide's candidate-position mode) at its
authored pose, with the collector's randomisation range as its `delta_position`; a goal region
becomes an area workspace. Pick-and-place tasks are a pick, a place and a reset stage. Genie
Sim's stage actions (pick, place, insert, rotate, reset) have no open or close, so open/close
tasks are listed under `not_expressible` with that reason instead.
"""

from __future__ import annotations

import json
from typing import Literal

from bp_scene_contract import SceneGraph, TaskConfig, TaskSpec
from pydantic import BaseModel, ConfigDict, Field

FORMAT = "bp-genie-sim-tasks"
FORMAT_VERSION = 1
# The collector's object jitter (bp_collector.mujoco.randomization), as Genie Sim's pose noise.
OBJECT_XY_JITTER_M = 0.02
RECORDING_CAMERAS = ("/World/Cameras/wrist", "/World/Cameras/overhead")
RECORDING_FPS = 30
EPISODES_PER_TASK = 10
IDENTITY = (1.0, 0.0, 0.0, 0.0)

Vec = tuple[float, float, float]
Quat = tuple[float, float, float, float]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Origin(_Model):
    position: Vec
    quaternion: Quat


class PoseNoise(_Model):
    delta_position: Vec


class CandidatePose(_Model):
    position: Vec
    quaternion: Quat
    random: PoseNoise | None = None


class CandidateWorkspace(_Model):
    """The guide's SAMPLE mode: objects take poses from a list."""

    poses: tuple[CandidatePose, ...] = Field(min_length=1)


class AreaWorkspace(_Model):
    """The guide's SPACE mode: objects are laid out within a box."""

    position: Vec
    quaternion: Quat
    size: Vec


class Scene(_Model):
    scene_id: str = Field(min_length=1)
    scene_info_dir: str = Field(min_length=1)
    scene_usd: str = Field(min_length=1)
    function_space_objects: dict[str, CandidateWorkspace | AreaWorkspace]


class TaskObject(_Model):
    object_id: str = Field(min_length=1)
    data_info_dir: str = Field(min_length=1)
    workspace_id: str
    mass: float | None = Field(default=None, gt=0)
    english_semantic_name: str | None = None


class Objects(_Model):
    task_related_objects: tuple[TaskObject, ...] = Field(min_length=1)
    scene_objects: tuple[TaskObject, ...] = ()
    attach_objects: tuple[TaskObject, ...] = ()
    fix_objects: tuple[TaskObject, ...] = ()
    constraints: None = None


class RobotInitPose(_Model):
    position: Vec
    quaternion: Quat


class Robot(_Model):
    arm: Literal["left", "right", "dual"]
    robot_id: str
    robot_cfg: str
    robot_init_pose: RobotInitPose


class StageObject(_Model):
    object_id: str
    primitive: None = None


class ActionDescription(_Model):
    action_text: str
    english_action_text: str


class CheckerParams(_Model):
    object_id: str
    target_id: str
    rule: Literal["lessThan", "greaterThan"]
    value: float = Field(gt=0)


class Checker(_Model):
    checker_name: Literal["distance_to_target"]
    params: CheckerParams


class Stage(_Model):
    action: Literal["pick", "place", "insert", "rotate", "reset"]
    action_description: ActionDescription
    active: StageObject
    passive: StageObject
    extra_params: dict[str, str | float | bool]
    checker: tuple[Checker, ...] = ()


class TaskDescription(_Model):
    task_name: str
    english_task_name: str
    init_scene_text: str


class RecordingSetting(_Model):
    camera_list: tuple[str, ...]
    fps: int = Field(gt=0)
    num_of_episode: int = Field(gt=0)
    noised_probability: float = Field(ge=0, le=1)


class RegionRuleParams(_Model):
    objects: tuple[str, ...] = Field(min_length=1)
    region: tuple[Vec, Vec]
    """min and max corners, world frame."""


class FilterRule(_Model):
    rule_name: Literal["is_object_end_in_region"]
    params: RegionRuleParams
    result_code: int


class TaskMetric(_Model):
    filter_rules: tuple[FilterRule, ...]


class GenieSimTask(_Model):
    """One task config, as Genie Sim's task-config guide defines it."""

    task: str = Field(min_length=1)
    origin: Origin
    objects: Objects
    scene: Scene
    robot: Robot
    stages: tuple[Stage, ...] = Field(min_length=1)
    recording_setting: RecordingSetting
    task_description: TaskDescription
    task_metric: TaskMetric


def _object_workspace(asset_id: str) -> str:
    return f"{asset_id}_pose"


def _genie_task(graph: SceneGraph, task: TaskSpec, robot: str, base: RobotInitPose) -> GenieSimTask:
    target = graph.node(task.target)
    assert task.goal_region is not None  # a move task always has one (the scene contract)
    goal = task.goal_region
    movable = [n for n in graph.nodes if not n.is_static and n.articulation is None]
    spaces: dict[str, CandidateWorkspace | AreaWorkspace] = {
        _object_workspace(n.asset_id): CandidateWorkspace(
            poses=(
                CandidatePose(
                    position=n.pose.position,
                    quaternion=n.pose.orientation,
                    random=PoseNoise(delta_position=(OBJECT_XY_JITTER_M, OBJECT_XY_JITTER_M, 0.0)),
                ),
            )
        )
        for n in movable
    }
    spaces["goal_region"] = AreaWorkspace(
        position=goal.centre,
        quaternion=IDENTITY,
        size=(goal.max[0] - goal.min[0], goal.max[1] - goal.min[1], goal.max[2] - goal.min[2]),
    )
    scene_dir = f"scenes/{graph.scene_id}/"

    def as_object(node_id: str) -> TaskObject:
        node = graph.node(node_id)
        return TaskObject(
            object_id=node.asset_id,
            data_info_dir=f"{scene_dir}{node.usd_path.lstrip('/')}/",
            workspace_id=_object_workspace(node.asset_id),
            mass=node.properties.mass,
            english_semantic_name=node.name,
        )

    movable_ids = {n.asset_id for n in movable}
    moved_into = task.destination if task.destination in movable_ids else None
    related = [task.target] + ([moved_into] if moved_into else [])
    others = [n.asset_id for n in movable if n.asset_id not in related]
    destination = task.destination or "goal_region"
    instruction = task.instructions[0] if task.instructions else task.task_id
    place_target = moved_into or "goal_region"
    stages = (
        Stage(
            action="pick",
            action_description=ActionDescription(
                action_text=f"pick up the {target.name}",
                english_action_text=f"pick up the {target.name}",
            ),
            active=StageObject(object_id="gripper"),
            passive=StageObject(object_id=target.asset_id),
            extra_params={"arm": "right", "pick_up_distance": 0.12},
            checker=(
                Checker(
                    checker_name="distance_to_target",
                    params=CheckerParams(
                        object_id=target.asset_id, target_id="gripper", rule="lessThan", value=0.08
                    ),
                ),
            ),
        ),
        Stage(
            action="place",
            action_description=ActionDescription(
                action_text=instruction, english_action_text=instruction
            ),
            active=StageObject(object_id=target.asset_id),
            passive=StageObject(object_id=place_target),
            extra_params={"arm": "right", "place_with_origin_orientation": True},
        ),
        Stage(
            action="reset",
            action_description=ActionDescription(
                action_text="the arm resets", english_action_text="the arm resets"
            ),
            active=StageObject(object_id="gripper"),
            passive=StageObject(object_id="gripper"),
            extra_params={"arm": "right", "plan_type": "AvoidObs"},
        ),
    )
    return GenieSimTask(
        task=f"{task.task_id}_{robot}",
        origin=Origin(position=(0.0, 0.0, 0.0), quaternion=IDENTITY),
        objects=Objects(
            task_related_objects=tuple(as_object(a) for a in related),
            scene_objects=tuple(as_object(a) for a in others),
        ),
        scene=Scene(
            scene_id=scene_dir,
            scene_info_dir=scene_dir,
            scene_usd=f"{scene_dir}scene.usda",
            function_space_objects=spaces,
        ),
        robot=Robot(
            arm="right",
            robot_id=robot,
            robot_cfg=f"{robot}.json",
            robot_init_pose=base,
        ),
        stages=stages,
        recording_setting=RecordingSetting(
            camera_list=RECORDING_CAMERAS,
            fps=RECORDING_FPS,
            num_of_episode=EPISODES_PER_TASK,
            noised_probability=0.0,
        ),
        task_description=TaskDescription(
            task_name=instruction,
            english_task_name=instruction,
            init_scene_text=f"a {target.name} to move to the {destination.replace('_', ' ')}",
        ),
        task_metric=TaskMetric(
            filter_rules=(
                FilterRule(
                    rule_name="is_object_end_in_region",
                    params=RegionRuleParams(
                        objects=(target.asset_id,), region=(goal.min, goal.max)
                    ),
                    result_code=1,
                ),
            )
        ),
    )


def build_genie_sim_tasks(graph: SceneGraph, tasks: TaskConfig) -> dict[str, object]:
    """Every robot's kept tasks as Genie Sim task configs, validated, and what cannot be one."""
    configs: dict[str, object] = {}
    not_expressible: list[dict[str, str]] = []
    for assignment in tasks.robots:
        if assignment.base_pose is None:
            continue
        base = RobotInitPose(
            position=assignment.base_pose.position, quaternion=assignment.base_pose.orientation
        )
        for task_id in assignment.tasks:
            task = tasks.task(task_id)
            if not task.moves_object or task.goal_region is None:
                not_expressible.append(
                    {
                        "task_id": task_id,
                        "robot": assignment.robot,
                        "reason": "Genie Sim's stage actions (pick, place, insert, rotate, reset)"
                        " have no open or close",
                    }
                )
                continue
            config = _genie_task(graph, task, assignment.robot, base)
            configs[config.task] = config.model_dump(mode="json", exclude_none=True)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "scene_id": graph.scene_id,
        "tasks": configs,
        "not_expressible": not_expressible,
    }


def genie_sim_tasks_json(graph: SceneGraph, tasks: TaskConfig) -> bytes:
    document = build_genie_sim_tasks(graph, tasks)
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def read_genie_sim_task(document: object) -> GenieSimTask:
    """One task config checked against the guide's structure (a ValidationError if it is not)."""
    return GenieSimTask.model_validate(document)
