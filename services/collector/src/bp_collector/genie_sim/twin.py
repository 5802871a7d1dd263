"""The planning twin: the collector's own model of the episode, kept in step with Genie Sim.

The backend never sees Genie Sim's physics, only what it reports. To plan, it builds the same
MuJoCo world the MuJoCo backend would (same scene, robot, task and randomisation draw), takes
from it the set-up it sends (object poses and colours, the robot's joints, the cameras), and
before each frame's plan writes the reported state into it: joints, object poses, articulated
joints. The collector's scripted expert then plans on the twin exactly as it does on MuJoCo,
and contacts are read from the twin at the reported poses (Genie Sim's protocol reports none).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from bp_scene_contract import SceneGraph, TaskConfig, TaskSpec

from bp_collector.genie_sim import wire
from bp_collector.mujoco.contacts import ContactMonitor, ContactRecord
from bp_collector.mujoco.episode import set_initial_joint
from bp_collector.mujoco.expert import OPEN, ExpertError, ScriptedExpert
from bp_collector.mujoco.randomization import DomainRandomization
from bp_collector.mujoco.world import World, WorldOptions, build_world


@dataclass(frozen=True)
class CameraSetUp:
    name: str
    position: np.ndarray
    quaternion: np.ndarray
    """World pose, or the pose on the hand for the wrist camera (MuJoCo camera axes)."""
    fovy_deg: float
    on_hand: bool


@dataclass(frozen=True)
class ObjectSetUp:
    asset_id: str
    prim: str
    position: np.ndarray
    quaternion: np.ndarray
    rgb: tuple[float, float, float]
    mass: float
    friction: float


class PlanningTwin:
    """The episode's MuJoCo world on the client side: set-up to send, state to plan on."""

    def __init__(
        self,
        graph: SceneGraph,
        tasks: TaskConfig,
        task: TaskSpec,
        robot: str,
        options: WorldOptions,
        rand: DomainRandomization,
    ) -> None:
        self.graph = graph
        self.task = task
        self.world: World = build_world(graph, tasks.assignment(robot), task, options, rand)
        model = self.world.model
        self.data = mujoco.MjData(model)
        mujoco.mj_resetDataKeyframe(model, self.data, 0)
        set_initial_joint(self.world, task, self.data)
        mujoco.mj_forward(model, self.data)
        robot_handle = self.world.robot
        self.joint_names = [*robot_handle.arm_joints, *robot_handle.finger_joints]
        self._qadr = {n: model.joint(n).qposadr[0] for n in self.joint_names}
        self._dadr = {n: model.joint(n).dofadr[0] for n in self.joint_names}
        self.object_ids = sorted(self.world.free_objects)
        self.part_keys = sorted(self.world.parts)
        self.monitor = ContactMonitor(self.world, list(self.world.node_bodies.get(task.target, ())))
        self.expert: ScriptedExpert | None = None
        self.expert_error: str | None = None

    # -- what the backend sends ---------------------------------------------------------------

    def robot_joints(self) -> dict[str, float]:
        return {n: float(self.data.qpos[a]) for n, a in self._qadr.items()}

    def objects(self) -> list[ObjectSetUp]:
        model, data = self.world.model, self.data
        out = []
        for asset_id in self.object_ids:
            obj = self.world.free_objects[asset_id]
            adr = model.joint(f"{obj.body}/free").qposadr[0]
            body = model.body(obj.body).id
            geom = int(np.flatnonzero(model.geom_bodyid == body)[0])
            node = self.graph.node(asset_id)
            out.append(
                ObjectSetUp(
                    asset_id=asset_id,
                    prim=node.usd_path
                    if node.usd_path.startswith("/")
                    else wire.object_prim(asset_id),
                    position=data.qpos[adr : adr + 3].copy(),
                    quaternion=data.qpos[adr + 3 : adr + 7].copy(),
                    rgb=(
                        float(model.geom_rgba[geom, 0]),
                        float(model.geom_rgba[geom, 1]),
                        float(model.geom_rgba[geom, 2]),
                    ),
                    mass=float(model.body_subtreemass[body]),
                    friction=float(model.geom_friction[geom, 0]),
                )
            )
        return out

    def part_prim(self, asset_id: str) -> str:
        node = self.graph.node(asset_id)
        return node.usd_path if node.usd_path.startswith("/") else wire.object_prim(asset_id)

    def part_values(self) -> dict[str, list[float]]:
        """Each articulated node's joints' values at the start, in the node's joint order."""
        out: dict[str, list[float]] = {}
        model = self.world.model
        for node in self.graph.nodes:
            if node.articulation is None or not node.articulation.joints:
                continue
            values = []
            for joint in node.articulation.joints:
                part = self.world.parts[(node.asset_id, joint.name)]
                values.append(float(self.data.qpos[model.joint(part.mj_joint).qposadr[0]]))
            out[self.part_prim(node.asset_id)] = values
        return out

    def cameras(self) -> list[CameraSetUp]:
        model = self.world.model
        out = []
        for name in self.world.cameras:
            cam = model.camera(self.world.camera_name(name)).id
            out.append(
                CameraSetUp(
                    name=name,
                    position=model.cam_pos[cam].copy(),
                    quaternion=model.cam_quat[cam].copy(),
                    fovy_deg=float(model.cam_fovy[cam]),
                    on_hand=name == wire.WRIST_CAMERA,
                )
            )
        return out

    # -- planning -----------------------------------------------------------------------------

    def start_expert(self) -> None:
        try:
            self.expert = ScriptedExpert(self.world, self.task, self.data)
        except ExpertError as exc:
            self.expert, self.expert_error = None, str(exc)

    def sync(
        self,
        time_s: float,
        joints: dict[str, tuple[float, float]],
        poses: dict[str, tuple[np.ndarray, np.ndarray]],
        parts: dict[tuple[str, str], float],
    ) -> None:
        """Write a reported state into the twin and bring its kinematics and contacts up to it."""
        model, data = self.world.model, self.data
        data.time = time_s
        for name, (value, rate) in joints.items():
            data.qpos[self._qadr[name]] = value
            data.qvel[self._dadr[name]] = rate
        for asset_id, (position, quat) in poses.items():
            obj = self.world.free_objects[asset_id]
            adr = model.joint(f"{obj.body}/free").qposadr[0]
            data.qpos[adr : adr + 3] = position
            data.qpos[adr + 3 : adr + 7] = quat
        for key, value in parts.items():
            data.qpos[model.joint(self.world.parts[key].mj_joint).qposadr[0]] = value
        mujoco.mj_forward(model, data)

    def contacts(self) -> tuple[ContactRecord, int, float]:
        """Contacts at the synced state: all of them, and the robot collisions that began."""
        self.monitor.start_frame()
        self.monitor.after_step(self.data)
        self.monitor.end_frame()
        return (
            self.monitor.snapshot(self.data),
            self.monitor.frame_collisions,
            self.monitor.frame_peak,
        )

    def action(self) -> np.ndarray:
        """The expert's arm joint targets then gripper target for this frame."""
        if self.expert is not None:
            return self.expert.act(self.data)
        robot = self.world.robot
        arm = [self.data.ctrl[self.world.model.actuator(a).id] for a in robot.arm_actuators]
        return np.array([*arm, OPEN])

    def camera_poses(self) -> tuple[np.ndarray, np.ndarray]:
        data, model = self.data, self.world.model
        ids = [model.camera(self.world.camera_name(c)).id for c in self.world.cameras]
        positions = np.array([data.cam_xpos[c] for c in ids]).reshape(len(ids), 3)
        quats = np.zeros((len(ids), 4))
        for k, c in enumerate(ids):
            mujoco.mju_mat2Quat(quats[k], data.cam_xmat[c])
        return positions, quats
