"""A wire-level Secret Manager on 127.0.0.1: the real AccessSecretVersion RPC over gRPC, TLS or
not, for the tests and for `bp up --secure`, whose services read every secret from it.

Requests and responses are (de)serialized with the client library's own proto types, so the real
`SecretManagerServiceClient` cannot tell this server from the service for the one RPC it uses.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import threading
from concurrent import futures
from dataclasses import dataclass, field
from types import TracebackType
from typing import NoReturn

import google_crc32c
import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from google.cloud import secretmanager_v1

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
_VERSION_NAME = re.compile(r"^projects/([^/]+)/secrets/([^/]+)/versions/([^/]+)$")


@dataclass(frozen=True)
class TlsMaterial:
    """A throw-away CA and a server certificate it signed for 127.0.0.1 and localhost (PEM)."""

    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def make_tls_material(common_name: str = "secret-manager-test") -> TlsMaterial:
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return TlsMaterial(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


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
