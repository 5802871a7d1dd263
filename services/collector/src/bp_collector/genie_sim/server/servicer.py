"""Genie Sim's four aimdk.protocol services, answered from the simulated scene.

Each call runs on the scene's one thread, so calls from several clients never interleave inside
the physics. A request the scene cannot carry out is answered with a gRPC status (NOT_FOUND for a
robot, object or camera it lacks, INVALID_ARGUMENT, FAILED_PRECONDITION out of order), never
with a half-filled message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import grpc
import numpy as np
from bp_genie_sim_api import (
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
from bp_collector.genie_sim.server.scene import SceneError, SimulatedScene

T = TypeVar("T")
obs_pb = sim_observation_service_pb2


def _call(scene: SimulatedScene, context: grpc.ServicerContext, work: Callable[[], T]) -> T:
    try:
        return scene.run(work)
    except SceneError as exc:
        context.abort(getattr(grpc.StatusCode, exc.code), exc.message)
    except ValueError as exc:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    raise AssertionError("unreachable: abort raises")


def _pose(message: object) -> tuple[np.ndarray, np.ndarray]:
    return wire.read_pose(message)  # type: ignore[arg-type]


class ObservationService(sim_observation_service_pb2_grpc.SimObservationServiceServicer):
    def __init__(self, scene: SimulatedScene) -> None:
        self.scene = scene

    def init_robot(
        self, request: obs_pb.InitRobotReq, context: grpc.ServicerContext
    ) -> obs_pb.InitRobotRsp:
        def work() -> obs_pb.InitRobotRsp:
            position, quat = _pose(request.robot_pose)
            joints = {c.name: c.position for c in request.joint_cmd if np.isfinite(c.position)}
            self.scene.init_robot(
                request.robot_cfg_file, request.scene_usd_path, position, quat, joints
            )
            return obs_pb.InitRobotRsp(msg="success")

        return _call(self.scene, context, work)

    def add_camera(
        self, request: obs_pb.AddCameraReq, context: grpc.ServicerContext
    ) -> obs_pb.AddCameraRsp:
        def work() -> obs_pb.AddCameraRsp:
            position, quat = _pose(request.camera_pose)
            self.scene.add_camera(
                request.camera_prim,
                position,
                quat,
                request.focus_length,
                request.vertical_aperture,
                request.width,
                request.height,
                request.is_local,
            )
            return obs_pb.AddCameraRsp(msg="success")

        return _call(self.scene, context, work)

    def set_object_pose(
        self, request: obs_pb.SetObjectPoseReq, context: grpc.ServicerContext
    ) -> obs_pb.SetObjectPoseRsp:
        def work() -> obs_pb.SetObjectPoseRsp:
            poses = [(p.prim_path, *_pose(p.pose)) for p in request.object_pose]
            parts = {j.prim_path: [c.position for c in j.joint_cmd] for j in request.object_joint}
            self.scene.set_object_pose(poses, [c.position for c in request.joint_cmd], parts)
            return obs_pb.SetObjectPoseRsp(msg="success")

        return _call(self.scene, context, work)

    def get_observation(
        self, request: obs_pb.GetObservationReq, context: grpc.ServicerContext
    ) -> obs_pb.GetObservationRsp:
        def work() -> obs_pb.GetObservationRsp:
            if request.startRecording:
                self.scene.start_recording(request.fps, request.task_name)
                return obs_pb.GetObservationRsp(recordingState=wire.RECORDING_STARTED)
            if request.stopRecording:
                self.scene.stop_recording()
                return obs_pb.GetObservationRsp(recordingState=wire.RECORDING_STOPPED)
            cameras = list(request.CameraReq.camera_prim_list) if request.isCam else []
            seen = self.scene.observe(
                request.isJoint,
                list(request.objectPrims) if request.isPose else [],
                request.isGripper,
                cameras,
                request.isCam,
            )
            response = obs_pb.GetObservationRsp()
            for reading in seen.joints:
                response.joint.left_arm.append(
                    joint_pb2.JointState(
                        name=reading.name, position=reading.position, velocity=reading.velocity
                    )
                )
            for position, quat in seen.poses:
                wire.set_pose(response.pose.add().object_pose, position, quat)
            if request.isGripper:
                # A single-armed robot's hand is its right hand (decision 0020).
                wire.set_pose(response.gripper.right_gripper, *seen.gripper)
            labels = self.scene.labels() if seen.images else {}
            for camera, images in seen.images:
                shot = response.camera.add()
                fy = camera.height / (2.0 * np.tan(np.radians(camera.fovy_deg) / 2.0))
                shot.camera_info.CopyFrom(
                    obs_pb.CamInfo(
                        width=camera.width,
                        height=camera.height,
                        ppx=camera.width / 2.0,
                        ppy=camera.height / 2.0,
                        fx=float(fy),
                        fy=float(fy),
                    )
                )
                shot.rgb_camera.format = wire.RGB_FORMAT
                shot.rgb_camera.data = np.ascontiguousarray(images.rgb, np.uint8).tobytes()
                shot.depth_camera.format = wire.DEPTH_FORMAT
                if request.CameraReq.render_depth:
                    metres = images.depth_mm.astype(np.float32) / np.float32(1000.0)
                    shot.depth_camera.data = metres.tobytes()
                if request.CameraReq.render_semantic:
                    shot.semantic_mask.name = wire.SEMANTIC_NAME
                    shot.semantic_mask.data = images.segmentation.astype(np.uint32).tobytes()
                    for label_id, name in sorted(labels.items()):
                        shot.label_dict.append(
                            obs_pb.SemanticDict(label_id=label_id, label_name=name)
                        )
            return response

        return _call(self.scene, context, work)

    def reset(self, request: obs_pb.ResetReq, context: grpc.ServicerContext) -> obs_pb.ResetRsp:
        def work() -> obs_pb.ResetRsp:
            self.scene.reset()
            return obs_pb.ResetRsp(msg="reset")

        return _call(self.scene, context, work)

    def task_status(
        self, request: obs_pb.TaskStatusReq, context: grpc.ServicerContext
    ) -> obs_pb.TaskStatusRsp:
        # The verdict is the client's (the pipeline's success rule); the server only hears it.
        return obs_pb.TaskStatusRsp(msg="success" if request.isSuccess else "failure")

    def exit(self, request: obs_pb.ExitReq, context: grpc.ServicerContext) -> obs_pb.ExitRsp:
        def work() -> obs_pb.ExitRsp:
            self.scene.reset()
            return obs_pb.ExitRsp(msg="exit")

        return _call(self.scene, context, work)


class ObjectService(sim_object_service_pb2_grpc.SimObjectServiceServicer):
    def __init__(self, scene: SimulatedScene) -> None:
        self.scene = scene

    def add_object(
        self, request: sim_object_service_pb2.AddObjectReq, context: grpc.ServicerContext
    ) -> sim_object_service_pb2.AddObjectRsp:
        def work() -> sim_object_service_pb2.AddObjectRsp:
            position, quat = _pose(request.object_pose)
            colour = request.object_color
            rgb = (colour.r, colour.g, colour.b) if request.HasField("object_color") else None
            self.scene.add_object(request.prim_path, request.label_name, position, quat, rgb)
            return sim_object_service_pb2.AddObjectRsp(
                prim_path=request.prim_path, label_name=request.label_name
            )

        return _call(self.scene, context, work)

    def get_object_pose(
        self, request: sim_object_service_pb2.GetObjectPoseReq, context: grpc.ServicerContext
    ) -> sim_object_service_pb2.GetObjectPoseRsp:
        def work() -> sim_object_service_pb2.GetObjectPoseRsp:
            response = sim_object_service_pb2.GetObjectPoseRsp(prim_path=request.prim_path)
            wire.set_pose(response.object_pose, *self.scene.object_pose(request.prim_path))
            return response

        return _call(self.scene, context, work)

    def get_part_dof_joint(
        self, request: sim_object_service_pb2.GetPartDofJointReq, context: grpc.ServicerContext
    ) -> sim_object_service_pb2.GetPartDofJointRsp:
        def work() -> sim_object_service_pb2.GetPartDofJointRsp:
            name, position, velocity = self.scene.part_joint(request.prim_path, request.part_name)
            return sim_object_service_pb2.GetPartDofJointRsp(
                joint_name=name, joint_position=position, joint_velocity=velocity
            )

        return _call(self.scene, context, work)


class GripperService(sim_gripper_service_pb2_grpc.SimGripperServiceServicer):
    def __init__(self, scene: SimulatedScene) -> None:
        self.scene = scene

    def set_gripper_state(
        self, request: sim_gripper_service_pb2.SetGripperStateReq, context: grpc.ServicerContext
    ) -> sim_gripper_service_pb2.SetGripperStateRsp:
        def work() -> sim_gripper_service_pb2.SetGripperStateRsp:
            if not request.is_right:
                raise SceneError("INVALID_ARGUMENT", "a single-armed robot has only a right hand")
            self.scene.set_gripper(request.gripper_command)
            return sim_gripper_service_pb2.SetGripperStateRsp(
                msg=f"right {request.gripper_command}"
            )

        return _call(self.scene, context, work)


class JointService(joint_channel_pb2_grpc.JointControlServiceServicer):
    def __init__(self, scene: SimulatedScene) -> None:
        self.scene = scene

    def get_joint_position(
        self, request: joint_channel_pb2.GetJointReq, context: grpc.ServicerContext
    ) -> joint_channel_pb2.GetJointRsp:
        def work() -> joint_channel_pb2.GetJointRsp:
            seen = self.scene.joint_readings()
            return joint_channel_pb2.GetJointRsp(
                states=[
                    joint_pb2.JointState(name=r.name, position=r.position, velocity=r.velocity)
                    for r in seen
                ]
            )

        return _call(self.scene, context, work)

    def set_joint_position(
        self, request: joint_channel_pb2.SetJointReq, context: grpc.ServicerContext
    ) -> joint_channel_pb2.SetJointRsp:
        def work() -> joint_channel_pb2.SetJointRsp:
            if any(not c.name for c in request.commands):
                raise SceneError("INVALID_ARGUMENT", "joint commands must name their joint")
            targets = {c.name: c.position for c in request.commands}
            self.scene.set_joints(targets, drive=request.is_trajectory)
            return joint_channel_pb2.SetJointRsp(errmsg="")

        return _call(self.scene, context, work)

    def get_ee_pose(
        self, request: joint_channel_pb2.GetEEPoseReq, context: grpc.ServicerContext
    ) -> joint_channel_pb2.GetEEPoseRsp:
        def work() -> joint_channel_pb2.GetEEPoseRsp:
            if not request.is_right:
                raise SceneError("INVALID_ARGUMENT", "a single-armed robot has only a right hand")
            position, quat = self.scene.hand_pose()
            response = joint_channel_pb2.GetEEPoseRsp(prim_path="/World/Robot/ee")
            wire.set_pose(response.ee_pose, position, quat)
            return response

        return _call(self.scene, context, work)
