"""Deployment configures only what code reads: every BP_* variable it sets is a declared setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bp_common.config import declared_variables

ROOT = Path(__file__).resolve().parents[2]
# A variable name, not a prefix written in prose (`BP_QUALITY_*`).
_VARIABLE = re.compile(r"\bBP_[A-Z0-9_]*[A-Z0-9]\b(?!_?\*)")


def _deployment_files() -> list[Path]:
    files = [ROOT / "docker-compose.yml", *sorted(ROOT.glob("services/*/Dockerfile"))]
    for pattern in ("*.tf", "*.tftpl", "*.tfvars*"):
        files.extend(sorted((ROOT / "deploy").rglob(pattern)))
    return files


def test_the_deployment_files_are_found() -> None:
    names = {p.name for p in _deployment_files()}
    assert {"docker-compose.yml", "Dockerfile", "main.tf"} <= names


@pytest.mark.parametrize("path", _deployment_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_bp_variable_a_deployment_sets_is_declared_by_code(path: Path) -> None:
    used = set(_VARIABLE.findall(path.read_text()))
    undeclared = sorted(used - declared_variables())
    assert not undeclared, f"{path.relative_to(ROOT)} sets variables no code reads: {undeclared}"
