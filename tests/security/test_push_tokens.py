"""Push endpoints and the status page under bad tokens: every one is refused with 401 (403 for a
valid token of another caller), never a server error, never logged; the issuer's certificates
are fetched once per cache lifetime, and an unknown key id cannot make a fetch per request.

Tokens are real RS256 tokens signed with keys generated here; the certificates come from a
local issuer on 127.0.0.1 that counts the fetches it serves."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bp_common.bus.local import LocalDeadLetterQueue
from bp_common.config import PipelineEnv, Settings
from bp_common.runtime.limits import Transport
from bp_common.runtime.oidc import (
    CertificateCache,
    PushAuthError,
    PushTokenVerifier,
    cache_lifetime,
)
from bp_common.runtime.push import create_app
from bp_common.runtime.sinks import TopicDeadLetterSink, TopicRedelivery
from bp_common.wiring import deliverer, embedded
from bp_ops.oidc_issuer import LocalIssuer, SigningKey
from bp_ops.status import Guard, StatusSources
from bp_ops.status import create_app as status_app
from fastapi.testclient import TestClient

from tests.backbone.probe_stage import PROBE

AUDIENCE = "https://bp-export.example.run.app/push"
PUSHER = "pubsub-push@bp-test.iam.gserviceaccount.com"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header: object, claims: object, signature: bytes = b"") -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), b64(signature)]
    )


def claims(**override: object) -> dict[str, object]:
    now = int(time.time())
    return {
        "iss": "https://accounts.google.com",
        "aud": AUDIENCE,
        "email": PUSHER,
        "email_verified": True,
        "sub": "1",
        "iat": now,
        "exp": now + 600,
        **override,
    }


class Clock:
    """The certificate cache's monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    """Shared by the tests that neither rotate its key nor count its fetches."""
    with LocalIssuer(max_age_s=3600) as issuer:
        yield issuer


@pytest.fixture
def own_issuer() -> Iterator[LocalIssuer]:
    with LocalIssuer(max_age_s=3600) as issuer:
        yield issuer


@functools.cache
def foreign_key(key_id: str) -> SigningKey:
    """A key the issuer never published (RSA keys take a while to make: one per id)."""
    return SigningKey(key_id)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def verifier_of(issuer: LocalIssuer, clock: Clock, **cache: float) -> PushTokenVerifier:
    return PushTokenVerifier(
        audience=AUDIENCE,
        service_account=PUSHER,
        certs_url=issuer.certs_url,
        certificates=CertificateCache(issuer.certs_url, clock=clock, **cache),
    )


class PushService:
    """The export stage's push app (a probe stage) on the embedded backends, behind a verifier."""

    def __init__(self, root: Path, verifier: PushTokenVerifier) -> None:
        settings = Settings(_env_file=None, env=PipelineEnv.DEV)  # type: ignore[call-arg]
        wiring = embedded(root, settings)
        self.ports, self.bus = wiring.ports, wiring.bus
        stage = deliverer(PROBE, self.ports, settings, transport=Transport.PUSH)
        sink = TopicDeadLetterSink(self.bus, "bp-export-dead-letter")
        app = create_app(stage, sink, TopicRedelivery(self.bus), verifier=verifier)
        self.client = TestClient(app, raise_server_exceptions=False)

    def push(self, authorization: str | None) -> int:
        self.ports.blobs.write_bytes("scenes/k/scene.usda", b"ok")
        generation = str(self.ports.blobs.stat("scenes/k/scene.usda").generation)  # type: ignore[union-attr]
        notification = {"name": "scenes/k/scene.usda", "bucket": "local", "generation": generation}
        envelope = {
            "message": {
                "data": base64.b64encode(json.dumps(notification).encode()).decode(),
                "attributes": {
                    "eventType": "OBJECT_FINALIZE",
                    "payloadFormat": "JSON_API_V1",
                    "bucketId": "local",
                    "objectId": "scenes/k/scene.usda",
                    "objectGeneration": generation,
                },
                "messageId": "m-1",
            },
            "subscription": "projects/p/subscriptions/bp-export",
        }
        headers = {"Authorization": authorization} if authorization is not None else {}
        return self.client.post("/push", json=envelope, headers=headers).status_code


def bad_authorization(case: str, issuer: LocalIssuer) -> str:
    """The Authorization header of one kind of bad token."""
    key = issuer.key
    valid = issuer.token(audience=AUDIENCE, email=PUSHER)
    head = {"alg": "RS256", "typ": "JWT", "kid": key.key_id}
    stranger = foreign_key(key.key_id)  # same key id, another key: a forged signature
    hs256_input = (
        f"{b64(json.dumps({**head, 'alg': 'HS256'}).encode())}.{b64(json.dumps(claims()).encode())}"
    )
    tokens = {
        "no scheme": valid,
        "basic scheme": "Basic dXNlcjpwYXNz",
        "empty bearer": "Bearer ",
        "one segment": "Bearer eyJhbGciOiJSUzI1NiJ9",
        "four segments": f"Bearer {valid}.AAAA",
        "not base64": "Bearer ###.$$$.%%%",
        "header not json": f"Bearer {b64(b'{nope')}.{b64(b'{}')}.",
        "header a json list": f"Bearer {compact(['RS256'], claims())}",
        "payload a json list": f"Bearer {compact(head, [1, 2])}",
        "alg none": f"Bearer {compact({'alg': 'none', 'kid': key.key_id}, claims())}",
        "alg none without kid": f"Bearer {compact({'alg': 'none'}, claims())}",
        # HS256 keyed with the public certificate: the classic algorithm confusion
        "hs256": "Bearer "
        + hs256_input
        + "."
        + b64(
            hmac.new(key.certificate_pem.encode(), hs256_input.encode(), hashlib.sha256).digest()
        ),
        "unknown kid": "Bearer "
        + issuer.token(audience=AUDIENCE, email=PUSHER, signer=foreign_key("not-published").signer),
        "kid a list": f"Bearer {compact({**head, 'kid': ['a', 'b']}, claims())}",
        "no kid": f"Bearer {compact({'alg': 'RS256'}, claims())}",
        "forged signature": "Bearer "
        + issuer.token(audience=AUDIENCE, email=PUSHER, signer=stranger.signer),
        "truncated signature": f"Bearer {valid[:-10]}",
        "wrong issuer": "Bearer "
        + issuer.token(audience=AUDIENCE, email=PUSHER, issuer="https://evil.example"),
        "wrong audience": "Bearer " + issuer.token(audience="https://elsewhere", email=PUSHER),
        "expired": "Bearer " + issuer.token(audience=AUDIENCE, email=PUSHER, lifetime_s=-3600),
        "other service account": "Bearer "
        + issuer.token(audience=AUDIENCE, email="x@p.iam.gserviceaccount.com"),
        "unverified email": "Bearer "
        + issuer.token(audience=AUDIENCE, email=PUSHER, email_verified=False),
    }
    return tokens[case]


REFUSALS = {
    "no scheme": 401,
    "basic scheme": 401,
    "empty bearer": 401,
    "one segment": 401,
    "four segments": 401,
    "not base64": 401,
    "header not json": 401,
    "header a json list": 401,
    "payload a json list": 401,
    "alg none": 401,
    "alg none without kid": 401,
    "hs256": 401,
    "unknown kid": 401,
    "kid a list": 401,
    "no kid": 401,
    "forged signature": 401,
    "truncated signature": 401,
    "wrong issuer": 401,
    "wrong audience": 401,
    "expired": 401,
    "other service account": 403,
    "unverified email": 403,
}


def secrets_in(authorization: str) -> list[str]:
    """The parts of a header that must never be logged: the token and each of its segments."""
    token = authorization.partition(" ")[2] or authorization
    return [token, *(part for part in token.split(".") if len(part) >= 8)]


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_bad_token_is_refused_runs_nothing_and_is_never_logged(
    tmp_path: Path,
    issuer: LocalIssuer,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    service = PushService(tmp_path, verifier_of(issuer, clock))
    authorization = bad_authorization(case, issuer)
    with caplog.at_level(logging.DEBUG):
        assert service.push(authorization) == REFUSALS[case]
    assert service.ports.ledger.list() == []
    assert service.bus.published("scenes-exported") == []
    logged = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "push refused" in logged
    for secret in secrets_in(authorization):
        assert secret not in logged


def test_a_valid_token_runs_the_stage(tmp_path: Path, issuer: LocalIssuer, clock: Clock) -> None:
    service = PushService(tmp_path, verifier_of(issuer, clock))
    token = issuer.token(audience=AUDIENCE, email=PUSHER)
    assert service.push(f"Bearer {token}") == 204
    assert len(service.ports.ledger.list()) == 1


def test_certificates_are_fetched_once_per_cache_lifetime(
    own_issuer: LocalIssuer, clock: Clock
) -> None:
    own_issuer.max_age_s = 600
    verifier = verifier_of(own_issuer, clock, min_refresh_s=30)
    token = f"Bearer {own_issuer.token(audience=AUDIENCE, email=PUSHER)}"
    for _ in range(20):
        verifier.verify(token)
    assert own_issuer.fetches == 1
    clock.now += 599
    verifier.verify(token)
    assert own_issuer.fetches == 1
    clock.now += 2  # past max-age: fetched again, once
    verifier.verify(token)
    verifier.verify(token)
    assert own_issuer.fetches == 2


def test_an_unknown_key_id_fetches_at_most_once_per_interval_and_a_rotated_key_is_taken(
    own_issuer: LocalIssuer, clock: Clock
) -> None:
    verifier = verifier_of(own_issuer, clock, min_refresh_s=30)
    verifier.verify(f"Bearer {own_issuer.token(audience=AUDIENCE, email=PUSHER)}")
    unknown = bad_authorization("unknown kid", own_issuer)
    clock.now += 31
    refusals = []
    for _ in range(50):
        with pytest.raises(PushAuthError) as refusal:
            verifier.verify(unknown)
        refusals.append(refusal.value.status)
    assert refusals == [401] * 50
    assert own_issuer.fetches == 2  # the first unknown id fetched once; 49 more fetched nothing
    rotated = own_issuer.rotate()
    fresh = f"Bearer {own_issuer.token(audience=AUDIENCE, email=PUSHER)}"
    assert json.loads(base64.urlsafe_b64decode(fresh[7:].split(".")[0] + "=="))["kid"] == (
        rotated.key_id
    )
    with pytest.raises(PushAuthError, match="unknown signing key"):
        verifier.verify(fresh)  # within the interval: not fetched for
    assert own_issuer.fetches == 2
    clock.now += 30
    assert verifier.verify(fresh)["email"] == PUSHER
    assert own_issuer.fetches == 3


def test_cache_lifetime_follows_cache_control_and_expires() -> None:
    assert cache_lifetime({"Cache-Control": "public, max-age=19851, must-revalidate"}) == 19851
    assert cache_lifetime({"cache-control": "max-age=600", "Age": "100"}) == 500
    assert cache_lifetime({"Cache-Control": "no-store"}) == 0
    assert cache_lifetime({"Cache-Control": "no-cache, max-age=60"}) == 0
    dated = {"Date": "Sun, 06 Dec 2026 08:00:00 GMT", "Expires": "Sun, 06 Dec 2026 09:30:00 GMT"}
    assert cache_lifetime(dated) == 5400
    assert cache_lifetime({"Expires": "0"}) == 0
    assert cache_lifetime({}) is None


def refused(verifier: PushTokenVerifier, authorization: str) -> None:
    with pytest.raises(PushAuthError):
        verifier.verify(authorization)


class HangingCertificates:
    """A certificates endpoint on 127.0.0.1 that accepts and answers nothing until released."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.released = threading.Event()
        self.accepted = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/certs"

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        self.accepted.set()
        self.released.wait(30)
        connection.close()

    def close(self) -> None:
        self.released.set()
        self.thread.join(5)
        self.listener.close()


def test_a_slow_refetch_holds_back_no_request_whose_key_is_known(
    issuer: LocalIssuer, clock: Clock
) -> None:
    verifier = verifier_of(issuer, clock, min_refresh_s=30, timeout_s=20)
    known = f"Bearer {issuer.token(audience=AUDIENCE, email=PUSHER)}"
    verifier.verify(known)
    hanging = HangingCertificates()
    try:
        verifier.certificates.url = hanging.url
        clock.now += 31
        unknown = bad_authorization("unknown kid", issuer)
        stuck = threading.Thread(target=refused, args=(verifier, unknown), daemon=True)
        stuck.start()
        assert hanging.accepted.wait(10), "the unknown key id should have started a fetch"
        done = threading.Event()

        def verify_known() -> None:
            verifier.verify(known)
            done.set()

        threading.Thread(target=verify_known, daemon=True).start()
        assert done.wait(10), "a request with a known key waited for the refetch"
        assert stuck.is_alive()  # the refetch was still hanging all along
    finally:
        hanging.close()


def test_unreachable_certificates_answer_503_and_are_retried_at_a_bounded_rate(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    issuer = LocalIssuer()
    url = issuer.certs_url
    token = f"Bearer {issuer.token(audience=AUDIENCE, email=PUSHER)}"
    issuer.close()
    cache = CertificateCache(url, clock=clock, min_refresh_s=30, retry_s=5)
    verifier = PushTokenVerifier(
        audience=AUDIENCE, service_account=PUSHER, certs_url=url, certificates=cache
    )
    service = PushService(tmp_path, verifier)
    with caplog.at_level(logging.DEBUG):
        assert [service.push(token) for _ in range(10)] == [503] * 10
    assert cache.fetches == 1
    clock.now += 5
    assert service.push(token) == 503
    assert cache.fetches == 2
    for secret in secrets_in(token):
        assert secret not in caplog.text


@pytest.mark.parametrize("case", ["not base64", "alg none", "hs256", "unknown kid", "expired"])
def test_the_status_page_refuses_bad_tokens_with_401_and_never_logs_them(
    tmp_path: Path,
    issuer: LocalIssuer,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
    case: str,
) -> None:
    wiring = embedded(tmp_path, Settings(_env_file=None))  # type: ignore[call-arg]
    sources = StatusSources(
        wiring.ports.ledger, LocalDeadLetterQueue(wiring.bus), wiring.bus, wiring.ports.blobs
    )
    guard = Guard(verifier=verifier_of(issuer, clock))
    http = TestClient(status_app(sources, guard), raise_server_exceptions=False)
    authorization = bad_authorization(case, issuer)
    with caplog.at_level(logging.DEBUG):
        assert http.get("/api/runs", headers={"authorization": authorization}).status_code == 401
    for secret in secrets_in(authorization):
        assert secret not in caplog.text
    valid = issuer.token(audience=AUDIENCE, email=PUSHER)
    assert http.get("/api/runs", headers={"authorization": f"Bearer {valid}"}).status_code == 200
