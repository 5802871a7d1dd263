"""Verifies the OIDC token Pub/Sub push attaches: signature, issuer, audience, service account."""

from __future__ import annotations

import threading
import time
from typing import Any

import requests
from google.auth import exceptions as auth_exceptions
from google.auth import jwt

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})


class PushAuthError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class PushTokenVerifier:
    """Checks `Authorization: Bearer <jwt>`; certificates are fetched once and cached."""

    def __init__(
        self,
        *,
        audience: str,
        service_account: str,
        certs_url: str,
        cache_seconds: float = 3600.0,
        issuers: frozenset[str] = GOOGLE_ISSUERS,
    ) -> None:
        self.audience = audience
        self.service_account = service_account
        self.certs_url = certs_url
        self.cache_seconds = cache_seconds
        self.issuers = issuers
        self._certs: dict[str, str] = {}
        self._fetched = 0.0
        self._lock = threading.Lock()

    def _certificates(self, refresh: bool = False) -> dict[str, str]:
        with self._lock:
            if refresh or not self._certs or time.monotonic() - self._fetched > self.cache_seconds:
                response = requests.get(self.certs_url, timeout=10)
                response.raise_for_status()
                self._certs = dict(response.json())
                self._fetched = time.monotonic()
            return self._certs

    def verify(self, authorization: str | None) -> dict[str, Any]:
        if not authorization or not authorization.startswith("Bearer "):
            raise PushAuthError(401, "missing bearer token")
        token = authorization.removeprefix("Bearer ").strip()
        try:
            header = jwt.decode_header(token)
        except (ValueError, auth_exceptions.GoogleAuthError) as exc:
            raise PushAuthError(401, f"malformed token: {exc}") from exc
        certs = self._certificates()
        if header.get("kid") not in certs:
            certs = self._certificates(refresh=True)  # keys rotate
        try:
            claims = dict(
                jwt.decode(token, certs=certs, audience=self.audience, clock_skew_in_seconds=10)
            )
        except (ValueError, auth_exceptions.GoogleAuthError) as exc:
            raise PushAuthError(401, f"invalid token: {exc}") from exc
        if claims.get("iss") not in self.issuers:
            raise PushAuthError(401, f"unexpected issuer {claims.get('iss')!r}")
        if claims.get("email") != self.service_account or not claims.get("email_verified"):
            raise PushAuthError(403, "token is not from the push service account")
        return claims
