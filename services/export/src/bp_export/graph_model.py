"""The scene graph as task planning reads it: typed models of `scene_graph.json` and box math.

World frame: Z up, right-handed, metres. Orientation quaternions are (w, x, y, z). These models
are the consumer's view of the file; invalid input becomes `InvalidInput` naming the scene and
the offending field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

from bp_common.errors import InvalidInput
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Vec3 = tuple[float, float, float]

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


def _finite(values: tuple[float, ...], what: str) -> tuple[float, ...]:
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{what} must be finite numbers")
    return values


class Aabb(BaseModel):
    """An axis-aligned box in world coordinates."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: Vec3
    max: Vec3

    @field_validator("min", "max")
    @classmethod
    def _check_finite(cls, value: Vec3) -> Vec3:
        _finite(value, "box corners")
        return value

    @property
    def size(self) -> Vec3:
        return (self.max[0] - self.min[0], self.max[1] - self.min[1], self.max[2] - self.min[2])

    @property
    def centre(self) -> Vec3:
        return (
            (self.min[0] + self.max[0]) / 2,
            (self.min[1] + self.max[1]) / 2,
            (self.min[2] + self.max[2]) / 2,
        )

    def overlaps(self, other: Aabb, margin: float = 0.0) -> bool:
        """True when the boxes, each grown by `margin`, share volume."""
        return all(
            self.min[i] - margin < other.max[i] and other.min[i] - margin < self.max[i]
            for i in range(3)
        )

    def overlaps_xy(self, other: Aabb, margin: float = 0.0) -> bool:
        return all(
            self.min[i] - margin < other.max[i] and other.min[i] - margin < self.max[i]
            for i in range(2)
        )

    def contains_point(self, point: Vec3, tolerance: float = 0.0) -> bool:
        return all(self.min[i] - tolerance <= point[i] <= self.max[i] + tolerance for i in range(3))

    def xy_area(self) -> float:
        sx, sy, _ = self.size
        return sx * sy

    def distance_xy_to_point(self, x: float, y: float) -> float:
        """Horizontal distance from (x, y) to the box footprint (0 inside it)."""
        dx = max(self.min[0] - x, 0.0, x - self.max[0])
        dy = max(self.min[1] - y, 0.0, y - self.max[1])
        return math.hypot(dx, dy)


class Pose(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    position: Vec3
    orientation: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)


class ArticulationJoint(BaseModel):
    """A joint of an articulated object, in world coordinates; `lower` is taken as closed."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str = Field(min_length=1)
    type: Literal["revolute", "prismatic"]
    axis: Vec3
    anchor: Vec3
    lower: float
    upper: float
    moving_part_bbox: Aabb

    @field_validator("axis")
    @classmethod
    def _unit_axis(cls, value: Vec3) -> Vec3:
        _finite(value, "joint axis")
        norm = math.sqrt(sum(v * v for v in value))
        if norm < 1e-9:
            raise ValueError("joint axis must not be zero")
        return (value[0] / norm, value[1] / norm, value[2] / norm)


class Articulation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    joints: tuple[ArticulationJoint, ...] = ()


class NodeProperties(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    mass: float | None = None
    friction: float | None = None


class SceneNode(BaseModel):
    """One object of the scene."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    asset_id: str = Field(min_length=1)
    semantic: str = ""
    size: Vec3
    pose: Pose
    bbox: Aabb
    sim_role: SimRole = "unknown"
    affordances: tuple[str, ...] = ()
    properties: NodeProperties = NodeProperties()
    is_static: bool = False
    usd_path: str = ""
    articulation: Articulation | None = None

    @property
    def name(self) -> str:
        """The semantic label as words ("coffee_mug" -> "coffee mug"), or the asset id."""
        words = (self.semantic or self.asset_id).replace("_", " ").replace("-", " ").strip()
        return " ".join(words.split()).lower() or self.asset_id

    def has_affordance(self, affordance: str) -> bool:
        return affordance.lower() in {a.lower() for a in self.affordances}


class SceneEdge(BaseModel):
    """A relation: `source` rests on / is in / is beside `target`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    source: str
    target: str
    relation: Relation
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)


class Frame(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    up_axis: Literal["z"] = "z"
    units: Literal["m"] = "m"
    handedness: Literal["right"] = "right"


class SceneGraph(BaseModel):
    """`scene_graph.json`: nodes and relations in the pipeline's Z-up metre world frame."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: Literal[1] = 1
    scene_id: str = Field(min_length=1)
    frame: Frame = Frame()
    nodes: tuple[SceneNode, ...] = ()
    edges: tuple[SceneEdge, ...] = ()

    def node(self, asset_id: str) -> SceneNode:
        for node in self.nodes:
            if node.asset_id == asset_id:
                return node
        raise KeyError(asset_id)


def parse_scene_graph(data: Mapping[str, Any] | SceneGraph) -> SceneGraph:
    """Validate a scene graph dict; a malformed one is `InvalidInput` naming scene and field."""
    if isinstance(data, SceneGraph):
        return data
    scene_id = data.get("scene_id") if isinstance(data, Mapping) else None
    try:
        graph = SceneGraph.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidInput(
            f"scene graph is invalid: {first['msg']}", scene_id=scene_id, field=where
        ) from exc
    ids = [n.asset_id for n in graph.nodes]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InvalidInput(
            "scene graph repeats an asset id", scene_id=graph.scene_id, object=duplicates[0]
        )
    known = set(ids)
    for edge in graph.edges:
        for end in (edge.source, edge.target):
            if end not in known:
                raise InvalidInput(
                    "scene graph edge names an unknown node",
                    scene_id=graph.scene_id,
                    object=end,
                    field="edges",
                )
    return graph
