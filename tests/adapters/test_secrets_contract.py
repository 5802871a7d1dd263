"""The secrets contract, run over mounted files and over Secret Manager (a wire-level test server
reached by the real client over TLS with a private CA, and over plaintext)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from bp_common.errors import InvalidName, NotFound, Unavailable
from bp_common.secrets.base import SecretStore
from bp_common.secrets.files import FileSecretStore
from bp_common.secrets.secretmanager import SecretManagerStore, make_secret_manager_client
from bp_ops.secret_manager import SecretManagerServer, TlsMaterial, make_tls_material
from google.api_core.retry import Retry

PROJECT = "bp-test"
KEY_PEM = b"-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhki\n-----END PRIVATE KEY-----\n"
NO_RETRY = Retry(timeout=1.0, initial=0.05, maximum=0.1)


@dataclass
class Backend:
    """A store plus the way its operator puts a new secret version in place."""

    store: SecretStore
    put: Callable[[str, bytes], None]
    server: SecretManagerServer | None = None


@pytest.fixture(scope="module")
def tls() -> TlsMaterial:
    return make_tls_material()


def _file_put(root: Path, mounted_as_dir: bool) -> Callable[[str, bytes], None]:
    def put(name: str, value: bytes) -> None:
        if mounted_as_dir:  # how Cloud Run mounts a version: {root}/{name}/latest
            (root / name).mkdir(parents=True, exist_ok=True)
            (root / name / "latest").write_bytes(value)
        else:
            (root / name).write_bytes(value)

    return put


@pytest.fixture(
    params=["files", "files-cloud-run-layout", "secret-manager-tls", "secret-manager-plaintext"]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param.startswith("files"):
        yield Backend(
            FileSecretStore(tmp_path),
            _file_put(tmp_path, request.param == "files-cloud-run-layout"),
        )
        return
    material: TlsMaterial | None = (
        request.getfixturevalue("tls") if request.param.endswith("tls") else None
    )
    with SecretManagerServer(PROJECT, tls=material) as server:
        client = make_secret_manager_client(
            server.endpoint,
            root_certificates=material.ca_pem if material else None,
            insecure=material is None,
        )
        store = SecretManagerStore(client, PROJECT, retry=NO_RETRY, timeout=5.0)
        yield Backend(store, lambda name, value: _add(server, name, value), server)
        client.transport.close()


def _add(server: SecretManagerServer, name: str, value: bytes) -> None:
    server.add_version(name, value)


def test_a_secret_reads_back_byte_for_byte(backend: Backend) -> None:
    backend.put("collector-tls-key", KEY_PEM)
    assert backend.store.get("collector-tls-key") == KEY_PEM
    assert backend.store.get_text("collector-tls-key") == KEY_PEM.decode()


def test_binary_values_and_trailing_newlines_survive(backend: Backend) -> None:
    value = bytes(range(256)) + b"\n\n"
    backend.put("firebase-sa", value)
    assert backend.store.get("firebase-sa") == value


def test_the_latest_version_wins(backend: Backend) -> None:
    backend.put("api-token", b"first")
    backend.put("api-token", b"second")
    assert backend.store.get("api-token") == b"second"


def test_a_missing_secret_is_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound) as raised:
        backend.store.get("never-created")
    assert raised.value.context["secret"] == "never-created"


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b", "", "x" * 256, "name with space"])
def test_unsafe_names_are_refused_before_any_lookup(backend: Backend, name: str) -> None:
    with pytest.raises(InvalidName):
        backend.store.get(name)
    if backend.server is not None:
        assert backend.server.requests == []


def test_the_value_never_shows_in_repr_or_logs(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    backend.put("db-password", b"hunter2-very-secret")
    with caplog.at_level(logging.DEBUG):
        value = backend.store.get("db-password")
    assert value == b"hunter2-very-secret"
    assert "hunter2" not in repr(backend.store)
    assert "hunter2" not in caplog.text


def test_secret_manager_reads_the_latest_version_of_the_named_secret() -> None:
    with SecretManagerServer(PROJECT) as server:
        server.add_version("api-token", b"v1")
        client = make_secret_manager_client(server.endpoint, insecure=True)
        assert SecretManagerStore(client, PROJECT).get("api-token") == b"v1"
        assert server.requests == [f"projects/{PROJECT}/secrets/api-token/versions/latest"]


def test_secret_manager_from_another_project_is_not_found() -> None:
    with SecretManagerServer("other-project") as server:
        server.add_version("api-token", b"v1")
        client = make_secret_manager_client(server.endpoint, insecure=True)
        with pytest.raises(NotFound):
            SecretManagerStore(client, PROJECT).get("api-token")


def test_a_disabled_latest_version_is_not_found() -> None:
    with SecretManagerServer(PROJECT) as server:
        server.add_version("api-token", b"v1")
        server.disable_version("api-token", 1)
        client = make_secret_manager_client(server.endpoint, insecure=True)
        with pytest.raises(NotFound, match="not enabled"):
            SecretManagerStore(client, PROJECT).get("api-token")


def test_a_corrupted_payload_is_rejected_as_transient() -> None:
    with SecretManagerServer(PROJECT) as server:
        server.add_version("api-token", b"v1")
        server.corrupt_checksums = True
        client = make_secret_manager_client(server.endpoint, insecure=True)
        with pytest.raises(Unavailable, match="CRC32C") as raised:
            SecretManagerStore(client, PROJECT).get("api-token")
        assert "v1" not in str(raised.value)


@pytest.mark.parametrize("status", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_an_unavailable_service_is_a_transient_error(status: grpc.StatusCode) -> None:
    with SecretManagerServer(PROJECT) as server:
        server.add_version("api-token", b"v1")
        server.fail_next = [status] * 50
        client = make_secret_manager_client(server.endpoint, insecure=True)
        with pytest.raises(Unavailable):
            SecretManagerStore(client, PROJECT, retry=NO_RETRY).get("api-token")


def test_a_brief_outage_is_retried_by_the_client() -> None:
    with SecretManagerServer(PROJECT) as server:
        server.add_version("api-token", b"v1")
        server.fail_next = [grpc.StatusCode.UNAVAILABLE]
        client = make_secret_manager_client(server.endpoint, insecure=True)
        assert SecretManagerStore(client, PROJECT).get("api-token") == b"v1"
        assert len(server.requests) == 2


def test_tls_is_verified_against_the_given_ca(tls: TlsMaterial) -> None:
    impostor = make_tls_material("impostor")
    with SecretManagerServer(PROJECT, tls=impostor) as server:
        server.add_version("api-token", b"v1")
        client = make_secret_manager_client(server.endpoint, root_certificates=tls.ca_pem)
        with pytest.raises(Unavailable):
            SecretManagerStore(client, PROJECT, retry=NO_RETRY, timeout=2.0).get("api-token")
        assert server.requests == []


def test_services_read_secrets_from_secret_manager_through_their_settings() -> None:
    from bp_common.config import Settings
    from bp_common.wiring import cloud_secrets

    with SecretManagerServer("bp-wired") as server:
        server.add_version("firebase-service-account", b'{"type": "service_account"}')
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            project_id="bp-wired",
            secrets_backend="secret-manager",
            secret_manager_endpoint=server.endpoint,
        )
        store = cloud_secrets(settings)
        assert store.get("firebase-service-account") == b'{"type": "service_account"}'
        assert "service_account" not in repr(store)
