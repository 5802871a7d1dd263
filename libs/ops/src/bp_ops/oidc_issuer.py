"""A local OIDC issuer on 127.0.0.1: an RSA signing key whose certificate is served the way
Google serves its own (a JSON object of key id to x509 PEM, with a Cache-Control lifetime), and
ID tokens minted the way Pub/Sub push mints them. Services trust it by configuration
(`BP_OIDC_CERTS_URL`); `bp up --secure` and the tests use it."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from bp_ops.emulators import LOOPBACK

# What Pub/Sub's push tokens carry; the verifier accepts Google's issuers only.
PUSH_ISSUER = "https://accounts.google.com"
CERTS_PATH = "/oauth2/v1/certs"


class SigningKey:
    """An RSA key, its self-signed certificate, and a signer that names it by key id."""

    def __init__(self, key_id: str | None = None) -> None:
        self.key_id = key_id or secrets.token_hex(8)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, f"bp local issuer {self.key_id}")]
        )
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .sign(key, hashes.SHA256())
        )
        self.certificate_pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
        private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.signer = crypt.RSASigner.from_string(private_pem, key_id=self.key_id)


class LocalIssuer:
    """Serves `GET /oauth2/v1/certs` on a free loopback port and mints RS256 ID tokens.

    `max_age_s` is the certificates' advertised cache lifetime; `fetches` counts the GETs
    served. `rotate()` publishes a new key beside the old one and signs with it from then on.
    """

    def __init__(self, *, max_age_s: int = 3600, port: int = 0) -> None:
        self.max_age_s = max_age_s
        self.keys = [SigningKey()]
        self.fetches = 0
        self._lock = threading.Lock()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != CERTS_PATH:
                    self.send_error(404)
                    return
                with issuer._lock:
                    issuer.fetches += 1
                    body = json.dumps({k.key_id: k.certificate_pem for k in issuer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Cache-Control", f"public, max-age={issuer.max_age_s}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, port), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="oidc-issuer", daemon=True
        )
        self._thread.start()

    @property
    def certs_url(self) -> str:
        return f"http://{LOOPBACK}:{self.server.server_address[1]}{CERTS_PATH}"

    @property
    def key(self) -> SigningKey:
        return self.keys[-1]

    def rotate(self) -> SigningKey:
        with self._lock:
            self.keys.append(SigningKey())
            return self.keys[-1]

    def token(
        self,
        *,
        audience: str,
        email: str,
        issuer: str = PUSH_ISSUER,
        email_verified: bool = True,
        lifetime_s: int = 3600,
        signer: crypt.Signer | None = None,
    ) -> str:
        """An ID token as Pub/Sub push attaches it: the push service account's email, verified."""
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "azp": "bp-local-issuer",
            "email": email,
            "email_verified": email_verified,
            "sub": "bp-local-push",
            "iat": now,
            "exp": now + lifetime_s,
        }
        token: bytes = jwt.encode(signer or self.key.signer, claims)
        return token.decode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LocalIssuer:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
