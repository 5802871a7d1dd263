"""The gRPC server of `bp genie-sim serve`: the four services on one port, one scene behind them."""

from __future__ import annotations

import ipaddress
from concurrent.futures import ThreadPoolExecutor

import grpc
from bp_common.errors import UnsafeConfiguration
from bp_genie_sim_api import (
    MAX_MESSAGE_BYTES,
    joint_channel_pb2_grpc,
    sim_gripper_service_pb2_grpc,
    sim_object_service_pb2_grpc,
    sim_observation_service_pb2_grpc,
)

from bp_collector.genie_sim.server.scene import SimulatedScene
from bp_collector.genie_sim.server.servicer import (
    GripperService,
    JointService,
    ObjectService,
    ObservationService,
)


def is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class GenieSimServer:
    """Genie Sim's aimdk.protocol services over a `SimulatedScene`, plaintext as Genie Sim is."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        env: str = "local",
        scene: SimulatedScene | None = None,
    ) -> None:
        if not is_loopback_host(host) and env != "local":
            raise UnsafeConfiguration(
                env,
                [
                    f"bp genie-sim serve on {host}: Genie Sim's protocol is plaintext, so outside"
                    " PIPELINE_ENV=local it listens on loopback only"
                ],
            )
        self.scene = scene or SimulatedScene()
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        # The scene serialises calls itself; a few threads let a second client be answered
        # (or refused) while another call runs.
        self.server = grpc.server(ThreadPoolExecutor(max_workers=4), options=options)
        sim_observation_service_pb2_grpc.add_SimObservationServiceServicer_to_server(  # type: ignore[no-untyped-call]
            ObservationService(self.scene), self.server
        )
        sim_object_service_pb2_grpc.add_SimObjectServiceServicer_to_server(  # type: ignore[no-untyped-call]
            ObjectService(self.scene), self.server
        )
        sim_gripper_service_pb2_grpc.add_SimGripperServiceServicer_to_server(  # type: ignore[no-untyped-call]
            GripperService(self.scene), self.server
        )
        joint_channel_pb2_grpc.add_JointControlServiceServicer_to_server(  # type: ignore[no-untyped-call]
            JointService(self.scene), self.server
        )
        bound = self.server.add_insecure_port(f"{host}:{port}")
        if bound == 0:
            raise OSError(f"cannot listen on {host}:{port}")
        self.host = host
        self.port = bound

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.server.start()

    def wait(self) -> None:
        self.server.wait_for_termination()

    def stop(self, grace_s: float = 1.0) -> None:
        self.server.stop(grace_s).wait()
        self.scene.close()
