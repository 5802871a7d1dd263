"""Verifies the OIDC token Pub/Sub push attaches: signature, issuer, audience, service account.

Every bad token is refused with 401 (or 403 when it is valid but names the wrong caller), never
an error of the server's own; the token itself never reaches a log or an error message. The
signing certificates are kept for their HTTP cache lifetime and fetched at a bounded rate, so a
token with an unknown key id cannot make every request fetch them.
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from google.auth import jwt

GOOGLE_ISSUERS = frozenset({"accounts.google.com", "https://accounts.google.com"})
# Google signs ID tokens with RS256 only; anything else (`none`, HS256 keyed with a public
# certificate...) is refused before any key is looked up.
ALGORITHM = "RS256"
CLOCK_SKEW_S = 10

log = logging.getLogger("bp.oidc")


class PushAuthError(Exception):
    """A refused request: `status` to answer, `reason` safe to log (it never holds the token)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class CertificatesUnavailable(PushAuthError):
    """No usable signing certificates: the caller may well be right, so answer 503 (retry)."""

    def __init__(self) -> None:
        super().__init__(503, "the signing certificates are unavailable")


def cache_lifetime(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a response may be kept, from Cache-Control (max-age less Age) or Expires.

    None when the response says nothing; 0 for `no-store`, `no-cache` or a past Expires.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    directives = [d.strip().lower() for d in lowered.get("cache-control", "").split(",")]
    if "no-store" in directives or "no-cache" in directives:
        return 0.0
    for directive in directives:
        name, _, value = directive.partition("=")
        if name.strip() == "max-age" and value.strip().isdigit():
            age = lowered.get("age", "0").strip()
            return max(0.0, float(value) - (float(age) if age.isdigit() else 0.0))
    expires = lowered.get("expires")
    if expires is None:
        return None
    try:
        expires_at = email.utils.parsedate_to_datetime(expires).timestamp()
    except (TypeError, ValueError):
        return 0.0  # an invalid Expires means already expired (RFC 9111 5.3)
    try:
        served_at = email.utils.parsedate_to_datetime(lowered["date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        served_at = time.time() if now is None else now
    return max(0.0, expires_at - served_at)


@dataclass(frozen=True)
class _Held:
    certificates: Mapping[str, str]
    expires_at: float


class CertificateCache:
    """The issuer's certificates by key id, kept for their HTTP cache lifetime.

    At most one fetch is in flight; requests whose key is held never wait for it. A key id that
    is not held triggers a fetch only when the last one is at least `min_refresh_s` old (keys
    rotate, but a forged id must not cost a fetch per request); a failed fetch is retried after
    `retry_s`. A lifetime shorter than `min_refresh_s` (or none at all) is stretched to it, and
    certificates past their lifetime are never used.
    """

    def __init__(
        self,
        url: str,
        *,
        min_refresh_s: float = 30.0,
        default_lifetime_s: float = 300.0,
        retry_s: float = 5.0,
        timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.min_refresh_s = min_refresh_s
        self.default_lifetime_s = default_lifetime_s
        self.retry_s = min(retry_s, min_refresh_s)
        self.timeout_s = timeout_s
        self.fetches = 0
        self._clock = clock
        self._held: _Held | None = None
        self._next_fetch_at = float("-inf")
        self._in_flight: threading.Event | None = None
        self._lock = threading.Lock()  # guards the fields above; never held during a fetch

    def certificate(self, key_id: str) -> str | None:
        """The PEM certificate of `key_id`, or None when the issuer does not publish it.

        Raises CertificatesUnavailable when no certificates within their lifetime are held.
        """
        held = self._held
        if held is not None and self._clock() < held.expires_at and key_id in held.certificates:
            return held.certificates[key_id]
        self._refresh()
        held = self._held
        if held is None or self._clock() >= held.expires_at:
            raise CertificatesUnavailable()
        return held.certificates.get(key_id)

    def _refresh(self) -> None:
        with self._lock:
            in_flight = self._in_flight
            if in_flight is None:
                if self._clock() < self._next_fetch_at:
                    return
                in_flight = self._in_flight = threading.Event()
                leader = True
            else:
                leader = False
        if not leader:
            in_flight.wait(self.timeout_s + 1.0)
            return
        try:
            held = self._fetch()
        except Exception as exc:  # any failure of the issuer's endpoint: keep what is held
            log.warning(
                "could not fetch the token signing certificates from %s: %s",
                self.url,
                type(exc).__name__,
            )
            with self._lock:
                self._next_fetch_at = self._clock() + self.retry_s
        else:
            with self._lock:
                self._held = held
                self._next_fetch_at = self._clock() + self.min_refresh_s
        finally:
            with self._lock:
                self._in_flight = None
            in_flight.set()

    def _fetch(self) -> _Held:
        self.fetches += 1
        response = requests.get(self.url, timeout=self.timeout_s)
        response.raise_for_status()
        body = response.json()
        if not isinstance(body, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in body.items()
        ):
            raise ValueError("the certificates are not a JSON object of key id to PEM")
        lifetime = cache_lifetime(response.headers)
        lifetime = self.default_lifetime_s if lifetime is None else lifetime
        return _Held(dict(body), self._clock() + max(lifetime, self.min_refresh_s))


def _bearer(authorization: str | None) -> str:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise PushAuthError(401, "missing bearer token")
    return token.strip()


def _why(exc: Exception) -> str:
    """A fixed reason for google-auth's verdict; its messages may quote the token, so never
    pass them on."""
    text = str(exc)
    for marker, reason in (
        ("Token expired", "token expired"),
        ("Token used too early", "token not valid yet"),
        ("wrong audience", "wrong audience"),
        ("Could not verify token signature", "bad signature"),
        ("does not contain required claim", "a required claim is missing"),
    ):
        if marker in text:
            return reason
    return "invalid token"


class PushTokenVerifier:
    """Checks `Authorization: Bearer <jwt>`: an RS256 ID token signed by a key of the issuer's
    certificates, for `audience`, from one of `issuers`, of the one verified `service_account`."""

    def __init__(
        self,
        *,
        audience: str,
        service_account: str,
        certs_url: str,
        issuers: frozenset[str] = GOOGLE_ISSUERS,
        certificates: CertificateCache | None = None,
    ) -> None:
        self.audience = audience
        self.service_account = service_account
        self.issuers = issuers
        self.certificates = certificates or CertificateCache(certs_url)

    @property
    def certs_url(self) -> str:
        return self.certificates.url

    def verify(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims, or PushAuthError (401: not a valid token for us; 403: a valid
        token of another caller; 503: certificates unavailable)."""
        token = _bearer(authorization)
        try:
            header = jwt.decode_header(token)
        except Exception:  # google-auth's message quotes the token: drop it
            raise PushAuthError(401, "malformed token") from None
        if header.get("alg") != ALGORITHM:
            raise PushAuthError(401, "unsupported signing algorithm")
        key_id = header.get("kid")
        if not isinstance(key_id, str) or not key_id:
            raise PushAuthError(401, "token names no signing key")
        certificate = self.certificates.certificate(key_id)
        if certificate is None:
            raise PushAuthError(401, "unknown signing key")
        try:
            claims = dict(
                jwt.decode(
                    token,
                    certs=certificate,
                    audience=self.audience,
                    clock_skew_in_seconds=CLOCK_SKEW_S,
                )
            )
        except Exception as exc:  # whatever a hostile token makes the decoder raise is a 401
            raise PushAuthError(401, _why(exc)) from None
        if claims.get("iss") not in self.issuers:
            raise PushAuthError(401, "unexpected issuer")
        if claims.get("email") != self.service_account or claims.get("email_verified") is not True:
            raise PushAuthError(403, "token is not from the push service account")
        return claims
