"""Build the MuJoCo world for one episode from a scene graph, a robot assignment and a task.

Nodes with authored shapes are built from them (bp_collector.mujoco.shapes): each collision
shape its own geom of its true kind, size and pose, collision meshes as convex hulls (cached,
bp_collector.mujoco.convex), seen meshes drawn as meshes, each geom in its authored colour
under the randomised colour scale. Free nodes are free bodies at their box centre with the
graph's mass (spread over their geoms by volume) and friction; static nodes are fixed bodies.
From the world AABB in the graph instead: nodes without shapes (boxes, or upright cylinders for
round things), containers (Containable, or bowls, mugs...) authored only from solid primitives
(open-top boxes, so things fit inside), and articulated nodes (an open shell with a shelf under
anything standing inside it, plus hinged or sliding parts with a handle). A floor, lights, the
robot at its base pose and the cameras (a wrist camera and fixed overhead/front cameras aimed at
the task's work area) complete the model.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import mujoco
import numpy as np
from bp_common.errors import InvalidInput
from bp_robot_models import PREFIX as ROBOT_PREFIX
from bp_robot_models import RobotHandle, add_robot
from bp_scene_contract import (
    ArticulationJoint,
    Box,
    InvalidSceneDocument,
    RobotAssignment,
    SceneCamera,
    SceneGraph,
    SceneLight,
    SceneNode,
    Shape,
    TaskSpec,
    authored_handle,
)

from bp_collector.camera_placement import LookAt, Orbit, Placement, check_placements
from bp_collector.mujoco.convex import ConvexDecomposer, ConvexSettings
from bp_collector.mujoco.randomization import DomainRandomization
from bp_collector.mujoco.shapes import ShapeBuild, add_shapes, has_collision_mesh

NODE_PREFIX = "node/"
SCENE_CONTYPE = 1
SCENE_CONAFFINITY = 3
SUPPORTED_CAMERAS = ("wrist", "overhead", "front")
CONTAINER_WORDS = ("bowl", "mug", "cup", "basket", "bin", "pot", "tray")
CONTAINER_WALL_M = 0.006
ROUND_WORDS = ("cylinder", "can", "bottle", "cup", "mug", "jar", "glass", "bowl", "pot")
SKIPPED_SEMANTICS = ("ceiling",)
PHYSICS_STEP_S = 0.002
WALL_M = 0.02

# What an object weighs and how it grips when the scene does not say (null in the graph).
DEFAULT_MASS_KG = 0.2
DEFAULT_FRICTION = 0.8

BACKGROUND_ID = 0
FLOOR_ID = 1
ROBOT_ID = 2


FIXED_CAMERA_FOVY_DEG = 58.0
WRIST_CAMERA_FOVY_DEG = 75.0


@dataclass(frozen=True)
class WorldOptions:
    cameras: tuple[str, ...] = ("wrist", "overhead")
    width: int = 224
    height: int = 224
    fps: int = 30
    fovy_deg: float = FIXED_CAMERA_FOVY_DEG
    """Vertical field of view of the fixed cameras (overhead, front)."""
    placements: Mapping[str, Placement] = field(default_factory=dict)
    """Where fixed cameras stand instead of their own places (bp_collector.camera_placement)."""
    convex: ConvexSettings | None = None
    """Convex decomposition of collision meshes (None: from the BP_CONVEX_* settings)."""


@dataclass(frozen=True)
class FreeObject:
    asset_id: str
    body: str
    shape: str
    half_extents: tuple[float, float, float]
    wall_m: float = 0.0


@dataclass(frozen=True)
class ArticulatedPart:
    asset_id: str
    joint_name: str
    mj_joint: str
    body: str
    kind: str
    axis: tuple[float, float, float]
    anchor: tuple[float, float, float]
    outward: tuple[float, float, float]
    handle_geom: str
    handle_along_z: bool


@dataclass
class World:
    """A compiled model plus the names the expert, recorder and success checks need."""

    spec: mujoco.MjSpec
    model: mujoco.MjModel
    robot: RobotHandle
    free_objects: dict[str, FreeObject]
    parts: dict[tuple[str, str], ArticulatedPart]
    cameras: tuple[str, ...]
    fps: int
    substeps: int
    geom_entity: np.ndarray
    entities: dict[int, str]
    robot_geoms: np.ndarray
    node_bodies: dict[str, tuple[int, ...]] = field(default_factory=dict)
    shape_builds: dict[str, ShapeBuild] = field(default_factory=dict)
    """Nodes built from their authored shapes, with what that took; the rest are boxes."""

    @property
    def frame_dt(self) -> float:
        return 1.0 / self.fps

    def camera_name(self, camera: str) -> str:
        return f"cam/{camera}"


def _is_round(node: SceneNode) -> bool:
    words = node.semantic.lower()
    return any(w in words for w in ROUND_WORDS)


def _base_rgb(node: SceneNode) -> tuple[float, float, float]:
    semantic = node.semantic.lower()
    if any(w in semantic for w in ("table", "desk", "counter", "shelf", "cabinet", "drawer")):
        return (0.55, 0.4, 0.28)
    if any(w in semantic for w in ("wall", "floor")):
        return (0.8, 0.8, 0.78)
    digest = hashlib.sha256(node.asset_id.encode()).digest()
    palette = [
        (0.85, 0.2, 0.15),
        (0.15, 0.45, 0.85),
        (0.2, 0.7, 0.3),
        (0.9, 0.7, 0.1),
        (0.6, 0.25, 0.7),
        (0.95, 0.5, 0.15),
    ]
    return palette[digest[0] % len(palette)]


def _mass(node: SceneNode) -> float:
    mass = node.properties.mass
    return mass if mass is not None else DEFAULT_MASS_KG


def _friction(node: SceneNode) -> float:
    friction = node.properties.friction
    return friction if friction is not None else DEFAULT_FRICTION


def _scene_geom(body: mujoco.MjsBody, rgb: Sequence[float], **kwargs: object) -> mujoco.MjsGeom:
    geom = body.add_geom(**kwargs)
    geom.contype = SCENE_CONTYPE
    geom.conaffinity = SCENE_CONAFFINITY
    geom.rgba = [*rgb, 1.0]
    return geom


def _yaw_quat(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def _is_container(node: SceneNode) -> bool:
    words = node.semantic.lower()
    return "Containable" in node.affordances or any(w in words for w in CONTAINER_WORDS)


def _from_shapes(node: SceneNode) -> bool:
    """Build the node from its authored shapes? Not when it has none, and not a container
    authored only from solid primitives (a mug as one cylinder): it could hold nothing, so the
    open-top box stands in for it, as it does for a container with no shapes at all."""
    if not any(s.collision for s in node.shapes):
        return False
    return not _is_container(node) or has_collision_mesh(node)


def container_wall(node: SceneNode) -> float:
    ex, ey, ez = node.bbox.size
    return float(min(CONTAINER_WALL_M, 0.2 * min(ex, ey), 0.3 * ez))


def _add_container_geoms(
    body: mujoco.MjsBody,
    node: SceneNode,
    rgb: Sequence[float],
    mass: float | None,
    friction: list[float],
) -> tuple[float, float, float]:
    """An open-top box: a floor and four walls filling the node's box, so things fit inside."""
    ex, ey, ez = node.bbox.size
    half = np.array([ex / 2, ey / 2, ez / 2])
    wall = container_wall(node)
    pieces: list[tuple[list[float], list[float]]] = [
        ([half[0], half[1], wall / 2], [0.0, 0.0, -half[2] + wall / 2])
    ]
    for axis in (0, 1):
        for sign in (1.0, -1.0):
            size = half.copy()
            size[axis] = wall / 2
            pos = np.zeros(3)
            pos[axis] = sign * (half[axis] - wall / 2)
            pieces.append((size.tolist(), pos.tolist()))
    volumes = [8 * float(np.prod(piece_size)) for piece_size, _ in pieces]
    for (piece_size, piece_pos), volume in zip(pieces, volumes, strict=True):
        kwargs: dict[str, object] = {}
        if mass is not None:
            kwargs["mass"] = mass * volume / sum(volumes)
        _scene_geom(
            body,
            rgb,
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=piece_size,
            pos=piece_pos,
            friction=friction,
            **kwargs,
        )
    return (float(half[0]), float(half[1]), float(half[2]))


@dataclass
class _Builder:
    """What every node's geoms are built with: the draw, the mesh decomposer, a record."""

    rand: DomainRandomization
    decomposer: ConvexDecomposer
    shape_builds: dict[str, ShapeBuild] = field(default_factory=dict)

    def shapes(
        self,
        spec: mujoco.MjSpec,
        body: mujoco.MjsBody,
        node: SceneNode,
        mass: float | None,
        friction: list[float],
        shapes: Sequence[Shape] | None = None,
        origin: Sequence[float] | None = None,
    ) -> None:
        """Add the node's shapes (or `shapes`, some of them) to `body`, which stands at
        `origin` (the node's box centre unless given) before any randomised offset."""

        def colour(rgb: Sequence[float]) -> tuple[float, float, float]:
            return self.rand.colour(node.asset_id, rgb)

        some = node if shapes is None else node.model_copy(update={"shapes": tuple(shapes)})
        built = add_shapes(
            spec,
            body,
            some,
            node.bbox.centre if origin is None else origin,
            colour=colour,
            default_rgb=_base_rgb(node),
            mass=mass,
            friction=friction,
            contype=SCENE_CONTYPE,
            conaffinity=SCENE_CONAFFINITY,
            decomposer=self.decomposer,
        )
        before = self.shape_builds.get(node.asset_id)
        if before is not None:
            built = ShapeBuild(
                before.collision_geoms + built.collision_geoms,
                before.hulls + built.hulls,
                before.cache_hits + built.cache_hits,
            )
        self.shape_builds[node.asset_id] = built


def _add_free_object(spec: mujoco.MjSpec, node: SceneNode, build: _Builder) -> FreeObject:
    """A free body at the node's box centre (the expert plans from that box), with its authored
    shapes where it has them, else a box, an upright cylinder or an open-top box from the AABB."""
    rand = build.rand
    jitter = rand.object_jitter(node.asset_id)
    cx, cy, cz = node.bbox.centre
    ex, ey, ez = node.bbox.size
    name = f"{NODE_PREFIX}{node.asset_id}"
    body = spec.worldbody.add_body(
        name=name, pos=[cx + jitter.dx, cy + jitter.dy, cz + 0.001], quat=_yaw_quat(jitter.dyaw)
    )
    body.add_freejoint(name=f"{name}/free")
    rgb = rand.colour(node.asset_id, _base_rgb(node))
    friction = [_friction(node), 0.005, 0.0001]
    mass = _mass(node)
    authored = _from_shapes(node)
    if authored:
        build.shapes(spec, body, node, mass, friction)
    if _is_container(node):
        half = (ex / 2, ey / 2, ez / 2)
        if not authored:
            half = _add_container_geoms(body, node, rgb, mass, friction)
        shape = "container"
    elif _is_round(node):
        radius = min(ex, ey) / 2
        half = (radius, radius, ez / 2)
        if not authored:
            geom = _scene_geom(
                body,
                rgb,
                type=mujoco.mjtGeom.mjGEOM_CYLINDER,
                size=[radius, ez / 2, 0],
                mass=mass,
                friction=friction,
            )
            geom.name = f"{name}/geom"
        shape = "cylinder"
    else:
        half = (ex / 2, ey / 2, ez / 2)
        if not authored:
            geom = _scene_geom(
                body,
                rgb,
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=list(half),
                mass=mass,
                friction=friction,
            )
            geom.name = f"{name}/geom"
        shape = "box"
    wall = container_wall(node) if shape == "container" else 0.0
    return FreeObject(node.asset_id, name, shape, half, wall)


def _add_static_node(spec: mujoco.MjSpec, node: SceneNode, build: _Builder) -> None:
    name = f"{NODE_PREFIX}{node.asset_id}"
    body = spec.worldbody.add_body(name=name, pos=list(node.bbox.centre))
    ex, ey, ez = node.bbox.size
    rgb = build.rand.colour(node.asset_id, _base_rgb(node))
    friction = [_friction(node), 0.005, 0.0001]
    if _from_shapes(node):
        build.shapes(spec, body, node, None, friction)
    elif _is_container(node):
        _add_container_geoms(body, node, rgb, None, friction)
    else:
        _scene_geom(
            body,
            rgb,
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[ex / 2, ey / 2, ez / 2],
            friction=friction,
        )


def _open_face(node_box: Box, parts: Sequence[Box]) -> tuple[int, float]:
    """The side (axis index, sign) of the node's box that its moving parts sit against."""
    best: tuple[float, int, float] | None = None
    for axis in (0, 1):
        for sign in (1.0, -1.0):
            gaps = [
                node_box.max[axis] - p.max[axis] if sign > 0 else p.min[axis] - node_box.min[axis]
                for p in parts
            ]
            gap = min(gaps)
            if best is None or gap < best[0]:
                best = (gap, axis, sign)
    assert best is not None
    return best[1], best[2]


def _inside_xy(inner: Box, outer: Box) -> bool:
    cx, cy, _ = inner.centre
    return outer.min[0] < cx < outer.max[0] and outer.min[1] < cy < outer.max[1]


def _moving_shapes(node: SceneNode) -> dict[str, tuple[Shape, ...]] | None:
    """Each joint's moving shapes, when the scene graph says which prims each joint moves and
    each moves something that collides; None otherwise (the node is then built from boxes)."""
    assert node.articulation is not None
    joints = node.articulation.joints
    if not any(s.collision for s in node.shapes) or any(j.moving_part is None for j in joints):
        return None
    moving = {j.name: tuple(s for s in node.shapes if j.moves(s)) for j in joints}
    return moving if all(any(s.collision for s in v) for v in moving.values()) else None


def _add_articulated(
    spec: mujoco.MjSpec, node: SceneNode, build: _Builder, contents: Sequence[SceneNode]
) -> list[ArticulatedPart]:
    """The fixed shell of an articulated node and its moving parts. Built from its authored
    shapes where the scene graph says which of them each joint moves (a part with no authored
    handle gets a bar); else from boxes: walls round the node's box open on the side its parts
    sit against, a shelf under anything standing inside, each part its box with a bar."""
    assert node.articulation is not None
    name = f"{NODE_PREFIX}{node.asset_id}"
    rgb = build.rand.colour(node.asset_id, _base_rgb(node))
    joints = node.articulation.joints
    axis_i, sign = _open_face(node.bbox, [j.moving_part_bbox for j in joints])
    lo = np.array(node.bbox.min)
    hi = np.array(node.bbox.max)
    center = (lo + hi) / 2
    half = (hi - lo) / 2
    shell = spec.worldbody.add_body(name=name, pos=center.tolist())
    outward = np.zeros(3)
    outward[axis_i] = sign
    moving = _moving_shapes(node)
    if moving is not None:
        moved = {id(s) for shapes in moving.values() for s in shapes}
        fixed = [s for s in node.shapes if id(s) not in moved]
        build.shapes(spec, shell, node, None, [_friction(node), 0.005, 0.0001], fixed)
        return [
            _add_moving_part(spec, node, joint, shell, outward, rgb, build, moving[joint.name])
            for joint in joints
        ]
    for wall_axis in (0, 1, 2):
        for wall_sign in (1.0, -1.0):
            if wall_axis == axis_i and wall_sign == sign:
                continue  # The open side, where the door or drawer is.
            size = half.copy()
            size[wall_axis] = WALL_M / 2
            pos = np.zeros(3)
            pos[wall_axis] = wall_sign * (half[wall_axis] - WALL_M / 2)
            _scene_geom(
                shell, rgb, type=mujoco.mjtGeom.mjGEOM_BOX, size=size.tolist(), pos=pos.tolist()
            )
    # The graph gives the cabinet's outer box only: put a shelf under anything standing inside.
    shelves = sorted(
        {
            round(n.bbox.min[2], 3)
            for n in contents
            if lo[2] + WALL_M < n.bbox.min[2] < hi[2] - WALL_M
        }
    )
    for z in shelves:
        size = half.copy()
        size[2] = WALL_M / 2
        pos = np.zeros(3)
        pos[2] = z - WALL_M / 2 - center[2]
        # Keep clear of the open side, where the door or drawer moves.
        inset = np.zeros(3)
        inset[axis_i] = sign * 0.03
        size[axis_i] -= 0.015
        _scene_geom(
            shell,
            rgb,
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=size.tolist(),
            pos=(pos - inset / 2).tolist(),
        )
    return [
        _add_moving_part(spec, node, joint, shell, outward, rgb, build, None) for joint in joints
    ]


def _add_moving_part(
    spec: mujoco.MjSpec,
    node: SceneNode,
    joint: ArticulationJoint,
    shell: mujoco.MjsBody,
    outward: np.ndarray,
    rgb: Sequence[float],
    build: _Builder,
    shapes: Sequence[Shape] | None,
) -> ArticulatedPart:
    name = f"{NODE_PREFIX}{node.asset_id}/{joint.name}"
    box = joint.moving_part_bbox
    center = np.array(box.centre)
    half = np.array(box.size) / 2
    body = spec.worldbody.add_body(name=name, pos=center.tolist())
    axis = np.array(joint.axis, dtype=float)
    axis /= np.linalg.norm(axis)
    mj_joint = f"{name}/joint"
    is_door = joint.type == "revolute"
    body.add_joint(
        name=mj_joint,
        type=mujoco.mjtJoint.mjJNT_HINGE if is_door else mujoco.mjtJoint.mjJNT_SLIDE,
        axis=axis.tolist(),
        pos=(np.array(joint.anchor) - center).tolist(),
        range=[joint.lower, joint.upper],
        damping=1.0 if is_door else 5.0,
        frictionloss=0.05,
        armature=0.01,
    )
    volume = float(np.prod(2 * half))
    mass = max(0.3, min(3.0, volume * 300.0))
    handle: tuple[str, bool] | None = None
    if shapes is not None:
        # The part as authored; a bar stands in for a handle only if it has none.
        handle = _add_authored_part(spec, node, joint, body, center, shapes, mass, build)
    else:
        _scene_geom(
            body,
            [c * 0.85 for c in rgb],
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=half.tolist(),
            mass=mass,
        )
    if handle is None:
        handle = _add_bar_handle(body, name, center, half, outward, joint, is_door)
    spec.add_exclude(bodyname1=shell.name, bodyname2=body.name)
    return ArticulatedPart(
        node.asset_id,
        joint.name,
        mj_joint,
        name,
        joint.type,
        _triple(axis),
        _triple(np.array(joint.anchor)),
        _triple(outward),
        *handle,
    )


def _add_bar_handle(
    body: mujoco.MjsBody,
    name: str,
    center: np.ndarray,
    half: np.ndarray,
    outward: np.ndarray,
    joint: ArticulationJoint,
    is_door: bool,
) -> tuple[str, bool]:
    """A bar on two posts on the part's outer face, along a door's free edge or across a
    drawer's front: (its geom, whether it runs vertically)."""
    face = center + outward * half
    tangent = np.cross([0.0, 0.0, 1.0], outward)
    width = float(np.dot(half, np.abs(tangent)))
    if is_door:
        # Near the edge farthest from the hinge line, where a door handle sits.
        away = float(np.sign(np.dot(center - np.array(joint.anchor), tangent))) or 1.0
        handle_pos = face + tangent * away * width * 0.7
        handle_len = min(0.12, 2 * float(half[2]) * 0.6)
        direction = np.array([0.0, 0.0, 1.0])
    else:
        handle_pos = face
        handle_len = min(0.12, 2 * width * 0.6)
        direction = tangent
    ends = [handle_pos - direction * handle_len / 2, handle_pos + direction * handle_len / 2]
    standoff = outward * 0.035
    fromto = np.concatenate([e + standoff - center for e in ends]).tolist()
    dark = [0.2, 0.2, 0.22]
    handle = _scene_geom(
        body,
        dark,
        type=mujoco.mjtGeom.mjGEOM_CAPSULE,
        fromto=fromto,
        size=[0.01, 0, 0],
        mass=0.05,
        friction=[1.5, 0.005, 0.0001],
    )
    handle.name = f"{name}/handle"
    for end in ends:
        _scene_geom(
            body,
            dark,
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[0.006, 0.006, 0.0175],
            pos=(end + standoff / 2 - center).tolist(),
            quat=_quat_z_to(outward),
            mass=0.01,
        )
    return handle.name, is_door


def _triple(v: np.ndarray) -> tuple[float, float, float]:
    return (float(v[0]), float(v[1]), float(v[2]))


def _add_authored_part(
    spec: mujoco.MjSpec,
    node: SceneNode,
    joint: ArticulationJoint,
    body: mujoco.MjsBody,
    centre: np.ndarray,
    shapes: Sequence[Shape],
    mass: float,
    build: _Builder,
) -> tuple[str, bool] | None:
    """A moving part from its authored shapes, its handle on a welded child body so that the
    expert can find it: (handle geom, whether it runs vertically); None when it has no
    authored handle."""
    bar = authored_handle(node, joint)
    friction = [_friction(node), 0.005, 0.0001]
    origin = _triple(centre)
    build.shapes(spec, body, node, mass, friction, [s for s in shapes if s is not bar], origin)
    if bar is None:
        return None
    grip = body.add_body(name=f"{body.name}/handle")
    build.shapes(spec, grip, node, 0.05, friction, [bar], origin)
    _, (ex, ey, ez) = bar.world_box()
    return f"{grip.name}/shape0", ez >= max(ex, ey)


def _quat_z_to(direction: np.ndarray) -> list[float]:
    """A rotation taking +z onto `direction` (a unit vector)."""
    quat = np.zeros(4)
    mujoco.mju_quatZ2Vec(quat, np.asarray(direction, dtype=float))
    return quat.tolist()


def _look_at_quat(pos: np.ndarray, target: np.ndarray, up_hint: np.ndarray) -> list[float]:
    """Orientation of a MuJoCo camera at `pos` looking at `target` (cameras look along -z)."""
    z = pos - target
    z /= np.linalg.norm(z)
    y = up_hint - np.dot(up_hint, z) * z
    if np.linalg.norm(y) < 1e-6:
        y = np.array([0.0, 1.0, 0.0]) - z[1] * z
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    mat = np.column_stack([x, y, z]).ravel()
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mat)
    return quat.tolist()


def work_area(graph: SceneGraph, task: TaskSpec) -> np.ndarray:
    """The point the fixed cameras aim at: between the target and the goal for pick-and-place,
    the moving part (the one the success predicate names, else the first) for open/close."""
    node = graph.node(task.target)
    target = np.array(node.bbox.centre)
    if task.goal_region is not None:
        target = (target + np.array(task.goal_region.centre)) / 2
    if node.articulation is not None and node.articulation.joints:
        wanted = getattr(task.success, "joint", None)
        joints = node.articulation.joints
        joint = next((j for j in joints if j.name == wanted), joints[0])
        target = np.array(joint.moving_part_bbox.centre)
    return target


MAX_SCENE_LIGHTS = 8
"""The renderer lights a scene with at most eight lights; the brightest are kept."""


def _add_lights(spec: mujoco.MjSpec, graph: SceneGraph, rand: DomainRandomization) -> None:
    """The scene's own lights where it has them, else one key light, at the drawn intensity.

    The drawn intensity is shared among the scene's lights by their authored intensities, so a
    scene is as bright overall as one lit by the key light; distant lights shine along their
    -z, turned by the drawn direction's offset from straight down; other lights are points.
    Dome lights are the environment, which the headlight's ambient term stands in for.
    """
    lights = [light for light in graph.lights if light.type_name != "DomeLight"]
    if not lights:
        spec.worldbody.add_light(
            name="key",
            pos=[0.0, 0.0, 3.0],
            dir=list(rand.light_direction),
            diffuse=[rand.light_intensity] * 3,
            castshadow=False,
            type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL,
        )
        return
    kept = sorted(lights, key=lambda light: -_authored_intensity(light))[:MAX_SCENE_LIGHTS]
    total = sum(_authored_intensity(light) for light in kept)
    offset = np.array(rand.light_direction) - np.array([0.0, 0.0, -1.0])
    for light in kept:
        diffuse = rand.light_intensity * _authored_intensity(light) / total
        axes = np.zeros(9)
        mujoco.mju_quat2Mat(axes, np.asarray(light.pose.orientation, dtype=float))
        direction = -axes.reshape(3, 3)[:, 2]
        distant = light.type_name == "DistantLight"
        if distant:
            direction = direction + offset
            direction /= np.linalg.norm(direction) or 1.0
        spec.worldbody.add_light(
            name=f"light{light.usd_path}",
            pos=list(light.pose.position) if not distant else [0.0, 0.0, 3.0],
            dir=direction.tolist(),
            diffuse=[diffuse] * 3,
            castshadow=False,
            type=mujoco.mjtLightType.mjLIGHT_DIRECTIONAL
            if distant
            else mujoco.mjtLightType.mjLIGHT_POINT,
        )


def _authored_intensity(light: SceneLight) -> float:
    # A light that does not say how bright it is counts as USD's default, 1.
    return light.intensity if light.intensity is not None and light.intensity > 0 else 1.0


def _add_scene_camera(spec: mujoco.MjSpec, camera: SceneCamera) -> None:
    """A camera of the scene, as authored: its pose (MuJoCo's and USD's cameras both look
    along -z with +y up) and its lens."""
    spec.worldbody.add_camera(
        name=f"cam/{camera.name}",
        pos=list(camera.pose.position),
        quat=list(camera.pose.orientation),
        fovy=camera.fovy_deg,
    )


def _add_cameras(
    spec: mujoco.MjSpec,
    robot: RobotHandle,
    names: Sequence[str],
    center: np.ndarray,
    base_pos: np.ndarray,
    rand: DomainRandomization,
    open_side_only: bool,
    fovy_deg: float,
    placements: Mapping[str, Placement],
    scene_cameras: Mapping[str, SceneCamera],
) -> None:
    forward = center - base_pos
    forward[2] = 0
    if np.linalg.norm(forward) < 1e-6:
        forward = np.array([1.0, 0.0, 0.0])
    forward /= np.linalg.norm(forward)
    up_z = np.array([0.0, 0.0, 1.0])
    side = np.cross(up_z, forward)
    for name in names:
        jitter = rand.camera_jitter(name)
        if name == "wrist":
            _add_wrist_camera(spec, robot)
            continue
        if name in scene_cameras:
            _add_scene_camera(spec, scene_cameras[name])
            continue
        target = center + np.array(jitter.target)
        placement = placements.get(name)
        # The overhead image's top points away from the robot, the others' up.
        up_hint = forward if name == "overhead" else up_z
        if isinstance(placement, Orbit):
            el, az = math.radians(placement.elevation_deg), math.radians(placement.azimuth_deg)
            horizontal = math.cos(az) * forward + math.sin(az) * side
            offset = math.cos(el) * horizontal + math.sin(el) * up_z
            pos, up = center + placement.distance_m * offset, up_hint
        elif isinstance(placement, LookAt):
            pos, up = np.array(placement.position), up_hint
            target = np.array(placement.target) + np.array(jitter.target)
        elif name == "overhead" and open_side_only:
            # Above and behind the part to be opened: from beyond it only its back shows.
            pos, up = center - forward * 0.5 + up_z * 0.8, forward
        elif name == "overhead":
            # High and a little beyond the work area, looking back at the robot, so the arm does
            # not hide the grasp the way a camera above the base would.
            pos, up = center + forward * 0.3 + up_z * 0.8, forward
        elif name == "front" and open_side_only:
            pos, up = center - forward * 0.4 + side * 0.7 + up_z * 0.3, up_z
        elif name == "front":
            pos, up = center + forward * 0.9 + up_z * 0.45, up_z
        else:
            raise InvalidInput(f"unknown camera {name!r}; supported: {SUPPORTED_CAMERAS}")
        pos = pos + np.array(jitter.position)
        spec.worldbody.add_camera(
            name=f"cam/{name}", pos=pos.tolist(), quat=_look_at_quat(pos, target, up), fovy=fovy_deg
        )


def _add_wrist_camera(spec: mujoco.MjSpec, robot: RobotHandle) -> None:
    """On the hand, behind and beside the fingers, looking along the end-effector site's z.

    Placed in the site's frame, which every robot defines the same way, so the view is alike
    whatever the hand body's own axes are.
    """
    site = spec.site(robot.ee_site)
    offset = np.array([-0.07, 0.0, -0.0834])
    site_rot = np.zeros(9)
    mujoco.mju_quat2Mat(site_rot, np.asarray(site.quat, dtype=float))
    pos = np.asarray(site.pos, dtype=float) + site_rot.reshape(3, 3) @ offset
    quat = np.zeros(4)
    mujoco.mju_mulQuat(quat, np.asarray(site.quat, dtype=float), np.array(_wrist_quat()))
    spec.body(robot.hand_body).add_camera(
        name="cam/wrist", pos=pos.tolist(), quat=quat.tolist(), fovy=WRIST_CAMERA_FOVY_DEG
    )


def _wrist_quat() -> list[float]:
    # Camera -z along the site's +z, tilted 20 degrees toward the fingers so they stay in view.
    tilt = math.radians(20.0)
    flip = np.array([0.0, 1.0, 0.0, 0.0])
    turn = np.array([math.cos(tilt / 2), 0.0, -math.sin(tilt / 2), 0.0])
    out = np.zeros(4)
    mujoco.mju_mulQuat(out, flip, turn)
    return out.tolist()


def build_world(
    graph: SceneGraph,
    assignment: RobotAssignment,
    task: TaskSpec,
    options: WorldOptions,
    rand: DomainRandomization,
) -> World:
    """Compile the episode's model: scene, floor, lights, robot and cameras."""
    scene_cameras = {camera.name: camera for camera in graph.cameras}
    for camera in options.cameras:
        if camera not in SUPPORTED_CAMERAS and camera not in scene_cameras:
            raise InvalidInput(
                f"unknown camera {camera!r}; supported: {SUPPORTED_CAMERAS}"
                f" and the scene's {sorted(scene_cameras)}"
            )
    placements = check_placements(options.placements.items(), options.cameras)
    spec = mujoco.MjSpec()
    spec.modelname = f"{graph.scene_id}-{task.task_id}"
    spec.compiler.degree = False
    substeps = max(1, math.ceil((1.0 / options.fps) / PHYSICS_STEP_S))
    spec.option.timestep = 1.0 / (options.fps * substeps)
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    spec.visual.quality.shadowsize = 0
    spec.visual.quality.offsamples = 0
    spec.visual.global_.offwidth = max(640, options.width)
    spec.visual.global_.offheight = max(480, options.height)
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [0.3, 0.3, 0.3]
    spec.visual.map.znear = 0.005
    spec.stat.extent = 2.0
    spec.stat.center = [0.0, 0.0, 0.5]

    floor_z = min([0.0] + [n.bbox.min[2] for n in graph.nodes if n.is_static])
    floor = spec.worldbody.add_geom(
        name="floor", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[5.0, 5.0, 0.1], pos=[0, 0, floor_z]
    )
    floor.rgba = [*rand.floor_rgb, 1.0]
    _texture_floor(spec, floor, rand)
    floor.contype = SCENE_CONTYPE
    floor.conaffinity = SCENE_CONAFFINITY
    _add_lights(spec, graph, rand)

    free_objects: dict[str, FreeObject] = {}
    parts: dict[tuple[str, str], ArticulatedPart] = {}
    build = _Builder(rand, ConvexDecomposer(options.convex))
    for node in graph.nodes:
        if any(w in node.semantic.lower() for w in SKIPPED_SEMANTICS):
            continue
        if node.articulation is not None and node.articulation.joints:
            inside = [
                n
                for n in graph.nodes
                if n is not node and not n.is_static and _inside_xy(n.bbox, node.bbox)
            ]
            for part in _add_articulated(spec, node, build, inside):
                parts[(node.asset_id, part.joint_name)] = part
        elif node.is_static:
            _add_static_node(spec, node, build)
        else:
            free_objects[node.asset_id] = _add_free_object(spec, node, build)

    rand.apply_physics(spec, {asset_id: obj.body for asset_id, obj in free_objects.items()})

    base = assignment.base_pose
    if base is None:
        raise InvalidSceneDocument(
            "robot has no base pose in the task config",
            scene_id=graph.scene_id,
            robot=assignment.robot,
        )
    robot = add_robot(spec, assignment.robot, base.position, base.orientation)
    if base.position[2] - floor_z > 0.02 and not robot.floor_bodies:
        # A pedestal under an arm mounted above the floor, so it does not hang in the air.
        height = base.position[2] - floor_z
        pedestal = spec.worldbody.add_geom(
            name="robot_pedestal",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[0.09, 0.09, height / 2],
            pos=[base.position[0], base.position[1], floor_z + height / 2],
        )
        pedestal.rgba = [0.3, 0.3, 0.32, 1.0]
        pedestal.contype = SCENE_CONTYPE
        pedestal.conaffinity = SCENE_CONAFFINITY
    # The first link turns right at the mounting plane: keep it off the floor and pedestal.
    spec.add_exclude(bodyname1="world", bodyname2=spec.joint(robot.arm_joints[0]).parent.name)
    target_node = graph.node(task.target)
    _add_cameras(
        spec,
        robot,
        options.cameras,
        work_area(graph, task),
        np.array(base.position, dtype=float),
        rand,
        open_side_only=target_node.articulation is not None,
        fovy_deg=options.fovy_deg,
        placements=placements,
        scene_cameras=scene_cameras,
    )
    key = spec.add_key(name="home")
    model = spec.compile()
    qpos = model.qpos0.copy()
    for joint, q in zip(robot.arm_joints, robot.home_qpos, strict=True):
        qpos[model.joint(joint).qposadr[0]] = q
    for joint, q in zip(robot.finger_joints, robot.finger_qpos(1.0), strict=True):
        qpos[model.joint(joint).qposadr[0]] = q
    key.qpos = qpos.tolist()
    ctrl = np.zeros(model.nu)
    for act, q in zip(robot.arm_actuators, robot.home_qpos, strict=True):
        ctrl[model.actuator(act).id] = q
    ctrl[model.actuator(robot.gripper_actuator).id] = robot.gripper_open_ctrl
    key.ctrl = ctrl.tolist()
    model = spec.compile()

    geom_entity, entities, node_bodies = _segmentation_table(model, graph)
    robot_root = model.body(robot.base_body).id
    robot_geoms = np.array(
        [model.body_rootid[model.geom_bodyid[g]] == robot_root for g in range(model.ngeom)],
        dtype=bool,
    )
    return World(
        spec=spec,
        model=model,
        robot=robot,
        free_objects=free_objects,
        parts=parts,
        cameras=tuple(options.cameras),
        fps=options.fps,
        substeps=substeps,
        geom_entity=geom_entity,
        entities=entities,
        robot_geoms=robot_geoms,
        node_bodies=node_bodies,
        shape_builds=build.shape_builds,
    )


_BUILTIN_TEXTURES = {
    "checker": mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
    "gradient": mujoco.mjtBuiltin.mjBUILTIN_GRADIENT,
}


def _texture_floor(spec: mujoco.MjSpec, floor: mujoco.MjsGeom, rand: DomainRandomization) -> None:
    """Give the floor the drawn builtin texture: the floor colour and a second one."""
    draw = rand.floor_texture
    if draw.builtin == "none":
        return
    spec.add_texture(
        name="floor",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=_BUILTIN_TEXTURES[draw.builtin],
        rgb1=list(rand.floor_rgb),
        rgb2=list(draw.rgb2),
        width=256,
        height=256,
    )
    material = spec.add_material(name="floor")
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "floor"
    # A checker texture holds 2x2 squares; uniform mapping repeats it per metre.
    repeat = 1.0 / (2.0 * draw.tile_m) if draw.builtin == "checker" else 0.2
    material.texrepeat = [repeat, repeat]
    material.texuniform = True
    floor.material = "floor"
    floor.rgba = [1.0, 1.0, 1.0, 1.0]  # The texture carries the colours.


def _segmentation_table(
    model: mujoco.MjModel, graph: SceneGraph
) -> tuple[np.ndarray, dict[int, str], dict[str, tuple[int, ...]]]:
    """Map every geom to a stable id: 1 floor, 2 robot, 3.. the graph's nodes in order."""
    entities = {BACKGROUND_ID: "background", FLOOR_ID: "floor", ROBOT_ID: "robot"}
    node_ids = {}
    for i, node in enumerate(graph.nodes):
        node_ids[node.asset_id] = 3 + i
        entities[3 + i] = node.asset_id
    geom_entity = np.zeros(model.ngeom, dtype=np.uint16)
    node_bodies: dict[str, list[int]] = {}
    for g in range(model.ngeom):
        body = model.body(model.geom_bodyid[g])
        name = body.name
        if name.startswith(ROBOT_PREFIX):
            geom_entity[g] = ROBOT_ID
        elif name.startswith(NODE_PREFIX):
            asset_id = name[len(NODE_PREFIX) :].split("/")[0]
            if asset_id not in node_ids:
                # Asset ids may contain "/": find the longest matching id.
                matches = [a for a in node_ids if name[len(NODE_PREFIX) :].startswith(a)]
                asset_id = max(matches, key=len)
            geom_entity[g] = node_ids[asset_id]
            node_bodies.setdefault(asset_id, [])
            if body.id not in node_bodies[asset_id]:
                node_bodies[asset_id].append(body.id)
        elif model.geom(g).name == "floor":
            geom_entity[g] = FLOOR_ID
        elif model.geom(g).name == "robot_pedestal":
            geom_entity[g] = ROBOT_ID
    return geom_entity, entities, {k: tuple(v) for k, v in node_bodies.items()}
