"""An import that works longer than its subscription's ack deadline is not delivered again while
it works (decision 0085): import is a pull worker whose client extends the message's lease.

On the emulators under the local stack, with the least ack deadline Pub/Sub allows (10 s) and a
stand-in import that works 35 s: the stage runs once, and no second delivery of the message
reaches the service, neither while it works (it would wait for the lease) nor after."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator

import pytest
from bp_common.bus.pubsub import PubSubPublisher
from bp_common.contracts.envelope import encode
from bp_common.contracts.events import EpisodesCollected, RobotEpisodes
from bp_common.ledger import RunLedger, StageState
from bp_common.ledger.firestore import FirestoreLedgerStore, make_firestore_client
from bp_common.topology import ROUTE_BY_STAGE
from bp_ops.stack import BUCKET, LocalStack
from google.cloud import pubsub_v1

from .slow_probe import CALLS, WORK_S

pytestmark = [pytest.mark.emulators, pytest.mark.timeout(600)]

ACK_DEADLINE_S = 10
# What the runtime logs when a delivery meets its unit held by another, or already committed.
REDELIVERED = ("another delivery holds", "duplicate of a committed stage")


@pytest.fixture
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    with LocalStack(
        tmp_path_factory.mktemp("long-import"),
        {"import": "tests.import.slow_probe:SLOW_IMPORT"},
        ack_deadline_s=ACK_DEADLINE_S,
        status_page=False,
    ) as stack:
        threading.Thread(target=stack.wait, daemon=True).start()
        yield stack
    os.environ.clear()
    os.environ.update(saved)


def _collected(project: str) -> str:
    run_id = "run-" + hashlib.sha256(f"long-{time.time()}".encode()).hexdigest()[:20]
    prefix = f"runs/long/{run_id}/episodes/"
    event = EpisodesCollected(
        scene_id="long",
        run_id=run_id,
        bucket=BUCKET,
        episodes_prefix=prefix,
        robots=[
            RobotEpisodes(
                robot="franka_panda",
                prefix=f"{prefix}franka_panda/",
                manifest=f"{prefix}franka_panda/manifest.json",
                episodes=1,
                succeeded=1,
                collision_free=1,
            )
        ],
    )
    PubSubPublisher(pubsub_v1.PublisherClient(), project).publish(encode(event))
    return run_id


def test_a_delivery_working_past_the_ack_deadline_is_not_delivered_again(
    stack: LocalStack,
) -> None:
    assert ROUTE_BY_STAGE["import"].delivery == "pull"
    ledger = RunLedger(FirestoreLedgerStore(make_firestore_client(stack.project)))
    run_id = _collected(stack.project)

    deadline = time.monotonic() + WORK_S + 120
    while time.monotonic() < deadline:
        record = ledger.get(run_id)
        stage = record.stages.get("import") if record else None
        if stage is not None and stage.state is StageState.SKIPPED:
            break
        time.sleep(1)
    else:
        pytest.fail("the slow import never finished")
    # Long enough for a redelivery of a message acked late, or never acked, to show.
    time.sleep(2 * ACK_DEADLINE_S)

    calls = (stack.root / "data" / "import" / CALLS).read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith(f"{run_id} attempt 1 "), calls
    lines = stack.services["import"].log.read_text().splitlines()
    assert [line for line in lines if run_id in line]  # the service logs its deliveries here
    assert not [line for line in lines if any(m in line for m in REDELIVERED)]
