"""Submit's streaming-pull worker keeps pulling through a Pub/Sub emulator restart: the stack
starts the emulator again (empty) and makes the subscription again, and the worker's stream,
broken or silent, is opened again, so a message published afterwards is delivered."""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from bp_common.bus.pubsub import PubSubPublisher
from bp_common.contracts.envelope import encode
from bp_common.contracts.events import ExportSummary, SceneExported
from bp_common.ledger import RunLedger, StageState
from bp_common.ledger.firestore import FirestoreLedgerStore, make_firestore_client
from bp_common.topology import ROUTE_BY_STAGE
from bp_ops.emulators import PUBSUB
from bp_ops.stack import BUCKET, LocalStack
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1

pytestmark = [pytest.mark.emulators, pytest.mark.timeout(600)]


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    os.environ["BP_STREAM_IDLE_REOPEN_S"] = "20"  # the services inherit it: a quicker reopen
    with LocalStack(
        tmp_path_factory.mktemp("pull-stream"),
        {"submit": "tests.chaos.pull_probe:PULL_PROBE"},
        status_page=False,
    ) as stack:
        threading.Thread(target=stack.wait, daemon=True).start()
        yield stack
    os.environ.clear()
    os.environ.update(saved)


def _exported(project: str, n: int) -> str:
    run_id = "run-" + hashlib.sha256(f"pull-{n}-{time.time()}".encode()).hexdigest()[:20]
    event = SceneExported(
        scene_id="pull-probe",
        run_id=run_id,
        bucket=BUCKET,
        source_object="scenes/pull-probe/scene.usda",
        source_generation=1,
        export_prefix=f"runs/pull-probe/{run_id}/export/",
        manifest=f"runs/pull-probe/{run_id}/export/export_manifest.json",
        manifest_sha256="0" * 64,
        summary=ExportSummary(objects=1, tasks=1, robots=["franka_panda"]),
    )
    PubSubPublisher(pubsub_v1.PublisherClient(), project).publish(encode(event))
    return run_id


def _pulled(ledger: RunLedger, run_id: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = ledger.get(run_id)
        stage = record.stages.get("submit") if record else None
        if stage is not None and stage.state is StageState.SKIPPED:
            return True
        time.sleep(1)
    return False


def _subscribed(project: str, timeout_s: float) -> bool:
    """Whether submit's subscription exists again: the stack makes the topology on the fresh
    emulator after starting it, and a message published before then reaches no subscription."""
    subscriber = pubsub_v1.SubscriberClient()
    path = subscriber.subscription_path(project, ROUTE_BY_STAGE["submit"].subscription)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            subscriber.get_subscription(subscription=path)
            return True
        except (gexc.NotFound, gexc.ServiceUnavailable):
            time.sleep(0.5)
    return False


def test_the_pull_worker_delivers_again_after_the_emulator_restarts(stack: LocalStack) -> None:
    ledger = RunLedger(FirestoreLedgerStore(make_firestore_client(stack.project)))
    assert _pulled(ledger, _exported(stack.project, 1), timeout_s=60)
    worker = stack.services["submit"].pid

    emulator = stack.emulators.processes[PUBSUB]
    os.killpg(emulator.process.pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while stack.emulators.processes[PUBSUB] is emulator and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stack.emulators.processes[PUBSUB] is not emulator, "the stack did not restart it"
    assert _subscribed(stack.project, timeout_s=60), "the stack did not make the topology again"

    # within the idle reopen (BP_STREAM_IDLE_REOPEN_S, 20 s here) and a good margin
    assert _pulled(ledger, _exported(stack.project, 2), timeout_s=120)
    assert stack.services["submit"].pid == worker  # the same worker: no restart needed
