"""The workspace shape: one package per service, the runtime and the operator tools apart."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("export", "submit", "import", "upload")


def imported_packages(folder: Path) -> set[str]:
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_a_service_never_imports_another_service() -> None:
    packages = {f"bp_{s}" for s in SERVICES} | {"bp_collector"}
    for folder in [ROOT / "services" / s / "src" for s in (*SERVICES, "collector")]:
        own = {p.name for p in folder.iterdir() if p.is_dir()}
        foreign = (imported_packages(folder) & packages) - own
        assert not foreign, f"{folder} imports {sorted(foreign)}"
    assert not imported_packages(ROOT / "libs" / "common" / "src") & packages


def test_the_runtime_and_the_services_never_import_the_operator_tools() -> None:
    for folder in [ROOT / "libs" / "common" / "src"] + [
        ROOT / "services" / s / "src" for s in (*SERVICES, "collector")
    ]:
        assert "bp_ops" not in imported_packages(folder), f"{folder} imports bp_ops"


def test_one_workspace_one_lock_and_the_expected_layout() -> None:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = root["tool"]["uv"]["workspace"]["members"]
    assert {"libs/common", "libs/ops", *(f"services/{s}" for s in SERVICES)} <= set(members)
    assert (ROOT / "uv.lock").is_file() and not list(ROOT.glob("*/**/uv.lock"))
    for path in (
        "proto",
        "deploy/terraform",
        "tests",
        "benchmarks",
        "docs/decisions",
        "Makefile",
        ".ci/run",
    ):
        assert (ROOT / path).exists(), path
