"""Who may use the status page, and proof that a state change was asked for by its own forms.

Callers are authenticated one of three ways: the random access token `bp status serve` prints
at start (a cookie once the printed address was opened, or `Authorization: Bearer`), a
Google-signed ID token of one service account, or the platform in front (IAP on Cloud Run).
Every state-changing call is a POST carrying a CSRF token: an HMAC of a per-browser nonce kept
in a same-site cookie, under a key that never leaves the process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from bp_common.runtime.oidc import PushTokenVerifier
from fastapi import Request

TOKEN_COOKIE = "bp_status_token"
CSRF_COOKIE = "bp_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
TOKEN_QUERY = "token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SAFE_FETCH_SITES = frozenset({"same-origin", "none"})


def new_token() -> str:
    """An access token for one run of the page: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class Guard:
    """Exactly one way to authenticate callers; the CSRF key is the process's own."""

    token: str | None = None
    verifier: PushTokenVerifier | None = None
    platform: bool = False
    csrf_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)

    def __post_init__(self) -> None:
        chosen = [self.token is not None, self.verifier is not None, self.platform]
        if sum(chosen) != 1:
            raise ValueError("the status page needs exactly one of a token, OIDC or platform auth")

    def token_matches(self, request: Request) -> bool:
        """The access token in the cookie or as a bearer token."""
        assert self.token is not None
        offered = request.cookies.get(TOKEN_COOKIE, "")
        bearer = request.headers.get("authorization", "")
        if bearer.lower().startswith("bearer "):
            offered = offered or bearer[7:].strip()
        return bool(offered) and hmac.compare_digest(offered.encode(), self.token.encode())

    def token_in_query(self, request: Request) -> bool:
        offered = request.query_params.get(TOKEN_QUERY)
        assert self.token is not None
        return offered is not None and hmac.compare_digest(offered.encode(), self.token.encode())

    def csrf_for(self, nonce: str) -> str:
        return hmac.new(self.csrf_key, nonce.encode(), hashlib.sha256).hexdigest()

    def csrf_valid(self, nonce: str | None, offered: str | None) -> bool:
        if not nonce or not offered:
            return False
        return hmac.compare_digest(self.csrf_for(nonce).encode(), offered.encode())


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def is_state_change(request: Request) -> bool:
    return request.method not in _SAFE_METHODS


def same_origin(request: Request) -> bool:
    """Browsers say where a request comes from; a form posted from another site is refused."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in _SAFE_FETCH_SITES:
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    # "null" is what a sandboxed document (such as a served quality report) sends.
    return origin != "null" and urlsplit(origin).netloc == request.headers.get("host", "")


def without_token(request: Request) -> str:
    """The request's path and query minus the access token, to redirect to once it is a cookie."""
    query = [(k, v) for k, v in parse_qsl(request.url.query) if k != TOKEN_QUERY]
    return request.url.path + (f"?{urlencode(query)}" if query else "")
