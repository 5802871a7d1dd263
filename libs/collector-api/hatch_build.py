"""Build hook: generates the collector's protobuf and gRPC modules from the repository's proto/.

The generated modules live under src/bp_collector_api/blueprint/ (ignored by git). protoc sees
proto/ mounted as `bp_collector_api/`, so `blueprint/collector/v1/collector.proto` becomes the
module `bp_collector_api.blueprint.collector.v1.collector_pb2` and the generated imports resolve
inside this package instead of claiming a top-level `blueprint` package.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "bp_collector_api"


def _proto_root(project: Path) -> Path:
    """proto/ of the repository (a workspace build), or the copy packed into an sdist."""
    for candidate in (project / "proto", project.parent.parent / "proto"):
        if (candidate / "blueprint").is_dir():
            return candidate.resolve()
    raise RuntimeError(f"no proto/blueprint folder next to {project} or two levels up")


def generate(project: Path) -> list[Path]:
    """Run protoc on every .proto file; returns the generated files."""
    import grpc_tools
    from grpc_tools import protoc

    proto_root = _proto_root(project)
    src = project / "src"
    out = src / PACKAGE / "blueprint"
    if out.exists():
        shutil.rmtree(out)
    # Only the collector contract: proto/aimdk (Genie Sim's protocol) is libs/genie-sim-api's.
    sources = sorted((proto_root / "blueprint").rglob("*.proto"))
    if not sources:
        raise RuntimeError(f"no .proto files under {proto_root}")
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"--proto_path={well_known}",
        f"--proto_path={PACKAGE}={proto_root}",
        f"--python_out={src}",
        f"--pyi_out={src}",
        f"--grpc_python_out={src}",
        *(f"{PACKAGE}/{path.relative_to(proto_root).as_posix()}" for path in sources),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {proto_root}: {' '.join(args[1:])}")
    # Regular packages (not namespace packages), so type checkers and importers agree.
    for folder in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    return sorted(p for p in out.rglob("*") if p.is_file())


class ProtoBuildHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        project = Path(self.root)
        if self.target_name == "sdist":
            # An sdist carries the contract, so a wheel built from it can generate the code.
            build_data.setdefault("force_include", {})[str(_proto_root(project))] = "proto"
        generate(project)
