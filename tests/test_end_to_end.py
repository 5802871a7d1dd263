"""The whole chain as its services started by `bp up --secure` on the emulators: a scene
uploaded with google-cloud-storage comes out as a verified dataset in the Firebase bucket,
passing lerobot's own conformance check, with one trace across all of them. The services
export OTLP to a receiver on loopback, and emit every metric the Terraform's dashboards, alerts
and SLOs read. Production's security is on all the way: every push carries an OIDC token the
service verifies, the stack's gRPC collector serves mTLS only (docs/decisions/0105), and every
secret comes from Secret Manager."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from bp_common.blobstore.gcs import make_storage_client
from bp_common.contracts import DatasetsPublished, decode
from bp_ops.oidc_issuer import LocalIssuer
from bp_ops.secure_stack import PUSH_ACCOUNT
from bp_ops.stack import BUCKET, FIREBASE_BUCKET
from google.cloud import pubsub_v1

from tests.bp_up import start_bp_up
from tests.telemetry.dashboard_references import references, unmet
from tests.telemetry.otlp_receiver import OtlpReceiver, ReceivedSpan

# Its own waits (publication, the conformance check) run longer than the suite's 300 s default.
pytestmark = [pytest.mark.emulators, pytest.mark.conformance, pytest.mark.timeout(1500)]
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "kitchen_table"
CONFORMANCE = REPO.parent / "shared" / "tools" / "lerobot-conformance" / "check"
STAGES = ("export", "submit", "collect", "import", "upload")


@dataclass
class Stack:
    """`bp up` running in its own process, and what its stack.env says about it."""

    root: Path
    env: dict[str, str]
    process: subprocess.Popen[str]
    telemetry: OtlpReceiver
    printed: str
    """What `bp up` printed until the stack was up."""

    def push_endpoints(self) -> dict[str, str]:
        """Each push service's own endpoint (behind the relay that signs for Pub/Sub)."""
        return dict(re.findall(r"service (\w+): pid \d+, push (http://\S+/push),", self.printed))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("e2e")
    telemetry = OtlpReceiver()
    env = {"BP_ROBOTS": "franka_panda", "BP_EPISODES_PER_TASK": "1"}
    # The standard variables, which every service `bp up` starts inherits.
    env |= telemetry.environment("http/protobuf")
    started = start_bp_up(root, env, "--secure")
    try:
        yield Stack(root, started.env, started.process, telemetry, "".join(started.printed))
    finally:
        started.stop()
        telemetry.close()


def trace_ids_of_run(stack: Stack, run_id: str) -> dict[str, set[str]]:
    """Trace ids each service logged while handling this run."""
    found: dict[str, set[str]] = {}
    for stage in STAGES:
        for line in (stack.root / "logs" / f"{stage}.log").read_text().splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if entry.get("run_id") == run_id and "trace_id" in entry:
                found.setdefault(stage, set()).add(entry["trace_id"])
    return found


def test_a_dropped_scene_is_published_verified_and_conformant(
    stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    project = stack.env["BP_PROJECT_ID"]
    subscriber = pubsub_v1.SubscriberClient()
    watch = subscriber.subscription_path(project, "test-watch-published")
    subscriber.create_subscription(
        request={
            "name": watch,
            "topic": pubsub_v1.PublisherClient.topic_path(project, "datasets-published"),
        }
    )
    storage = make_storage_client(project)
    scenes = storage.bucket(BUCKET)
    scenes.blob("scenes/kitchen_table/scene_manifest.json").upload_from_filename(
        EXAMPLE / "scene_manifest.json"
    )
    scenes.blob("scenes/kitchen_table/scene.usda").upload_from_filename(EXAMPLE / "scene.usda")

    received: list[Any] = []
    deadline = time.monotonic() + 900
    while not received and time.monotonic() < deadline:
        response = subscriber.pull(request={"subscription": watch, "max_messages": 5}, timeout=60)
        received += response.received_messages
    assert received, "no datasets-published within 15 minutes; see the service logs in " + str(
        stack.root
    )
    message = received[0].message
    event = decode("datasets-published", message.data, dict(message.attributes))
    assert isinstance(event, DatasetsPublished) and event.scene_id == "kitchen_table"
    [published] = event.published
    assert published.robot == "franka_panda" and published.storage_bucket == FIREBASE_BUCKET
    assert published.prefix == f"datasets/kitchen_table/franka_panda/{event.run_id}/"
    assert published.uploaded == published.verified > 0

    firebase = storage.bucket(FIREBASE_BUCKET)
    latest = json.loads(
        firebase.blob("datasets/kitchen_table/franka_panda/LATEST").download_as_bytes()
    )
    assert event.run_id in json.dumps(latest)
    local = tmp_path / "dataset"
    for blob in storage.list_blobs(FIREBASE_BUCKET, prefix=published.prefix):
        target = local / blob.name[len(published.prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        blob.download_to_filename(target)
    dataset = next(p.parent.parent for p in local.rglob("meta/info.json"))
    check = subprocess.run(
        [str(CONFORMANCE), str(dataset)], capture_output=True, text=True, timeout=900, check=False
    )
    assert check.returncode == 0 and "VALID" in check.stdout, check.stdout + check.stderr

    traces = trace_ids_of_run(stack, event.run_id)
    assert set(traces) == set(STAGES), traces
    assert len(set().union(*traces.values())) == 1, traces
    assert message.attributes["traceparent"].split("-")[1] in traces["upload"]

    # The same trace, exported: one span per service, all in the run's one trace.
    exported = stack.telemetry.received
    deadline = time.monotonic() + 30
    spans: list[ReceivedSpan] = []
    while {s.service for s in spans} != {f"bp-{stage}" for stage in STAGES}:
        assert time.monotonic() < deadline, f"spans of the run: {spans}"
        time.sleep(0.5)
        spans = [s for s in exported.spans if ("bp.run_id", event.run_id) in s.attributes]
    assert {s.trace_id for s in spans} == set(traces["upload"])

    # Every metric a dashboard widget, alert policy or SLO reads arrived, with its labels.
    refs = references()
    while problems := unmet(refs, exported.metric_labels()):
        assert time.monotonic() < deadline + 30, "\n".join(problems)
        time.sleep(1.0)
    services = {p.service for p in exported.points}
    assert services >= {f"bp-{stage}" for stage in STAGES}

    # Every push the emulator made reached its service through the signing relay and verified.
    for stage in ("export", "import", "upload"):
        assert "push refused" not in (stack.root / "logs" / f"{stage}.log").read_text()


def test_production_security_is_on_throughout(stack: Stack) -> None:
    printed = stack.printed
    assert "secure: Secret Manager (TLS)" in printed and "mTLS on 127.0.0.1:" in printed
    # The collector served TLS with client certificates, from keys only Secret Manager held.
    assert "mTLS" in (stack.root / "logs" / "collector.log").read_text()
    for folder in ("secrets", "secure", "logs"):
        for path in (stack.root / folder).rglob("*"):
            if path.is_file():
                assert b"PRIVATE KEY" not in path.read_bytes(), path
    # A push that does not come through Pub/Sub's signer is refused, whoever signs it.
    endpoints = stack.push_endpoints()
    assert set(endpoints) == {"export", "upload"}  # submit and import pull (0005, 0085)
    envelope: dict[str, Any] = {"message": {"data": "", "messageId": "x"}, "subscription": "x"}
    with LocalIssuer() as stranger:
        for stage, endpoint in endpoints.items():
            assert requests.post(endpoint, json=envelope, timeout=30).status_code == 401
            forged = stranger.token(audience=endpoint, email=PUSH_ACCOUNT)
            headers = {"Authorization": f"Bearer {forged}"}
            answer = requests.post(endpoint, json=envelope, headers=headers, timeout=30)
            assert answer.status_code == 401
            assert forged not in (stack.root / "logs" / f"{stage}.log").read_text()
