"""Secrets from Google Secret Manager: the latest version of a named secret, CRC32C-checked.

Values never reach logs, reprs or error messages: errors carry the secret's name only.
"""

from __future__ import annotations

import google_crc32c
import grpc
from google.api_core import exceptions as gexc
from google.api_core import gapic_v1
from google.api_core.retry import Retry
from google.cloud import secretmanager_v1
from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
    SecretManagerServiceGrpcTransport,
)

from bp_common.errors import NotFound, Unavailable
from bp_common.secrets.base import SecretStore, validate_secret_name

_TRANSIENT = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.ResourceExhausted,
    gexc.Aborted,
    gexc.InternalServerError,
    gexc.Unknown,
    gexc.RetryError,
)


def make_secret_manager_client(
    endpoint: str | None = None,
    *,
    root_certificates: bytes | None = None,
    insecure: bool = False,
) -> secretmanager_v1.SecretManagerServiceClient:
    """The production client (ADC, secretmanager.googleapis.com) when no endpoint is given.

    With an endpoint (host:port) the client talks to that server over TLS, trusting
    `root_certificates` (a private CA's PEM) when given, or in plaintext when `insecure`; such
    calls carry no Google credentials, which is what a test server wants.
    """
    if endpoint is None:
        return secretmanager_v1.SecretManagerServiceClient()
    if insecure:
        channel = grpc.insecure_channel(endpoint)
    else:
        credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
        channel = grpc.secure_channel(endpoint, credentials)
    transport = SecretManagerServiceGrpcTransport(channel=channel)
    return secretmanager_v1.SecretManagerServiceClient(transport=transport)


class SecretManagerStore(SecretStore):
    """`projects/{project}/secrets/{name}/versions/latest`, one `AccessSecretVersion` per get."""

    def __init__(
        self,
        client: secretmanager_v1.SecretManagerServiceClient,
        project: str,
        *,
        retry: Retry | gapic_v1.method._MethodDefault = gapic_v1.method.DEFAULT,
        timeout: float | None = 30.0,
    ) -> None:
        self.client = client
        self.project = project
        self.retry = retry
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SecretManagerStore(project={self.project!r})"

    def version_name(self, name: str, version: str = "latest") -> str:
        return f"projects/{self.project}/secrets/{validate_secret_name(name)}/versions/{version}"

    def get(self, name: str) -> bytes:
        path = self.version_name(name)
        try:
            response = self.client.access_secret_version(
                request={"name": path}, retry=self.retry, timeout=self.timeout
            )
        except gexc.NotFound as exc:
            raise NotFound("no such secret or version", secret=name, project=self.project) from exc
        except gexc.FailedPrecondition as exc:  # the latest version is disabled or destroyed
            raise NotFound(
                "the latest version of the secret is not enabled",
                secret=name,
                project=self.project,
            ) from exc
        except _TRANSIENT as exc:
            raise Unavailable(
                f"Secret Manager: {type(exc).__name__}", secret=name, project=self.project
            ) from exc
        payload = response.payload
        data = bytes(payload.data)
        if "data_crc32c" in payload and google_crc32c.value(data) != payload.data_crc32c:
            # Corruption in transit: retrying may well fetch it intact.
            raise Unavailable(
                "secret payload does not match its CRC32C", secret=name, project=self.project
            )
        return data
