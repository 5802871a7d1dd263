"""A Genie Sim server over its own gRPC protocol: the calls the backend makes, and their errors.

Genie Sim listens without TLS, so the channel is plaintext, and only to the worker's loopback
outside `local` (`check_address`). Every failure becomes a typed error: a server that does not
answer is `GenieSimUnavailable` (transient: it may be starting, or restarting after a crash),
one that lacks a robot is `RobotNotOffered`, and anything else it answers that this client
cannot use is `UnexpectedAnswer` (permanent: retrying the same call cannot change it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc
import numpy as np
from bp_common.errors import PermanentError, TransientError, UnsafeConfiguration
from bp_genie_sim_api import (
    MAX_MESSAGE_BYTES,
    joint_channel_pb2,
    joint_channel_pb2_grpc,
    joint_pb2,
    sim_gripper_service_pb2,
    sim_gripper_service_pb2_grpc,
    sim_object_service_pb2,
    sim_object_service_pb2_grpc,
    sim_observation_service_pb2,
    sim_observation_service_pb2_grpc,
)

from bp_collector.genie_sim import wire

T = TypeVar("T")
obs_pb = sim_observation_service_pb2

# Isaac Sim loads a robot or a scene in tens of seconds; a frame takes well under a second.
SETUP_TIMEOUT_S = 300.0
FRAME_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10.0

_UNAVAILABLE = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
)


class GenieSimUnavailable(TransientError):
    """No Genie Sim server answers at the address, or it went away during a call."""


class UnexpectedAnswer(PermanentError):
    """The server answered something this client cannot use (an error, or a malformed reply)."""


class RobotNotOffered(PermanentError):
    """The server has no such robot configuration."""


def is_loopback(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_address(address: str, env: str) -> str:
    """`address` if plaintext to it is allowed: always on loopback, elsewhere only in `local`."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UnsafeConfiguration(env, [f"BP_GENIE_SIM_ADDRESS {address!r} is not host:port"])
    if not is_loopback(address) and env != "local":
        raise UnsafeConfiguration(
            env,
            [
                f"BP_GENIE_SIM_ADDRESS={address}: Genie Sim speaks plaintext, so outside"
                " PIPELINE_ENV=local the collector talks to it only on the worker's loopback"
            ],
        )
    return address


@dataclass(frozen=True)
class JointReading:
    position: float
    velocity: float


@dataclass(frozen=True)
class CameraShot:
    rgb: np.ndarray
    """height x width x 3, uint8."""
    depth_m: np.ndarray | None
    """height x width, float32 metres; 0 where nothing was seen."""
    labels: np.ndarray | None
    """height x width, uint32 label ids, named by `label_names`."""
    label_names: dict[int, str]


@dataclass(frozen=True)
class Observation:
    joints: dict[str, JointReading]
    poses: list[tuple[np.ndarray, np.ndarray]]
    """Positions and (w, x, y, z) quaternions, in the order the prims were asked for."""
    hand: tuple[np.ndarray, np.ndarray] | None
    cameras: list[CameraShot]


class GenieSimClient:
    """The calls Genie Sim's own data-collection client makes, typed, over one channel."""

    def __init__(self, address: str, *, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.address = address
        self.channel = grpc.insecure_channel(
            address,
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ],
        )
        try:
            grpc.channel_ready_future(self.channel).result(timeout=connect_timeout_s)
        except grpc.FutureTimeoutError as exc:
            self.channel.close()
            raise GenieSimUnavailable(
                f"no Genie Sim server answers at {address} (waited {connect_timeout_s:.0f}s)",
                address=address,
            ) from exc
        self.observation = sim_observation_service_pb2_grpc.SimObservationServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.objects = sim_object_service_pb2_grpc.SimObjectServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.gripper = sim_gripper_service_pb2_grpc.SimGripperServiceStub(self.channel)  # type: ignore[no-untyped-call]
        self.joints = joint_channel_pb2_grpc.JointControlServiceStub(self.channel)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.channel.close()

    def _call(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
            detail = exc.details() if isinstance(exc, grpc.Call) else str(exc)
            if code in _UNAVAILABLE:
                raise GenieSimUnavailable(
                    f"Genie Sim at {self.address} stopped answering during {what}: {detail}",
                    address=self.address,
                    status=code.name,
                ) from exc
            raise UnexpectedAnswer(
                f"Genie Sim at {self.address} refused {what}: {code.name}: {detail}",
                address=self.address,
                status=code.name,
            ) from exc

    # -- set-up -------------------------------------------------------------------------------

    def reset(self) -> None:
        self._call(
            "reset",
            lambda: self.observation.reset(obs_pb.ResetReq(reset=True), timeout=SETUP_TIMEOUT_S),
        )

    def init_robot(
        self,
        robot: str,
        scene_path: str,
        position: wire.Vector,
        quaternion: wire.Vector,
        joints: dict[str, float],
    ) -> None:
        request = obs_pb.InitRobotReq(
            robot_cfg_file=wire.robot_config_file(robot),
            scene_usd_path=scene_path,
            stand_type="cylinder",
            stand_size_x=0.1,
            stand_size_y=0.1,
        )
        wire.set_pose(request.robot_pose, position, quaternion)
        for name, value in joints.items():
            request.joint_cmd.append(joint_pb2.JointCommand(name=name, position=value))
        try:
            self._call(
                "init_robot",
                lambda: self.observation.init_robot(request, timeout=SETUP_TIMEOUT_S),
            )
        except UnexpectedAnswer as exc:
            if exc.context.get("status") in ("NOT_FOUND", "UNKNOWN", "INVALID_ARGUMENT"):
                raise RobotNotOffered(
                    f"the Genie Sim server at {self.address} has no robot {robot!r}"
                    f" (robot_cfg_file {request.robot_cfg_file}): {exc.message}",
                    robot=robot,
                    address=self.address,
                ) from exc
            raise

    def add_object(
        self,
        prim: str,
        label: str,
        scene_path: str,
        position: wire.Vector,
        quaternion: wire.Vector,
        rgb: Sequence[float],
        mass: float,
        friction: float,
    ) -> None:
        request = sim_object_service_pb2.AddObjectReq(
            usd_path=scene_path,
            prim_path=prim,
            label_name=label,
            object_mass=mass,
            static_friction=friction,
            dynamic_friction=friction,
            add_rigid_body=True,
            model_type="convexDecomposition",
        )
        wire.set_pose(request.object_pose, position, quaternion)
        request.object_scale.x = request.object_scale.y = request.object_scale.z = 1.0
        request.object_color.r, request.object_color.g, request.object_color.b = rgb
        answer = self._call(
            "add_object", lambda: self.objects.add_object(request, timeout=SETUP_TIMEOUT_S)
        )
        if answer.label_name != label:
            raise UnexpectedAnswer(
                f"add_object of {label!r} answered for {answer.label_name!r}", address=self.address
            )

    def set_object_pose(
        self,
        poses: dict[str, tuple[wire.Vector, wire.Vector]],
        part_values: dict[str, list[float]],
    ) -> None:
        request = obs_pb.SetObjectPoseReq()
        for prim, (position, quaternion) in poses.items():
            wire.set_pose(request.object_pose.add(prim_path=prim).pose, position, quaternion)
        for prim, values in part_values.items():
            joint = request.object_joint.add(prim_path=prim)
            for value in values:
                joint.joint_cmd.append(joint_pb2.JointCommand(position=value))
        self._call(
            "set_object_pose",
            lambda: self.observation.set_object_pose(request, timeout=SETUP_TIMEOUT_S),
        )

    def add_camera(
        self,
        camera: str,
        position: wire.Vector,
        quaternion: wire.Vector,
        fovy_deg: float,
        width: int,
        height: int,
        on_hand: bool,
    ) -> None:
        focal, horizontal, vertical = wire.focal_geometry(fovy_deg, width, height)
        request = obs_pb.AddCameraReq(
            camera_prim=wire.camera_prim(camera),
            focus_length=focal,
            horizontal_aperture=horizontal,
            vertical_aperture=vertical,
            width=width,
            height=height,
            is_local=on_hand,
        )
        wire.set_pose(request.camera_pose, position, quaternion)
        self._call(
            "add_camera", lambda: self.observation.add_camera(request, timeout=SETUP_TIMEOUT_S)
        )

    # -- recording ----------------------------------------------------------------------------

    def start_recording(self, fps: int, task_name: str, cameras: Sequence[str]) -> None:
        request = obs_pb.GetObservationReq(startRecording=True, fps=fps, task_name=task_name)
        if cameras:
            request.isCam = True
            request.CameraReq.render_depth = True
            request.CameraReq.render_semantic = True
            request.CameraReq.camera_prim_list.extend(wire.camera_prim(c) for c in cameras)
        request.isJoint = True
        request.isGripper = True
        self._call(
            "start recording",
            lambda: self.observation.get_observation(request, timeout=SETUP_TIMEOUT_S),
        )

    def stop_recording(self) -> None:
        request = obs_pb.GetObservationReq(stopRecording=True)
        self._call(
            "stop recording",
            lambda: self.observation.get_observation(request, timeout=SETUP_TIMEOUT_S),
        )

    def observe(
        self,
        prims: Sequence[str],
        cameras: Sequence[str] = (),
        size: tuple[int, int] | None = None,
        hand: bool = True,
    ) -> Observation:
        """Joints, object poses (in `prims` order), the right hand and camera images."""
        request = obs_pb.GetObservationReq(
            isJoint=True, isPose=bool(prims), isGripper=hand, isCam=bool(cameras)
        )
        request.objectPrims.extend(prims)
        if hand:
            request.gripperReq.right = True
        if cameras:
            request.CameraReq.render_depth = True
            request.CameraReq.render_semantic = True
            request.CameraReq.camera_prim_list.extend(wire.camera_prim(c) for c in cameras)
        answer = self._call(
            "get_observation",
            lambda: self.observation.get_observation(request, timeout=FRAME_TIMEOUT_S),
        )
        return self._read_observation(answer, len(prims), len(cameras), size, hand)

    def _read_observation(
        self,
        answer: obs_pb.GetObservationRsp,
        n_prims: int,
        n_cameras: int,
        size: tuple[int, int] | None,
        hand: bool,
    ) -> Observation:
        try:
            joints = {
                s.name: JointReading(float(s.position), float(s.velocity))
                for s in [*answer.joint.left_arm, *answer.joint.right_arm, *answer.joint.body_arm]
            }
            if len(answer.pose) != n_prims:
                raise ValueError(f"{len(answer.pose)} object poses for {n_prims} prims")
            poses = [wire.read_pose(p.object_pose) for p in answer.pose]
            grip = wire.read_pose(answer.gripper.right_gripper) if hand else None
            if len(answer.camera) != n_cameras:
                raise ValueError(f"{len(answer.camera)} camera images for {n_cameras} cameras")
            shots = [_read_shot(shot, size) for shot in answer.camera]
        except ValueError as exc:
            raise UnexpectedAnswer(
                f"Genie Sim at {self.address} sent an observation this client cannot read: {exc}",
                address=self.address,
            ) from exc
        return Observation(joints, poses, grip, shots)

    def part_joint(self, prim: str, part: str) -> float:
        request = sim_object_service_pb2.GetPartDofJointReq(prim_path=prim, part_name=part)
        answer = self._call(
            "get_part_dof_joint",
            lambda: self.objects.get_part_dof_joint(request, timeout=FRAME_TIMEOUT_S),
        )
        if not np.isfinite(answer.joint_position):
            raise UnexpectedAnswer(f"joint {part!r} of {prim} is not finite")
        return float(answer.joint_position)

    def set_joints(self, targets: dict[str, float]) -> None:
        """Joint position targets for the robot to follow through the physics."""
        request = joint_channel_pb2.SetJointReq(is_trajectory=True)
        for name, value in targets.items():
            request.commands.append(joint_pb2.JointCommand(name=name, position=float(value)))
        self._call(
            "set_joint_position",
            lambda: self.joints.set_joint_position(request, timeout=FRAME_TIMEOUT_S),
        )

    def set_gripper(self, command: str) -> None:
        request = sim_gripper_service_pb2.SetGripperStateReq(gripper_command=command, is_right=True)
        self._call(
            "set_gripper_state",
            lambda: self.gripper.set_gripper_state(request, timeout=FRAME_TIMEOUT_S),
        )

    def task_status(self, success: bool) -> None:
        request = obs_pb.TaskStatusReq(isSuccess=success)
        self._call(
            "task_status", lambda: self.observation.task_status(request, timeout=FRAME_TIMEOUT_S)
        )


def _read_shot(shot: obs_pb.CameraRsp, size: tuple[int, int] | None) -> CameraShot:
    width, height = shot.camera_info.width, shot.camera_info.height
    if size is not None and (width, height) != size:
        raise ValueError(f"a {width}x{height} image where {size[0]}x{size[1]} was set up")
    if width <= 0 or height <= 0:
        raise ValueError("camera image without a size")
    pixels = width * height
    if shot.rgb_camera.format != wire.RGB_FORMAT or len(shot.rgb_camera.data) != pixels * 3:
        raise ValueError(
            f"rgb image of format {shot.rgb_camera.format!r} and {len(shot.rgb_camera.data)}"
            f" bytes for {width}x{height}"
        )
    rgb = np.frombuffer(shot.rgb_camera.data, np.uint8).reshape(height, width, 3)
    depth = None
    if shot.depth_camera.data:
        if len(shot.depth_camera.data) != pixels * 4:
            raise ValueError(f"depth image of {len(shot.depth_camera.data)} bytes")
        depth = np.frombuffer(shot.depth_camera.data, np.float32).reshape(height, width)
    labels = None
    if shot.semantic_mask.data:
        if len(shot.semantic_mask.data) != pixels * 4:
            raise ValueError(f"semantic mask of {len(shot.semantic_mask.data)} bytes")
        labels = np.frombuffer(shot.semantic_mask.data, np.uint32).reshape(height, width)
    names = {int(d.label_id): d.label_name for d in shot.label_dict}
    return CameraShot(rgb, depth, labels, names)
