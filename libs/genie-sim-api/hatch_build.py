"""Build hook: generates Genie Sim's protobuf and gRPC modules from the repository's proto/aimdk.

The .proto files import each other as `aimdk/protocol/...`, the paths Genie Sim itself uses, so
protoc runs on proto/ as it is and the descriptors carry Genie Sim's own file names. The
generated modules land in src/bp_genie_sim_api/aimdk/ (ignored by git); their imports of one
another are then qualified with this package, so that nothing claims a top-level `aimdk`.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "bp_genie_sim_api"
_IMPORT = re.compile(r"^(from|import) aimdk\.protocol", re.MULTILINE)


def _proto_root(project: Path) -> Path:
    """proto/ of the repository (a workspace build), or the copy packed into an sdist."""
    for candidate in (project / "proto", project.parent.parent / "proto"):
        if (candidate / "aimdk" / "protocol").is_dir():
            return candidate.resolve()
    raise RuntimeError(f"no proto/aimdk/protocol folder next to {project} or two levels up")


def generate(project: Path) -> list[Path]:
    """Run protoc on every .proto file under proto/aimdk; returns the generated files."""
    import grpc_tools
    from grpc_tools import protoc

    proto_root = _proto_root(project)
    src = project / "src" / PACKAGE
    out = src / "aimdk"
    if out.exists():
        shutil.rmtree(out)
    sources = sorted((proto_root / "aimdk").rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"--proto_path={well_known}",
        f"--proto_path={proto_root}",
        f"--python_out={src}",
        f"--pyi_out={src}",
        f"--grpc_python_out={src}",
        *(path.relative_to(proto_root).as_posix() for path in sources),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {proto_root}: {' '.join(args[1:])}")
    generated = sorted(p for p in out.rglob("*") if p.is_file())
    for path in generated:
        text = path.read_text()
        path.write_text(_IMPORT.sub(rf"\1 {PACKAGE}.aimdk.protocol", text))
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
            build_data.setdefault("force_include", {})[str(_proto_root(project) / "aimdk")] = (
                "proto/aimdk"
            )
        generate(project)
