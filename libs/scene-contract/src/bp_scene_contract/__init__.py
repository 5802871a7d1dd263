"""The scene contract: `scene_graph.json` and `task_config.json`, defined once for every stage.

Export writes both documents through these models; the collector reads them through
`read_scene_graph` and `read_task_config` and judges its episodes with `success.judge`, the one
success rule. The JSON Schemas in libs/scene-contract/schemas are exported from the models
(`make schemas`) and a test keeps them from drifting.
"""

from __future__ import annotations

from bp_scene_contract.errors import InvalidSceneDocument
from bp_scene_contract.geometry import Box, Pose, Quat, Vec3
from bp_scene_contract.reader import read_scene_graph, read_task_config
from bp_scene_contract.scene_graph import (
    Articulation,
    ArticulationJoint,
    Frame,
    MeshData,
    NodeProperties,
    Relation,
    SceneCamera,
    SceneEdge,
    SceneGraph,
    SceneLight,
    SceneNode,
    Shape,
    ShapeKind,
    SimRole,
    Texture,
    authored_handle,
)
from bp_scene_contract.success import BodyState, Observation, Outcome, judge
from bp_scene_contract.task_config import (
    MOVE_KINDS,
    Difficulty,
    DroppedTask,
    JointAtLeast,
    JointAtMost,
    JointGoal,
    ObjectInRegion,
    ObjectInside,
    ObjectOn,
    RobotAssignment,
    RobotName,
    SuccessPredicate,
    TaskConfig,
    TaskKind,
    TaskSpec,
)

__all__ = [
    "MOVE_KINDS",
    "Articulation",
    "ArticulationJoint",
    "BodyState",
    "Box",
    "Difficulty",
    "DroppedTask",
    "Frame",
    "InvalidSceneDocument",
    "JointAtLeast",
    "JointAtMost",
    "JointGoal",
    "MeshData",
    "NodeProperties",
    "ObjectInRegion",
    "ObjectInside",
    "ObjectOn",
    "Observation",
    "Outcome",
    "Pose",
    "Quat",
    "Relation",
    "RobotAssignment",
    "RobotName",
    "SceneCamera",
    "SceneEdge",
    "SceneGraph",
    "SceneLight",
    "SceneNode",
    "Shape",
    "ShapeKind",
    "SimRole",
    "SuccessPredicate",
    "TaskConfig",
    "TaskKind",
    "TaskSpec",
    "Texture",
    "Vec3",
    "authored_handle",
    "judge",
    "read_scene_graph",
    "read_task_config",
]
