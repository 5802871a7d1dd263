"""Our aimdk.protocol files are wire-compatible with Genie Sim's: same names, numbers and types.

Both trees are compiled with protoc (grpcio-tools) into descriptor sets; every message, field,
enum, service and method we declare must exist in Genie Sim's reference files with the same
full name, field number, type, label and message type, and the same request and response.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parents[2]
OURS = ROOT / "proto"
REFERENCE = ROOT.parent / "shared" / "reference" / "genie-sim"

FieldKey = tuple[int, int, int, str, int]


def _compile(root: Path, tmp_path: Path, name: str) -> descriptor_pb2.FileDescriptorSet:
    import grpc_tools
    from grpc_tools import protoc

    sources = sorted(p.relative_to(root).as_posix() for p in (root / "aimdk").rglob("*.proto"))
    out = tmp_path / f"{name}.pb"
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"--proto_path={well_known}",
        f"--proto_path={root}",
        "--include_imports",
        f"--descriptor_set_out={out}",
        *sources,
    ]
    assert protoc.main(args) == 0, f"protoc failed on {root}"
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _index(
    files: descriptor_pb2.FileDescriptorSet,
) -> tuple[
    dict[str, dict[str, FieldKey]],
    dict[str, dict[str, int]],
    dict[str, dict[str, tuple[str, str, bool, bool]]],
]:
    messages: dict[str, dict[str, FieldKey]] = {}
    enums: dict[str, dict[str, int]] = {}
    services: dict[str, dict[str, tuple[str, str, bool, bool]]] = {}

    def walk(prefix: str, message: descriptor_pb2.DescriptorProto) -> None:
        name = f"{prefix}.{message.name}"
        messages[name] = {
            f.name: (f.number, f.type, f.label, f.type_name, int(f.proto3_optional))
            for f in message.field
        }
        for nested in message.nested_type:
            walk(name, nested)
        for enum in message.enum_type:
            enums[f"{name}.{enum.name}"] = {v.name: v.number for v in enum.value}

    for file in files.file:
        prefix = f".{file.package}"
        for message in file.message_type:
            walk(prefix, message)
        for enum in file.enum_type:
            enums[f"{prefix}.{enum.name}"] = {v.name: v.number for v in enum.value}
        for service in file.service:
            services[f"{prefix}.{service.name}"] = {
                m.name: (m.input_type, m.output_type, m.client_streaming, m.server_streaming)
                for m in service.method
            }
    return messages, enums, services


@pytest.fixture(scope="module")
def compiled(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[descriptor_pb2.FileDescriptorSet, descriptor_pb2.FileDescriptorSet]:
    if not (REFERENCE / "aimdk").is_dir():
        pytest.fail(f"Genie Sim's reference protocol is missing: {REFERENCE}")
    tmp = tmp_path_factory.mktemp("descriptors")
    return _compile(OURS, tmp, "ours"), _compile(REFERENCE, tmp, "reference")


def _mismatches(
    ours_set: descriptor_pb2.FileDescriptorSet, reference_set: descriptor_pb2.FileDescriptorSet
) -> list[str]:
    """Every way ours differs from Genie Sim's, for what ours declares."""
    ours, reference = _index(ours_set), _index(reference_set)
    found: list[str] = []
    for name, fields in ours[0].items():
        if name not in reference[0]:
            found.append(f"message {name} is not Genie Sim's")
            continue
        for field, key in fields.items():
            theirs = reference[0][name].get(field)
            if theirs != key:
                found.append(f"{name}.{field}: ours {key}, Genie Sim's {theirs}")
    for name, values in ours[1].items():
        if reference[1].get(name) != values:
            found.append(f"enum {name} differs")
    for service, methods in ours[2].items():
        for method, signature in methods.items():
            theirs_m = reference[2].get(service, {}).get(method)
            if theirs_m != signature:
                found.append(f"{service}/{method}: ours {signature}, Genie Sim's {theirs_m}")
    return found


def test_everything_we_declare_matches_genie_sim_field_by_field(
    compiled: tuple[descriptor_pb2.FileDescriptorSet, descriptor_pb2.FileDescriptorSet],
) -> None:
    ours, reference = compiled
    messages, _, services = _index(ours)
    assert len(messages) >= 40, "proto/aimdk compiled to too few messages"
    assert set(services) == {
        ".aimdk.protocol.SimObservationService",
        ".aimdk.protocol.SimObjectService",
        ".aimdk.protocol.SimGripperService",
        ".aimdk.protocol.JointControlService",
    }
    assert _mismatches(ours, reference) == []


def test_a_renumbered_field_or_a_renamed_method_is_caught(
    compiled: tuple[descriptor_pb2.FileDescriptorSet, descriptor_pb2.FileDescriptorSet],
) -> None:
    """The comparison can fail: a copy of ours with one field renumbered and one method renamed."""
    ours, reference = compiled
    broken = descriptor_pb2.FileDescriptorSet()
    broken.CopyFrom(ours)
    target = next(f for f in broken.file if f.name.endswith("sim_observation_service.proto"))
    message = next(m for m in target.message_type if m.name == "GetObservationReq")
    next(f for f in message.field if f.name == "fps").number = 12
    next(m for m in target.service[0].method if m.name == "reset").name = "Reset"
    found = _mismatches(broken, reference)
    assert any("GetObservationReq.fps" in m for m in found)
    assert any("/Reset" in m for m in found)


def test_the_generated_python_carries_genie_sims_names() -> None:
    from bp_genie_sim_api import sim_observation_service_pb2, sim_observation_service_pb2_grpc

    service = sim_observation_service_pb2.DESCRIPTOR.services_by_name["SimObservationService"]
    assert service.full_name == "aimdk.protocol.SimObservationService"
    assert (
        sim_observation_service_pb2.DESCRIPTOR.name
        == "aimdk/protocol/sim/sim_observation_service.proto"
    )
    assert hasattr(sim_observation_service_pb2_grpc, "SimObservationServiceStub")
