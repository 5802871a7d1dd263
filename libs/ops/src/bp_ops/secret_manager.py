"""A wire-level Secret Manager on 127.0.0.1: the real AccessSecretVersion RPC over gRPC, TLS or
not, for the tests and for `bp up --secure`, whose services read every secret from it.

Requests and responses are (de)serialized with the client library's own proto types, so the real
`SecretManagerServiceClient` cannot tell this server from the service for the one RPC it uses.
"""

from __future__ import annotations

import re
import threading
from concurrent import futures
from dataclasses import dataclass, field
from types import TracebackType
from typing import NoReturn

import google_crc32c
import grpc
from google.cloud import secretmanager_v1

from bp_ops.certificates import Authority

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
_VERSION_NAME = re.compile(r"^projects/([^/]+)/secrets/([^/]+)/versions/([^/]+)$")


@dataclass(frozen=True)
class TlsMaterial:
    """A throw-away CA and a server certificate it signed for 127.0.0.1 and localhost (PEM)."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def make_tls_material(common_name: str = "secret-manager-test") -> TlsMaterial:
    authority = Authority(f"{common_name} CA")
    server = authority.issue(common_name, server=True)
    return TlsMaterial(ca_pem=authority.cert_pem, cert_pem=server.cert_pem, key_pem=server.key_pem)


@dataclass
class _Secret:
    versions: list[bytes] = field(default_factory=list)
    disabled: set[int] = field(default_factory=set)


class SecretManagerServer:
    """Serves AccessSecretVersion for one project on 127.0.0.1 (a free port), like the service:
    NOT_FOUND for unknown secrets or versions, FAILED_PRECONDITION for a disabled version,
    `latest` meaning the most recently added version, and the payload's CRC32C."""

    def __init__(self, project: str, *, tls: TlsMaterial | None = None) -> None:
        self.project = project
        self.tls = tls
        self._secrets: dict[str, _Secret] = {}
        self._lock = threading.Lock()
        self.requests: list[str] = []
        self.fail_next: list[grpc.StatusCode] = []  # statuses to answer before serving again
        self.corrupt_checksums = False
        self._server: grpc.Server | None = None
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def add_version(self, secret: str, data: bytes) -> int:
        with self._lock:
            versions = self._secrets.setdefault(secret, _Secret()).versions
            versions.append(bytes(data))
            return len(versions)

    def disable_version(self, secret: str, version: int) -> None:
        with self._lock:
            self._secrets[secret].disabled.add(version)

    def _access(
        self, request: secretmanager_v1.AccessSecretVersionRequest, context: grpc.ServicerContext
    ) -> secretmanager_v1.AccessSecretVersionResponse:
        with self._lock:
            self.requests.append(request.name)
            if self.fail_next:
                _abort(context, self.fail_next.pop(0), "injected failure")
            match = _VERSION_NAME.fullmatch(request.name)
            if match is None:
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, f"bad name {request.name!r}")
            project, secret_id, version_id = match.groups()
            secret = self._secrets.get(secret_id) if project == self.project else None
            if secret is None or not secret.versions:
                _abort(context, grpc.StatusCode.NOT_FOUND, f"Secret [{request.name}] not found")
            version = len(secret.versions) if version_id == "latest" else _int(version_id)
            if not 1 <= version <= len(secret.versions):
                _abort(context, grpc.StatusCode.NOT_FOUND, f"Version [{request.name}] not found")
            if version in secret.disabled:
                _abort(
                    context,
                    grpc.StatusCode.FAILED_PRECONDITION,
                    f"Version [{version}] is in DISABLED state",
                )
            data = secret.versions[version - 1]
        crc = google_crc32c.value(data) ^ (1 if self.corrupt_checksums else 0)
        return secretmanager_v1.AccessSecretVersionResponse(
            name=f"projects/{project}/secrets/{secret_id}/versions/{version}",
            payload=secretmanager_v1.SecretPayload(data=data, data_crc32c=crc),
        )

    def start(self) -> SecretManagerServer:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "AccessSecretVersion": grpc.unary_unary_rpc_method_handler(
                    self._access,
                    request_deserializer=secretmanager_v1.AccessSecretVersionRequest.deserialize,
                    response_serializer=secretmanager_v1.AccessSecretVersionResponse.serialize,
                )
            },
        )
        server.add_generic_rpc_handlers((handler,))
        if self.tls is None:
            self.port = server.add_insecure_port("127.0.0.1:0")
        else:
            credentials = grpc.ssl_server_credentials([(self.tls.key_pem, self.tls.cert_pem)])
            self.port = server.add_secure_port("127.0.0.1:0", credentials)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    def __enter__(self) -> SecretManagerServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, details: str) -> NoReturn:
    context.abort(code, details)  # raises, ending the RPC with that status
    raise AssertionError("unreachable")


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0
