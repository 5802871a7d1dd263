"""The push endpoint: OIDC verified outside `local`, delivery outcomes mapped to status codes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bp_common.config import PipelineEnv, Settings
from bp_common.runtime.limits import Transport
from bp_common.runtime.oidc import PushTokenVerifier
from bp_common.runtime.push import create_app
from bp_common.runtime.sinks import TopicDeadLetterSink, TopicRedelivery
from bp_common.wiring import deliverer, embedded
from bp_ops.oidc_issuer import LocalIssuer, SigningKey
from fastapi.testclient import TestClient

from tests.backbone.probe_stage import PROBE

AUDIENCE = "https://bp-export.example.run.app/push"
PUSHER = "pubsub-push@bp-test.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer()
    yield issuer
    issuer.close()


class Service:
    def __init__(self, root: Path, issuer: LocalIssuer | None) -> None:
        settings = Settings(_env_file=None, env=PipelineEnv.DEV if issuer else PipelineEnv.LOCAL)  # type: ignore[call-arg]
        wiring = embedded(root, settings)
        self.ports, self.bus = wiring.ports, wiring.bus
        verifier = (
            PushTokenVerifier(audience=AUDIENCE, service_account=PUSHER, certs_url=issuer.certs_url)
            if issuer
            else None
        )
        sink = TopicDeadLetterSink(self.bus, "bp-export-dead-letter")
        stage = deliverer(PROBE, self.ports, settings, transport=Transport.PUSH)
        self.client = TestClient(
            create_app(stage, sink, TopicRedelivery(self.bus), verifier=verifier)
        )

    def push(self, body: bytes, token: str | None = None, attempt: int = 1) -> int:
        self.ports.blobs.write_bytes("scenes/k/scene.usda", body)
        gen = str(self.ports.blobs.stat("scenes/k/scene.usda").generation)  # type: ignore[union-attr]
        obj = {"name": "scenes/k/scene.usda", "bucket": "local", "generation": gen}
        attrs = {
            "eventType": "OBJECT_FINALIZE",
            "payloadFormat": "JSON_API_V1",
            "bucketId": "local",
            "objectId": obj["name"],
            "objectGeneration": gen,
        }
        envelope = {
            "message": {
                "data": base64.b64encode(json.dumps(obj).encode()).decode(),
                "attributes": attrs,
                "messageId": "m-1",
            },
            "subscription": "projects/p/subscriptions/bp-export",
            "deliveryAttempt": attempt,
        }
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.post("/push", json=envelope, headers=headers).status_code


def test_valid_token_runs_the_stage(tmp_path: Path, issuer: LocalIssuer) -> None:
    svc = Service(tmp_path, issuer)
    assert svc.push(b"ok", issuer.token(audience=AUDIENCE, email=PUSHER)) == 204
    assert len(svc.ports.ledger.list()) == 1


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("missing", 401),
        ("garbage", 401),
        ("wrong audience", 401),
        ("wrong issuer", 401),
        ("expired", 401),
        ("forged signature", 401),
        ("other service account", 403),
        ("unverified email", 403),
    ],
)
def test_push_without_a_valid_token_is_refused_and_runs_nothing(
    tmp_path: Path, issuer: LocalIssuer, case: str, status: int
) -> None:
    svc = Service(tmp_path, issuer)
    forger = SigningKey(issuer.key.key_id)  # the issuer's key id on another key
    token = {
        "missing": None,
        "garbage": "not.a.jwt",
        "wrong audience": issuer.token(audience="https://elsewhere", email=PUSHER),
        "wrong issuer": issuer.token(
            audience=AUDIENCE, email=PUSHER, issuer="https://evil.example"
        ),
        "expired": issuer.token(audience=AUDIENCE, email=PUSHER, lifetime_s=-3600),
        "forged signature": issuer.token(audience=AUDIENCE, email=PUSHER, signer=forger.signer),
        "other service account": issuer.token(
            audience=AUDIENCE, email="x@p.iam.gserviceaccount.com"
        ),
        "unverified email": issuer.token(audience=AUDIENCE, email=PUSHER, email_verified=False),
    }[case]
    assert svc.push(b"ok", token) == status
    assert svc.ports.ledger.list() == []
    assert svc.bus.published("scenes-exported") == []


def test_outcomes_map_to_status_codes_and_permanent_failures_dead_letter(tmp_path: Path) -> None:
    svc = Service(tmp_path, None)
    assert svc.push(b"transient") == 503  # Pub/Sub retries with its backoff policy
    assert svc.push(b"permanent") == 204  # acked: it went to the dead-letter queue at once
    [letter] = svc.bus.published("bp-export-dead-letter")
    assert letter.attributes["bp_error_type"] == "InvalidInput"
    assert letter.attributes["bp_source_topic"] == "scene-uploads"
    assert svc.client.get("/healthz").json()["status"] == "ok"
    assert svc.client.get("/readyz").status_code == 200
