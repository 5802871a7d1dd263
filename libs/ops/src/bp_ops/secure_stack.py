"""What `bp up --secure` adds to the local stack so that its services run with production's
security on: a private CA whose certificates (the collector's, submit's client certificate)
are served only by a Secret Manager wire server over TLS; a local OIDC issuer the services
trust by configuration; and a signing relay in front of each push service, standing where
Pub/Sub's push signs its requests, since the emulator's push subscriptions send no token.

The services run in `PIPELINE_ENV=dev`: every security default of production (OIDC on push,
mTLS to the collector, no unknown settings, no secret in the environment) without the one rule
that keeps production off emulators.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bp_ops.certificates import Authority
from bp_ops.emulators import LOOPBACK
from bp_ops.oidc_issuer import LocalIssuer
from bp_ops.secret_manager import SecretManagerServer, TlsMaterial

# The account whose ID tokens push requests carry (Terraform's push service account).
PUSH_ACCOUNT = "bp-push@bp-local.iam.gserviceaccount.com"
# The secret names the collector and submit read (deploy/terraform's collector module).
COLLECTOR_CA = "collector-ca"
COLLECTOR_SERVER_KEY = "collector-server-key"
COLLECTOR_SERVER_CERT = "collector-server-cert"
COLLECTOR_CLIENT_KEY = "collector-client-key"
COLLECTOR_CLIENT_CERT = "collector-client-cert"

log = logging.getLogger("bp.stack.secure")


@dataclass(frozen=True)
class _Route:
    target: str
    audience: str


class PushRelay:
    """Receives the emulator's pushes at `/{stage}`, attaches an ID token the local issuer
    mints for that stage's audience and the push account, and forwards them to the service,
    answering with the service's status: what Pub/Sub itself does with `oidc_token` set."""

    def __init__(self, issuer: LocalIssuer, account: str, timeout_s: float) -> None:
        self.issuer = issuer
        self.account = account
        self.timeout_s = timeout_s
        self.routes: dict[str, _Route] = {}
        self.answers: Counter[tuple[str, int]] = Counter()
        self._lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                status = relay._forward(self.path.strip("/"), self)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="push-relay", daemon=True
        )
        self._thread.start()

    def route(self, stage: str, target: str, audience: str) -> str:
        """Relay pushes for `stage` to `target`; the URL the push subscription should call."""
        self.routes[stage] = _Route(target, audience)
        return f"http://{LOOPBACK}:{self.server.server_address[1]}/{stage}"

    def _forward(self, stage: str, request: BaseHTTPRequestHandler) -> int:
        route = self.routes.get(stage)
        if route is None:
            return 404
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length)
        token = self.issuer.token(audience=route.audience, email=self.account)
        forward = urllib.request.Request(
            route.target,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        )
        try:
            with urllib.request.urlopen(forward, timeout=self.timeout_s) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError as exc:  # the service is down or restarting: Pub/Sub retries a 503
            log.info("push for %s not delivered: %s", stage, type(exc).__name__)
            status = 503
        with self._lock:
            self.answers[(stage, status)] += 1
        return status

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SecureServices:
    """The CA, the Secret Manager holding the collector's certificates, the issuer and the
    relay; and the settings a service needs to use them."""

    def __init__(self, root: Path, project: str, *, push_timeout_s: float) -> None:
        self.root = root
        self.project = project
        self.push_timeout_s = push_timeout_s
        self.secret_manager: SecretManagerServer | None = None
        self.issuer: LocalIssuer | None = None
        self.relay: PushRelay | None = None
        self.ca_file = root / "secure" / "ca.pem"

    def start(self) -> None:
        authority = Authority("bp local stack CA")
        collector = authority.issue("bp-collector", server=True)
        client = authority.issue("bp-submit", server=False)
        secret_manager = authority.issue("secret-manager", server=True)
        self.ca_file.parent.mkdir(parents=True, exist_ok=True)
        # Only the CA, which is public, is written down; keys live in Secret Manager alone.
        self.ca_file.write_bytes(authority.cert_pem)
        tls = TlsMaterial(authority.cert_pem, secret_manager.cert_pem, secret_manager.key_pem)
        self.secret_manager = SecretManagerServer(self.project, tls=tls).start()
        for name, value in (
            (COLLECTOR_CA, authority.cert_pem),
            (COLLECTOR_SERVER_KEY, collector.key_pem),
            (COLLECTOR_SERVER_CERT, collector.cert_pem),
            (COLLECTOR_CLIENT_KEY, client.key_pem),
            (COLLECTOR_CLIENT_CERT, client.cert_pem),
        ):
            self.secret_manager.add_version(name, value)
        self.issuer = LocalIssuer()
        self.relay = PushRelay(self.issuer, PUSH_ACCOUNT, self.push_timeout_s)

    def push_endpoint(self, stage: str, port: int) -> str:
        """Where the stage's push subscription delivers: the relay, which signs for it."""
        assert self.relay is not None, "start first"
        return self.relay.route(stage, *self._service_push(port))

    @staticmethod
    def _service_push(port: int) -> tuple[str, str]:
        # As on Cloud Run, the audience is the push endpoint's own URL.
        url = f"http://{LOOPBACK}:{port}/push"
        return url, url

    def env(self, collector_address: str) -> dict[str, str]:
        """Settings of every service: production's security defaults, secrets from Secret
        Manager over TLS, tokens checked against the local issuer's certificates."""
        assert self.secret_manager is not None and self.issuer is not None, "start first"
        return {
            "PIPELINE_ENV": "dev",
            "BP_SECRETS_BACKEND": "secret-manager",
            "BP_SECRET_MANAGER_ENDPOINT": self.secret_manager.endpoint,
            "BP_SECRET_MANAGER_CA_FILE": str(self.ca_file),
            "BP_OIDC_CERTS_URL": self.issuer.certs_url,
            "BP_COLLECTOR_ADDRESS": collector_address,
        }

    def push_env(self, port: int) -> dict[str, str]:
        """What a push service verifies tokens against."""
        return {
            "BP_PUSH_AUDIENCE": self._service_push(port)[1],
            "BP_PUSH_SERVICE_ACCOUNT": PUSH_ACCOUNT,
        }

    def describe(self) -> list[str]:
        assert self.secret_manager is not None and self.issuer is not None
        assert self.relay is not None
        return [
            f"  secure: Secret Manager (TLS) on {self.secret_manager.endpoint}, CA {self.ca_file}",
            f"  secure: OIDC issuer certificates at {self.issuer.certs_url}; push tokens for"
            f" {PUSH_ACCOUNT}, signed by the relay on"
            f" {LOOPBACK}:{self.relay.server.server_address[1]}",
        ]

    def stop(self) -> None:
        if self.relay is not None:
            self.relay.close()
        if self.issuer is not None:
            self.issuer.close()
        if self.secret_manager is not None:
            self.secret_manager.stop()
