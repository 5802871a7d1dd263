"""The collector's gRPC contract for Python: generated messages and stubs, and the API version.

`collector_pb2` (messages) and `collector_pb2_grpc` (stub and servicer) are generated from
proto/blueprint/collector/v1/collector.proto when this package is built or installed.
"""

from __future__ import annotations

from bp_collector_api.blueprint.collector.v1 import collector_pb2, collector_pb2_grpc

# Semver of the contract: bump the major on any incompatible change to the .proto file, the
# minor when adding fields, methods or enum values. Clients refuse a server of another major.
API_VERSION = "1.1.0"
SERVICE_NAME = "blueprint.collector.v1.Collector"

__all__ = ["API_VERSION", "SERVICE_NAME", "api_major", "collector_pb2", "collector_pb2_grpc"]


def api_major(version: str) -> int:
    """The major number of a semver string; ValueError when it is not one."""
    head = version.strip().split(".", 1)[0]
    if not head.isdigit():
        raise ValueError(f"not a semantic version: {version!r}")
    return int(head)
