"""Genie Sim's gRPC protocol for Python: the aimdk.protocol messages and stubs we use.

Generated from proto/aimdk/protocol when this package is built or installed; the names are
Genie Sim's own (services `SimObservationService`, `SimObjectService`, `SimGripperService`,
`JointControlService`), so a stub here talks to a real Genie Sim server.
"""

from __future__ import annotations

from bp_genie_sim_api.aimdk.protocol.common import joint_pb2, se3_pose_pb2
from bp_genie_sim_api.aimdk.protocol.hal.joint import joint_channel_pb2, joint_channel_pb2_grpc
from bp_genie_sim_api.aimdk.protocol.sim import (
    sim_gripper_service_pb2,
    sim_gripper_service_pb2_grpc,
    sim_object_service_pb2,
    sim_object_service_pb2_grpc,
    sim_observation_service_pb2,
    sim_observation_service_pb2_grpc,
)

# Genie Sim's server takes and sends messages up to this size (camera images), and so do we.
MAX_MESSAGE_BYTES = 16094304
DEFAULT_PORT = 50051
SERVICES = (
    "aimdk.protocol.SimObservationService",
    "aimdk.protocol.SimObjectService",
    "aimdk.protocol.SimGripperService",
    "aimdk.protocol.JointControlService",
)

__all__ = [
    "DEFAULT_PORT",
    "MAX_MESSAGE_BYTES",
    "SERVICES",
    "joint_channel_pb2",
    "joint_channel_pb2_grpc",
    "joint_pb2",
    "se3_pose_pb2",
    "sim_gripper_service_pb2",
    "sim_gripper_service_pb2_grpc",
    "sim_object_service_pb2",
    "sim_object_service_pb2_grpc",
    "sim_observation_service_pb2",
    "sim_observation_service_pb2_grpc",
]
