"""docker-compose.yml runs the same stack as `bp up`: emulators, topology, the five stages.

No Docker engine here: the file is parsed and checked against the code it has to agree with.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from bp_common.config import _SECRET_LIKE, Settings
from bp_common.contracts.events import SceneUpload
from bp_common.topology import ROUTE_BY_STAGE, STAGE_NAMES
from bp_ops.stack import BUCKET, FIREBASE_BUCKET, PROJECT, LocalStack

REPO = Path(__file__).resolve().parents[2]
EMULATORS = ("pubsub", "firestore", "gcs")
BP_SERVICES = STAGE_NAMES
EMULATOR_HOSTS = {
    "pubsub": "PUBSUB_EMULATOR_HOST",
    "firestore": "FIRESTORE_EMULATOR_HOST",
    "gcs": "STORAGE_EMULATOR_HOST",
}
# What a leaked credential looks like in a value, whatever the variable is called.
CREDENTIAL_VALUE = re.compile(r"BEGIN [A-Z ]*PRIVATE KEY|\"private_key\"|AIza[0-9A-Za-z_-]{20,}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def flags(command: list[str]) -> dict[str, str]:
    """`--name=value` / `-name=value` arguments of a command line."""
    return dict(
        arg.lstrip("-").split("=", 1) for arg in command if arg.startswith("-") and "=" in arg
    )


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment is written as a mapping"
    return {k: str(v) for k, v in env.items()}


def test_the_stack_has_the_emulators_an_init_and_the_stages(
    services: dict[str, dict[str, Any]],
) -> None:
    assert set(services) == {*EMULATORS, "init", *BP_SERVICES, "otel-collector"}


def test_every_service_has_a_pinned_image_or_a_build_from_the_repository(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        image = service.get("image", "")
        if "build" in service:
            dockerfile = REPO / service["build"]["context"] / service["build"]["dockerfile"]
            assert dockerfile.is_file(), f"{name}: {dockerfile} is missing"
        else:
            tag = image.rsplit(":", 1)[-1] if ":" in image.rsplit("/", 1)[-1] else ""
            assert tag and tag != "latest", f"{name}: pin {image!r} to a version"


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_each_bp_service_is_built_from_its_own_dockerfile(
    stage: str,
    services: dict[str, dict[str, Any]],
) -> None:
    folder = "collector" if stage == "collect" else stage  # the collect stage is the collector's
    assert services[stage]["build"] == {
        "context": ".",
        "dockerfile": f"services/{folder}/Dockerfile",
    }


def test_emulators_listen_where_the_clients_look(services: dict[str, dict[str, Any]]) -> None:
    client = environment(services["export"])
    pubsub = flags(services["pubsub"]["command"])
    assert pubsub["host-port"] == "0.0.0.0:8085" and pubsub["project"] == PROJECT
    assert client["PUBSUB_EMULATOR_HOST"] == "pubsub:8085"
    firestore = flags(services["firestore"]["command"])
    assert firestore["host-port"] == "0.0.0.0:8080"
    assert client["FIRESTORE_EMULATOR_HOST"] == "firestore:8080"
    gcs = flags(services["gcs"]["command"])
    assert (gcs["scheme"], gcs["port"], gcs["backend"]) == ("http", "4443", "memory")
    assert client["STORAGE_EMULATOR_HOST"] == "http://gcs:4443"
    # The host reaches them on loopback only (gcloud, `bp drop`, `bp runs`).
    for name, port in (("pubsub", 8085), ("firestore", 8080), ("gcs", 4443)):
        assert services[name]["ports"] == [f"127.0.0.1:{port}:{port}"]


def test_storage_finalize_events_go_to_scene_uploads(services: dict[str, dict[str, Any]]) -> None:
    gcs = services["gcs"]
    options = flags(gcs["command"])
    assert options["event.pubsub-project-id"] == PROJECT
    assert options["event.pubsub-topic"] == SceneUpload.TOPIC
    assert options["event.list"] == "finalize"
    assert options["event.object-prefix"] == "scenes/"
    assert environment(gcs)["PUBSUB_EMULATOR_HOST"] == "pubsub:8085"
    assert gcs["depends_on"]["pubsub"]["condition"] == "service_healthy"


def test_init_creates_the_topology_and_both_buckets_once(
    services: dict[str, dict[str, Any]],
) -> None:
    init = services["init"]
    assert init["command"][:2] == ["python", "-c"]
    script = init["command"][2]
    compile(script, "init", "exec")
    assert "ensure_topology(" in script and "ensure_bucket(" in script
    assert f'"{BUCKET}"' in script and f'"{FIREBASE_BUCKET}"' in script
    pushed = {s for s in STAGE_NAMES if ROUTE_BY_STAGE[s].delivery == "push"}
    loop = re.search(r"for stage in \(([^)]*)\)", script)
    assert loop, "push endpoints are set for each push stage"
    assert set(re.findall(r'"(\w+)"', loop.group(1))) == pushed
    assert "http://{stage}:8080/push" in script
    assert init.get("restart") == "no" and "healthcheck" not in init
    for emulator in ("pubsub", "gcs"):
        assert init["depends_on"][emulator]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", BP_SERVICES)
def test_services_wait_for_the_emulators_and_the_topology(
    name: str,
    services: dict[str, dict[str, Any]],
) -> None:
    depends = services[name]["depends_on"]
    assert depends["init"]["condition"] == "service_completed_successfully"
    assert depends["gcs"]["condition"] == "service_healthy"
    if name in STAGE_NAMES:
        for emulator in EMULATORS:
            assert depends[emulator]["condition"] == "service_healthy", f"{name} -> {emulator}"


def test_the_client_environment_mirrors_bp_up(
    services: dict[str, dict[str, Any]],
    tmp_path: Path,
) -> None:
    expected = LocalStack(tmp_path, []).client_env()
    for name in (*BP_SERVICES, "init"):
        env = environment(services[name])
        for key, value in expected.items():
            assert key in env, f"{name} lacks {key}"
            if key != "BP_SECRETS_DIR":  # a folder of the host for `bp up`, of the container here
                assert env[key] == value, f"{name}: {key}={env[key]!r}, bp up says {value!r}"
        for emulator, variable in EMULATOR_HOSTS.items():
            assert emulator in env[variable], f"{name}: {variable} does not point at {emulator}"
        assert env["PIPELINE_ENV"] == "local"


@pytest.mark.parametrize("stage", STAGE_NAMES)
def test_each_stage_runs_its_route_the_way_the_topology_says(
    stage: str,
    services: dict[str, dict[str, Any]],
) -> None:
    route = ROUTE_BY_STAGE[stage]
    service = services[stage]
    env = environment(service)
    assert env["BP_STAGE"] == stage
    assert env["BP_DEAD_LETTER_TOPIC"] == route.dead_letter_topic
    if route.delivery == "push":
        assert service["command"] == ["bp", "serve", stage, "--host", "0.0.0.0", "--port", "8080"]
    else:
        assert service["command"] == ["bp", "worker", stage]


def test_no_secret_is_passed_in_the_environment(services: dict[str, dict[str, Any]]) -> None:
    settings_variables = {f"BP_{name.upper()}" for name in Settings.model_fields}
    for name, service in services.items():
        assert "env_file" not in service, name
        for key, value in environment(service).items():
            assert not CREDENTIAL_VALUE.search(value), f"{name}: {key} holds a credential"
            if _SECRET_LIKE.search(key):
                # Only settings that name where secrets live, never a secret itself.
                assert key in settings_variables and value.startswith("/"), f"{name}: {key}"


@pytest.mark.parametrize("name", [*EMULATORS, *BP_SERVICES])
def test_long_running_services_have_a_healthcheck(
    name: str,
    services: dict[str, dict[str, Any]],
) -> None:
    check = services[name]["healthcheck"]
    if check.get("disable"):
        # Only a pull worker, which has nothing to probe, may go without.
        assert name in STAGE_NAMES and ROUTE_BY_STAGE[name].delivery == "pull"
        return
    assert check["test"][0] == "CMD" and len(check["test"]) > 1
    assert check["retries"] >= 3
    if name in STAGE_NAMES:
        assert "/healthz" in " ".join(check["test"])
