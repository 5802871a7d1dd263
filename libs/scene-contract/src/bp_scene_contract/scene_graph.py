"""The typed model of `scene_graph.json`: a scene's objects and their relations, in the world frame.

    {schema_version: 1, scene_id, frame: {up_axis: "z", units: "m", handedness: "right"},
     nodes: [{asset_id, semantic, size, pose{position, orientation (w,x,y,z)}, bbox{min, max},
              sim_role, affordances, properties{mass, friction}, is_static, usd_path,
              articulation: null | {joints: [{name, type, axis, anchor, lower, upper,
                                             moving_part_bbox}]}}],
     edges: [{source, target, relation, confidence}]}

`size` is the extents of the world box `bbox`. Mass (kg) and friction are null where the scene
does not say. Joints are in world coordinates: `axis` is a non-zero direction (readers take its
unit vector), `anchor` a point on it, `lower`/`upper` the limits in radians (revolute) or metres
(prismatic), `lower` taken as closed. An edge says that `source` rests on, is in, is stacked on,
is beside or is aligned with `target`.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bp_scene_contract.errors import Inconsistent, InvalidSceneDocument
from bp_scene_contract.geometry import ContractModel, OrderedBox, Pose, Vec3

SCHEMA_VERSION: Literal[1] = 1

SimRole = Literal[
    "static",
    "interactive",
    "manipulable_object",
    "deformable_object",
    "articulated_furniture",
    "articulated_appliance",
    "clutter",
    "background",
    "scene_shell",
    "unknown",
]
Relation = Literal["on", "in", "adjacent", "stacked", "aligned"]


class NodeProperties(ContractModel):
    """Physical properties; null where the scene does not say. A zero mass is no mass."""

    mass: float | None = Field(gt=0)
    friction: float | None = Field(ge=0)


class ArticulationJoint(ContractModel):
    """A joint of an articulated object, in world coordinates; `lower` is taken as closed."""

    name: str = Field(min_length=1)
    type: Literal["revolute", "prismatic"]
    axis: Vec3
    anchor: Vec3
    lower: float
    upper: float
    moving_part_bbox: OrderedBox

    @field_validator("axis")
    @classmethod
    def _non_zero(cls, value: Vec3) -> Vec3:
        if math.sqrt(sum(v * v for v in value)) < 1e-9:
            raise ValueError("joint axis must not be zero")
        return value

    @property
    def unit_axis(self) -> Vec3:
        norm = math.sqrt(sum(v * v for v in self.axis))
        return (self.axis[0] / norm, self.axis[1] / norm, self.axis[2] / norm)


class Articulation(ContractModel):
    joints: tuple[ArticulationJoint, ...]


class SceneNode(ContractModel):
    """One object of the scene."""

    asset_id: str = Field(min_length=1)
    semantic: str
    size: Vec3
    pose: Pose
    bbox: OrderedBox
    sim_role: SimRole
    affordances: tuple[str, ...]
    properties: NodeProperties
    is_static: bool
    usd_path: str
    articulation: Articulation | None

    @property
    def name(self) -> str:
        """The semantic label as words ("coffee_mug" -> "coffee mug"), or the asset id."""
        words = (self.semantic or self.asset_id).replace("_", " ").replace("-", " ").strip()
        return " ".join(words.split()).lower() or self.asset_id

    def has_affordance(self, affordance: str) -> bool:
        return affordance.lower() in {a.lower() for a in self.affordances}


class SceneEdge(ContractModel):
    """A relation: `source` rests on / is in / is stacked on / is beside `target`."""

    source: str
    target: str
    relation: Relation
    confidence: float = Field(ge=0.0, le=1.0)


class Frame(ContractModel):
    up_axis: Literal["z"] = "z"
    units: Literal["m"] = "m"
    handedness: Literal["right"] = "right"


class SceneGraph(ContractModel):
    """`scene_graph.json`: nodes and relations in the pipeline's Z-up metre world frame."""

    schema_version: Literal[1] = SCHEMA_VERSION
    scene_id: str = Field(min_length=1)
    frame: Frame = Frame()
    nodes: tuple[SceneNode, ...]
    edges: tuple[SceneEdge, ...]

    @model_validator(mode="after")
    def _consistent(self) -> SceneGraph:
        seen: set[str] = set()
        for i, node in enumerate(self.nodes):
            if node.asset_id in seen:
                raise Inconsistent("asset id is repeated", f"nodes.{i}.asset_id", node.asset_id)
            seen.add(node.asset_id)
        for i, edge in enumerate(self.edges):
            for end, name in (("source", edge.source), ("target", edge.target)):
                if name not in seen:
                    raise Inconsistent("edge names an unknown node", f"edges.{i}.{end}", name)
        return self

    def node(self, asset_id: str) -> SceneNode:
        for node in self.nodes:
            if node.asset_id == asset_id:
                return node
        raise InvalidSceneDocument(
            "no such node in the scene graph", scene_id=self.scene_id, object=asset_id
        )

    def relations(self, relation: Relation) -> set[tuple[str, str]]:
        return {(e.source, e.target) for e in self.edges if e.relation == relation}
