"""Build `scene_graph.json`: the scene's objects and their spatial relations, for later stages.

The document's shape is the scene contract's `SceneGraph` (bp_scene_contract.scene_graph); this
module fills it from the scene read from the USD. Everything is in the pipeline frame (Z up,
metres); `size` is the world box's extents; joint limits are radians (revolute) or metres
(prismatic). A joint without limits gets [-pi, pi] (revolute) or plus/minus the moving part's
largest extent (prismatic), since consumers need numbers. Values are rounded to micrometres so
that the same scene written in another up axis or unit gives the same file. The scene's lights
and perspective cameras go in as they are posed; a camera is named `usd_` and its prim's name.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from bp_scene_contract import (
    Articulation,
    ArticulationJoint,
    Box,
    NodeProperties,
    Pose,
    SceneCamera,
    SceneEdge,
    SceneGraph,
    SceneLight,
    SceneNode,
    Vec3,
)

from bp_export.scene.model import Box3, Camera, Joint, Light, SceneModel, SceneObject
from bp_export.scene.reconciliation import ReconciledScene, reconcile_scene
from bp_export.scene.relations import compute_relations

SCENE_GRAPH_FILE_NAME = "scene_graph.json"
_DIGITS = 6


def build_scene_graph(scene: SceneModel, reconciled: ReconciledScene | None = None) -> SceneGraph:
    """The scene graph of `scene`; roles come from `reconciled` (derived from the USD if None)."""
    if reconciled is None:
        reconciled = reconcile_scene(scene)
    nodes = tuple(_node(scene, obj, reconciled) for obj in scene.objects)
    edges = tuple(
        SceneEdge(source=r.source, target=r.target, relation=r.relation, confidence=r.confidence)
        for r in compute_relations(scene.objects)
    )
    return SceneGraph(
        scene_id=scene.scene_id,
        nodes=nodes,
        edges=edges,
        lights=tuple(_light(light) for light in sorted(scene.lights, key=lambda x: x.usd_path)),
        cameras=_cameras(scene.cameras),
    )


# USD's defaults for a camera that does not author its optics (millimetres).
_USD_FOCAL_LENGTH_MM = 50.0
_USD_VERTICAL_APERTURE_MM = 15.2908


def _light(light: Light) -> SceneLight:
    return SceneLight(
        usd_path=light.usd_path,
        type_name=light.type_name,
        pose=Pose(position=_vec(light.pose.position), orientation=_quat(light.pose.orientation)),
        intensity=None if light.intensity is None else max(0.0, _clean(light.intensity)),
    )


def _cameras(cameras: tuple[Camera, ...]) -> tuple[SceneCamera, ...]:
    """The perspective cameras, each under a name of its own (`usd_<prim name>`, `_2`... when
    two prims share a name)."""
    out: list[SceneCamera] = []
    names: set[str] = set()
    for camera in sorted(cameras, key=lambda c: c.usd_path):
        if camera.projection != "perspective":
            continue
        focal = camera.focal_length_mm or _USD_FOCAL_LENGTH_MM
        aperture = camera.vertical_aperture_mm or _USD_VERTICAL_APERTURE_MM
        if focal <= 0 or aperture <= 0:
            continue
        stem = "usd_" + re.sub(r"[^A-Za-z0-9_]", "_", camera.usd_path.rsplit("/", 1)[-1])[:56]
        name, k = stem, 2
        while name in names:
            name, k = f"{stem}_{k}", k + 1
        names.add(name)
        pose = Pose(position=_vec(camera.pose.position), orientation=_quat(camera.pose.orientation))
        fovy = math.degrees(2.0 * math.atan(aperture / (2.0 * focal)))
        out.append(SceneCamera(name=name, usd_path=camera.usd_path, pose=pose, fovy_deg=fovy))
    return tuple(out)


def scene_graph_json(graph: SceneGraph) -> str:
    return json.dumps(graph.model_dump(mode="json"), indent=2) + "\n"


def write_scene_graph(graph: SceneGraph, directory: Path) -> Path:
    path = Path(directory) / SCENE_GRAPH_FILE_NAME
    path.write_text(scene_graph_json(graph), encoding="utf-8")
    return path


def _node(scene: SceneModel, obj: SceneObject, reconciled: ReconciledScene) -> SceneNode:
    description = reconciled.objects[obj.asset_id]
    joints = [
        _joint(j, obj) for j in scene.joints_of(obj.asset_id) if j.type in ("revolute", "prismatic")
    ]
    return SceneNode(
        asset_id=obj.asset_id,
        semantic=description.semantic,
        size=_vec(obj.bbox.size),
        pose=Pose(position=_vec(obj.pose.position), orientation=_quat(obj.pose.orientation)),
        bbox=_box(obj.bbox),
        sim_role=description.sim_role,
        affordances=tuple(description.affordances),
        properties=NodeProperties(
            mass=_round(description.mass_kg), friction=_round(description.friction)
        ),
        is_static=obj.is_static,
        usd_path=obj.usd_path,
        articulation=Articulation(joints=tuple(joints)) if joints else None,
        shapes=obj.shapes,
    )


def _joint(joint: Joint, owner: SceneObject) -> ArticulationJoint:
    moving = joint.moving_part_bbox or owner.bbox
    if joint.type == "revolute":
        default_lower, default_upper = -math.pi, math.pi
    else:
        reach = max(moving.size)
        default_lower, default_upper = -reach, reach
    return ArticulationJoint(
        name=joint.name,
        type="revolute" if joint.type == "revolute" else "prismatic",
        axis=_vec(joint.axis or (1.0, 0.0, 0.0)),
        anchor=_vec(joint.anchor),
        lower=round(joint.lower if joint.lower is not None else default_lower, _DIGITS),
        upper=round(joint.upper if joint.upper is not None else default_upper, _DIGITS),
        moving_part_bbox=_box(moving),
        moving_part=joint.body1 if joint.moving_part_bbox is not None else None,
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, _DIGITS)


def _clean(value: float) -> float:
    rounded = round(value, _DIGITS)
    return 0.0 if rounded == 0 else rounded


def _vec(values: tuple[float, float, float]) -> Vec3:
    return (_clean(values[0]), _clean(values[1]), _clean(values[2]))


def _quat(values: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    return (_clean(values[0]), _clean(values[1]), _clean(values[2]), _clean(values[3]))


def _box(box: Box3) -> Box:
    return Box(min=_vec(box.min), max=_vec(box.max))
