"""The pieces `bp up --secure` adds, on their own: the collector's certificates served only by
Secret Manager over TLS, and the relay that signs each push the way Pub/Sub does, checked by
the production verifier. (tests/test_end_to_end.py runs the whole stack this way.)"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
from bp_common.config import Settings
from bp_common.runtime.oidc import PushAuthError, PushTokenVerifier
from bp_common.wiring import cloud_secrets
from bp_ops.emulators import free_port
from bp_ops.secure_stack import (
    COLLECTOR_CA,
    COLLECTOR_CLIENT_CERT,
    COLLECTOR_CLIENT_KEY,
    COLLECTOR_SERVER_CERT,
    COLLECTOR_SERVER_KEY,
    PUSH_ACCOUNT,
    SecureServices,
)


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[SecureServices]:
    services = SecureServices(tmp_path, "bp-secure-test", push_timeout_s=30)
    services.start()
    try:
        yield services
    finally:
        services.stop()


class VerifyingService:
    """A push endpoint on 127.0.0.1 that answers what the production verifier decides."""

    def __init__(self, verifier: PushTokenVerifier, port: int) -> None:
        self.bodies: list[bytes] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    verifier.verify(self.headers.get("Authorization"))
                    service.bodies.append(body)
                    status = 204
                except PushAuthError as exc:
                    status = exc.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)

    def __enter__(self) -> VerifyingService:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def settings_of(secure: SecureServices, **env: str) -> Settings:
    variables: dict[str, Any] = {
        k.removeprefix("BP_").lower(): v for k, v in env.items() if k.startswith("BP_")
    }
    return Settings(_env_file=None, project_id=secure.project, **variables)  # type: ignore[call-arg]


def test_the_collector_certificates_come_from_secret_manager_over_tls_and_nowhere_else(
    secure: SecureServices, tmp_path: Path
) -> None:
    env = secure.env("127.0.0.1:50061")
    assert env["PIPELINE_ENV"] == "dev" and env["BP_SECRETS_BACKEND"] == "secret-manager"
    store = cloud_secrets(settings_of(secure, **env))
    for name in (COLLECTOR_SERVER_KEY, COLLECTOR_CLIENT_KEY):
        assert b"PRIVATE KEY" in store.get(name)
    for name in (COLLECTOR_CA, COLLECTOR_SERVER_CERT, COLLECTOR_CLIENT_CERT):
        assert b"BEGIN CERTIFICATE" in store.get(name)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == [secure.ca_file]
    assert b"PRIVATE KEY" not in secure.ca_file.read_bytes()
    # Secret Manager answers TLS only: a plaintext client never gets a channel.
    assert secure.secret_manager is not None
    channel = grpc.insecure_channel(secure.secret_manager.endpoint)
    with pytest.raises(grpc.FutureTimeoutError):
        grpc.channel_ready_future(channel).result(timeout=2)
    channel.close()


def test_the_relay_signs_each_push_as_pub_sub_does_and_the_service_verifies_it(
    secure: SecureServices,
) -> None:
    assert secure.issuer is not None and secure.relay is not None
    port = free_port()
    env = secure.push_env(port)
    assert env["BP_PUSH_SERVICE_ACCOUNT"] == PUSH_ACCOUNT
    verifier = PushTokenVerifier(
        audience=env["BP_PUSH_AUDIENCE"],
        service_account=env["BP_PUSH_SERVICE_ACCOUNT"],
        certs_url=secure.env("127.0.0.1:1")["BP_OIDC_CERTS_URL"],
    )
    envelope = json.dumps({"message": {"data": "", "messageId": "1"}, "subscription": "s"})
    with VerifyingService(verifier, port) as service:
        relayed = secure.push_endpoint("export", port)
        assert post(relayed, envelope.encode(), {"Content-Type": "application/json"}) == 204
        assert service.bodies == [envelope.encode()]
        direct = f"http://127.0.0.1:{port}/push"
        assert post(direct, envelope.encode()) == 401  # Pub/Sub's signer was bypassed
        assert secure.relay.answers[("export", 204)] == 1
    # the service is gone: the relay answers 503 and Pub/Sub retries
    assert post(relayed, envelope.encode()) == 503
