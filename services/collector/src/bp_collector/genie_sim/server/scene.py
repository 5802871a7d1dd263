"""The simulated scene behind `bp genie-sim serve`: Genie Sim's session, played on MuJoCo.

A session is staged the way Genie Sim's client sets one up (init_robot, add_object,
set_object_pose, add_camera) and compiled into the collector's MuJoCo world when recording
starts, because the world is built for one task (its cameras aim at the task's work area).
From then on the clock is the recording's: the first observation shows the state as set up,
and each later one first advances the physics by one frame period (1/fps) under the targets
last commanded. Time therefore moves only as the client observes, which makes an episode
exactly repeatable (docs/decisions/0020-genie-sim-protocol.md).

The scene graph comes from `scene_usd_path`: this server reads the pipeline's own
`scene_graph.json` (with `task_config.json` beside it) where Genie Sim loads a USD stage.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import mujoco
import numpy as np
from bp_robot_models import ROBOT_IDS as SUPPORTED_ROBOTS
from bp_scene_contract import (
    Pose,
    RobotAssignment,
    SceneGraph,
    TaskConfig,
    read_scene_graph,
    read_task_config,
)

from bp_collector.genie_sim import wire
from bp_collector.mujoco.randomization import DomainRandomization
from bp_collector.mujoco.rendering import CameraImages, CameraRig
from bp_collector.mujoco.world import SUPPORTED_CAMERAS, World, WorldOptions, build_world

TASK_CONFIG = "task_config.json"
T = TypeVar("T")


class SceneError(Exception):
    """A request this server cannot carry out; `code` is the gRPC status name it answers with."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> SceneError:
    return SceneError("INVALID_ARGUMENT", message)


def _not_ready(message: str) -> SceneError:
    return SceneError("FAILED_PRECONDITION", message)


@dataclass
class _Placed:
    """An object the client placed: which scene node, where, and in which colour."""

    asset_id: str
    position: np.ndarray
    quat: np.ndarray
    rgb: tuple[float, float, float] | None = None


@dataclass
class _Camera:
    name: str
    position: np.ndarray
    quat: np.ndarray
    fovy_deg: float
    width: int
    height: int
    is_local: bool


@dataclass
class _Staged:
    """Everything set up since the last reset, before the world is compiled."""

    robot: str
    graph: SceneGraph | None
    """None: the robot alone, on an empty stage (what a client asks to learn what is offered)."""
    tasks: TaskConfig | None
    base: Pose
    joints: dict[str, float]
    objects: dict[str, _Placed] = field(default_factory=dict)
    """By prim path."""
    part_values: dict[str, list[float]] = field(default_factory=dict)
    """Articulated node prim path -> its joints' initial values, in the node's joint order."""
    cameras: dict[str, _Camera] = field(default_factory=dict)


@dataclass(frozen=True)
class JointReading:
    name: str
    position: float
    velocity: float


@dataclass(frozen=True)
class Observed:
    joints: tuple[JointReading, ...]
    poses: tuple[tuple[np.ndarray, np.ndarray], ...]
    gripper: tuple[np.ndarray, np.ndarray]
    images: tuple[tuple[_Camera, CameraImages], ...]


class _Running:
    """The compiled world of a recording session and its physics state."""

    def __init__(self, staged: _Staged, task_name: str, fps: int) -> None:
        graph, tasks = staged.graph, staged.tasks
        assert graph is not None and tasks is not None  # _stage() refuses a stage without them
        try:
            task = tasks.task(task_name)
        except Exception as exc:
            raise _invalid(f"no task {task_name!r} in the scene's task config") from exc
        added = {p.asset_id for p in staged.objects.values()}
        # The world holds the scene's fixed parts and the objects the client added, nothing else.
        nodes = tuple(
            n for n in graph.nodes if n.is_static or n.articulation or n.asset_id in added
        )
        kept = {n.asset_id for n in nodes}
        edges = tuple(e for e in graph.edges if e.source in kept and e.target in kept)
        world_graph = graph.model_copy(update={"nodes": nodes, "edges": edges})
        assignment = RobotAssignment(
            robot=staged.robot,  # type: ignore[arg-type]
            base_pose=staged.base,
            tasks=(task.task_id,),
        )
        cameras = tuple(sorted(staged.cameras))
        sizes = {(c.width, c.height) for c in staged.cameras.values()}
        if len(sizes) > 1:
            raise _invalid(f"cameras of different sizes {sorted(sizes)}: this server renders one")
        width, height = sizes.pop() if sizes else (64, 64)
        world = build_world(
            world_graph,
            assignment,
            task,
            WorldOptions(cameras, width, height, fps),
            DomainRandomization(seed=0),
        )
        self.world = world
        self.graph = world_graph
        model = world.model
        self._place_cameras(staged)
        for placed in staged.objects.values():
            if placed.rgb is not None:
                body = model.body(world.free_objects[placed.asset_id].body).id
                for g in np.flatnonzero(model.geom_bodyid == body):
                    model.geom_rgba[g, :3] = placed.rgb
        data = mujoco.MjData(model)
        mujoco.mj_resetDataKeyframe(model, data, 0)
        for placed in staged.objects.values():
            joint = model.joint(f"{world.free_objects[placed.asset_id].body}/free")
            adr = joint.qposadr[0]
            data.qpos[adr : adr + 3] = placed.position
            data.qpos[adr + 3 : adr + 7] = placed.quat
        for prim, values in staged.part_values.items():
            node = next(n for n in graph.nodes if n.usd_path == prim)
            assert node.articulation is not None
            for joint_spec, value in zip(node.articulation.joints, values, strict=False):
                part = world.parts[(node.asset_id, joint_spec.name)]
                joint = model.joint(part.mj_joint)
                lower, upper = (float(v) for v in model.jnt_range[joint.id])
                data.qpos[joint.qposadr[0]] = min(max(value, lower), upper)
        self.joint_names = [*world.robot.arm_joints, *world.robot.finger_joints]
        for name, value in staged.joints.items():
            if name not in self.joint_names:
                raise _invalid(f"robot {staged.robot} has no joint {name!r}")
            data.qpos[model.joint(name).qposadr[0]] = value
        for name, act in zip(world.robot.arm_joints, world.robot.arm_actuators, strict=True):
            data.ctrl[model.actuator(act).id] = data.qpos[model.joint(name).qposadr[0]]
        mujoco.mj_forward(model, data)
        self.data = data
        self.frames = 0
        self.rig = CameraRig(world, width, height) if cameras else None
        self.cameras = staged.cameras
        self.prims = {p: placed.asset_id for p, placed in staged.objects.items()}

    def _place_cameras(self, staged: _Staged) -> None:
        """Where the client asked: world cameras in the world, the wrist camera on the hand."""
        model = self.world.model
        for camera in staged.cameras.values():
            cam = model.camera(self.world.camera_name(camera.name)).id
            model.cam_pos[cam] = camera.position
            model.cam_quat[cam] = camera.quat
            model.cam_fovy[cam] = camera.fovy_deg

    def advance(self) -> None:
        world, data = self.world, self.data
        for _ in range(world.substeps):
            mujoco.mj_step(world.model, data)
        self.frames += 1

    def close(self) -> None:
        if self.rig is not None:
            self.rig.close()
            self.rig = None


class SimulatedScene:
    """One Genie Sim session at a time, on MuJoCo.

    Every call runs on the scene's one thread (`run`): calls never interleave inside the physics,
    and the OpenGL context the cameras render with stays on the thread that made it.
    """

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="genie-sim-scene")
        self._staged: _Staged | None = None
        self._running: _Running | None = None
        self._observed_once = False

    def run(self, work: Callable[[], T]) -> T:
        """Run `work` on the scene's thread and return what it returns (or raise what it raises)."""
        return self._thread.submit(work).result()

    def close(self) -> None:
        self.run(self.reset)
        self._thread.shutdown(wait=True)

    # -- set-up -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to an empty stage: no robot, objects, cameras or world."""
        if self._running is not None:
            self._running.close()
        self._staged, self._running, self._observed_once = None, None, False

    def init_robot(
        self,
        config_file: str,
        scene_path: str,
        position: np.ndarray,
        quat: np.ndarray,
        joints: dict[str, float],
    ) -> None:
        robot = wire.robot_from_config_file(config_file)
        if robot is None or robot not in SUPPORTED_ROBOTS:
            raise SceneError(
                "NOT_FOUND",
                f"no robot configuration {config_file!r} on this server; it has "
                + ", ".join(wire.robot_config_file(r) for r in SUPPORTED_ROBOTS),
            )
        graph: SceneGraph | None = None
        tasks: TaskConfig | None = None
        if scene_path:
            path = Path(scene_path)
            if path.suffix != ".json" or not path.is_file():
                raise _invalid(
                    f"scene {scene_path!r}: this server loads a pipeline scene_graph.json, not USD"
                )
            try:
                graph = read_scene_graph(path.read_bytes())
                tasks = read_task_config((path.parent / TASK_CONFIG).read_bytes())
            except (OSError, ValueError) as exc:
                raise _invalid(f"scene {scene_path!r} cannot be read: {exc}") from exc
        self.reset()
        base = Pose(
            position=(float(position[0]), float(position[1]), float(position[2])),
            orientation=(float(quat[0]), float(quat[1]), float(quat[2]), float(quat[3])),
        )
        self._staged = _Staged(robot, graph, tasks, base, dict(joints))

    def _stage(self) -> _Staged:
        if self._staged is None:
            raise _not_ready("no robot: call init_robot first")
        if self._running is not None:
            raise _not_ready("the scene is recording: reset before setting it up again")
        if self._staged.graph is None:
            raise _not_ready("no scene: init_robot was given no scene_usd_path")
        return self._staged

    def add_object(
        self,
        prim: str,
        label: str,
        position: np.ndarray,
        quat: np.ndarray,
        rgb: tuple[float, float, float] | None,
    ) -> None:
        staged = self._stage()
        assert staged.graph is not None
        node = next((n for n in staged.graph.nodes if n.asset_id == label), None)
        if node is None or node.is_static or node.articulation is not None:
            raise _invalid(f"{label!r} is not a movable object of scene {staged.graph.scene_id}")
        if not prim.startswith("/"):
            raise _invalid(f"prim path {prim!r} is not absolute")
        staged.objects[prim] = _Placed(label, position, quat, rgb)

    def set_object_pose(
        self,
        poses: list[tuple[str, np.ndarray, np.ndarray]],
        robot_joints: list[float],
        part_values: dict[str, list[float]],
    ) -> None:
        if self._running is not None:
            self._teleport(poses, robot_joints, part_values)
            return
        staged = self._stage()
        for prim, position, quat in poses:
            if prim not in staged.objects:
                raise SceneError("NOT_FOUND", f"no object at {prim!r}")
            staged.objects[prim].position, staged.objects[prim].quat = position, quat
        assert staged.graph is not None
        for prim, values in part_values.items():
            node = next((n for n in staged.graph.nodes if n.usd_path == prim), None)
            if node is None or node.articulation is None:
                raise SceneError("NOT_FOUND", f"no articulated object at {prim!r}")
            staged.part_values[prim] = values
        if robot_joints:
            raise _invalid("robot joints are set by init_robot or set_joint_position here")

    def _teleport(
        self,
        poses: list[tuple[str, np.ndarray, np.ndarray]],
        robot_joints: list[float],
        part_values: dict[str, list[float]],
    ) -> None:
        running = self._running
        assert running is not None
        world, data = running.world, running.data
        for prim, position, quat in poses:
            asset = running.prims.get(prim)
            if asset is None:
                raise SceneError("NOT_FOUND", f"no object at {prim!r}")
            adr = world.model.joint(f"{world.free_objects[asset].body}/free").qposadr[0]
            data.qpos[adr : adr + 3] = position
            data.qpos[adr + 3 : adr + 7] = quat
        if robot_joints or part_values:
            raise _invalid("during a recording only object poses can be set")
        mujoco.mj_forward(world.model, data)

    def add_camera(
        self,
        prim: str,
        position: np.ndarray,
        quat: np.ndarray,
        focal_length: float,
        vertical_aperture: float,
        width: int,
        height: int,
        is_local: bool,
    ) -> None:
        staged = self._stage()
        name = wire.camera_from_prim(prim)
        if name not in SUPPORTED_CAMERAS:
            raise _invalid(f"camera {prim!r}: this server has {', '.join(SUPPORTED_CAMERAS)}")
        if is_local != (name == wire.WRIST_CAMERA):
            raise _invalid(f"camera {name!r} is {'' if is_local else 'not '}on the hand here")
        if not (0 < width <= 4096 and 0 < height <= 4096) or width % 2 or height % 2:
            raise _invalid(f"camera size {width}x{height}: even sides of 2..4096 pixels")
        if focal_length <= 0 or vertical_aperture <= 0:
            raise _invalid("camera focal length and aperture must be positive")
        fovy = wire.fovy_from_focal(focal_length, vertical_aperture)
        staged.cameras[name] = _Camera(name, position, quat, fovy, width, height, is_local)

    # -- recording ----------------------------------------------------------------------------

    def start_recording(self, fps: int, task_name: str) -> None:
        staged = self._stage()
        if not 1 <= fps <= 240:
            raise _invalid(f"fps {fps}: 1..240")
        self._running = _Running(staged, task_name, fps)
        self._observed_once = False

    def stop_recording(self) -> None:
        if self._running is None:
            raise _not_ready("not recording")
        self._running.close()
        self._running = None

    def _world(self) -> _Running:
        if self._running is None:
            raise _not_ready("not recording: start a recording before observing or commanding")
        return self._running

    def observe(
        self, joints: bool, prims: list[str], gripper: bool, cameras: list[str], images: bool
    ) -> Observed:
        running = self._world()
        if self._observed_once:
            running.advance()
        self._observed_once = True
        world, data, model = running.world, running.data, running.world.model
        readings = self._readings(running) if joints else ()
        poses = []
        for prim in prims:
            asset = running.prims.get(prim)
            if asset is None:
                raise SceneError("NOT_FOUND", f"no object at {prim!r}")
            body = model.body(world.free_objects[asset].body).id
            poses.append((data.xpos[body].copy(), data.xquat[body].copy()))
        ee = self._hand(running) if gripper else (np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]))
        shots = []
        for prim in cameras:
            name = wire.camera_from_prim(prim)
            camera = running.cameras.get(name)
            if camera is None or running.rig is None:
                raise SceneError("NOT_FOUND", f"no camera at {prim!r}")
            if images:
                shots.append((camera, running.rig.capture(data, name)))
        return Observed(readings, tuple(poses), ee, tuple(shots))

    @staticmethod
    def _readings(running: _Running) -> tuple[JointReading, ...]:
        data, model = running.data, running.world.model
        return tuple(
            JointReading(
                name,
                float(data.qpos[model.joint(name).qposadr[0]]),
                float(data.qvel[model.joint(name).dofadr[0]]),
            )
            for name in running.joint_names
        )

    @staticmethod
    def _hand(running: _Running) -> tuple[np.ndarray, np.ndarray]:
        model, data = running.world.model, running.data
        site = model.site(running.world.robot.ee_site).id
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, data.site_xmat[site])
        return data.site_xpos[site].copy(), quat

    def joint_readings(self) -> tuple[JointReading, ...]:
        """The joints now, without advancing the clock (get_joint_position)."""
        return self._readings(self._world())

    def hand_pose(self) -> tuple[np.ndarray, np.ndarray]:
        return self._hand(self._world())

    def labels(self) -> dict[int, str]:
        """Segmentation label ids and their names (asset ids, "robot", "floor")."""
        return dict(self._world().world.entities)

    def set_joints(self, targets: dict[str, float], drive: bool) -> None:
        """Arm joint targets for the physics to follow (`drive`), or a posture set at once."""
        running = self._world()
        world, data, model = running.world, running.data, running.world.model
        arm = dict(zip(world.robot.arm_joints, world.robot.arm_actuators, strict=True))
        for name, value in targets.items():
            if name not in arm:
                raise _invalid(f"{name!r} is not an arm joint of {world.robot.name}")
            if not np.isfinite(value):
                raise _invalid(f"joint {name!r} target is not finite")
            data.ctrl[model.actuator(arm[name]).id] = value
            if not drive:
                data.qpos[model.joint(name).qposadr[0]] = value
                data.qvel[model.joint(name).dofadr[0]] = 0.0
        if not drive:
            mujoco.mj_forward(model, data)

    def set_gripper(self, command: str) -> None:
        running = self._world()
        robot = running.world.robot
        if command == wire.GRIPPER_OPEN:
            value = robot.gripper_open_ctrl
        elif command == wire.GRIPPER_CLOSE:
            value = robot.gripper_closed_ctrl
        else:
            raise _invalid(f"gripper command {command!r}: {wire.GRIPPER_OPEN!r} or 'close'")
        running.data.ctrl[running.world.model.actuator(robot.gripper_actuator).id] = value

    def object_pose(self, prim: str) -> tuple[np.ndarray, np.ndarray]:
        running = self._world()
        asset = running.prims.get(prim)
        if asset is None:
            raise SceneError("NOT_FOUND", f"no object at {prim!r}")
        body = running.world.model.body(running.world.free_objects[asset].body).id
        return running.data.xpos[body].copy(), running.data.xquat[body].copy()

    def part_joint(self, prim: str, part: str) -> tuple[str, float, float]:
        running = self._world()
        node = next((n for n in running.graph.nodes if n.usd_path == prim), None)
        key = (node.asset_id, part) if node is not None else None
        if key is None or key not in running.world.parts:
            raise SceneError("NOT_FOUND", f"no part {part!r} of an articulated object at {prim!r}")
        joint = running.world.model.joint(running.world.parts[key].mj_joint)
        data = running.data
        return part, float(data.qpos[joint.qposadr[0]]), float(data.qvel[joint.dofadr[0]])

    @property
    def world(self) -> World | None:
        return self._running.world if self._running is not None else None
