"""One holder per run and stage: duplicates wait, hand back without an attempt, or take over a
lapsed lease; never two at work. Real deliveries on the embedded backends, as separate
deliverers (each as another process would have) sharing one folder."""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bp_common.bus import Message
from bp_common.bus.base import ATTR_DEFERRALS
from bp_common.config import Settings
from bp_common.contracts.envelope import Envelope
from bp_common.ids import run_id_for
from bp_common.ledger.leases import Lease, TenureEnd, overlaps
from bp_common.runtime.delivery import Deliverer, Outcome, Verdict
from bp_common.runtime.holding import holder_gone, holder_name
from bp_common.runtime.limits import Footprint, Machine, Transport, work_slots_for
from bp_common.runtime.push import create_app
from bp_common.runtime.sinks import TopicDeadLetterSink, TopicRedelivery
from bp_common.wiring import EmbeddedWiring, deliverer, embedded
from fastapi.testclient import TestClient

from tests.backbone.probe_stage import PROBE


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class Folder:
    """One embedded folder; each `deliverer()` is a separate worker on it."""

    def __init__(self, root: Path, **values: Any) -> None:
        self.settings = settings(**values)
        self.wiring: EmbeddedWiring = embedded(root, self.settings)
        self.ports = self.wiring.ports
        self.bus = self.wiring.bus

    def deliverer(self, **values: Any) -> Deliverer:
        s = self.settings.model_copy(update=values)
        return deliverer(PROBE, self.ports, s)

    def drop(self, body: str) -> Message:
        """The scene's upload notification, as the bus delivers it."""
        self.ports.blobs.write_bytes("scenes/kitchen/scene.usda", body.encode())
        info = self.ports.blobs.stat("scenes/kitchen/scene.usda")
        assert info is not None
        generation = str(info.generation)
        resource = {
            "name": "scenes/kitchen/scene.usda",
            "bucket": "local",
            "generation": generation,
        }
        attributes = {
            "eventType": "OBJECT_FINALIZE",
            "payloadFormat": "JSON_API_V1",
            "bucketId": "local",
            "objectId": "scenes/kitchen/scene.usda",
            "objectGeneration": generation,
        }
        self.bus.publish(Envelope("scene-uploads", json.dumps(resource).encode(), attributes))
        message = self.bus.receive(["export"])
        assert message is not None
        return message

    def run_id(self) -> str:
        [run] = self.ports.ledger.list()
        return run.run_id


def run_of(message: Message) -> str:
    return run_id_for(
        "local", message.attributes["objectId"], message.attributes["objectGeneration"]
    )


def in_thread(work: Deliverer, message: Message) -> tuple[threading.Thread, list[Verdict]]:
    verdicts: list[Verdict] = []
    thread = threading.Thread(target=lambda: verdicts.append(work.deliver(message)))
    thread.start()
    return thread, verdicts


def wait_until(what: str, done: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_duplicate_waits_for_the_holder_and_acks_once_it_committed(tmp_path: Path) -> None:
    folder = Folder(tmp_path / "out", lease_ttl_s=3)
    go = tmp_path / "go"
    message = folder.drop(f"slow-export {go}")
    holder, held = in_thread(folder.deliverer(), message)
    wait_until("the holder to start", lambda: folder.ports.ledger.list())
    duplicate, waited = in_thread(folder.deliverer(), message)
    time.sleep(2.5)  # the duplicate polls; the holder renews its 3 s lease meanwhile
    assert not waited and duplicate.is_alive()
    go.touch()
    holder.join(30)
    duplicate.join(30)
    assert [v.outcome for v in held] == [Outcome.ACK] and not held[0].duplicate
    assert [(v.outcome, v.duplicate) for v in waited] == [(Outcome.ACK, True)]
    assert len(folder.bus.published("scenes-exported")) == 1
    record = folder.ports.ledger.get(folder.run_id())
    assert record is not None and record.stages["export"].attempts == 1
    lease = folder.ports.ledger.leases.get(folder.run_id(), "export")
    assert lease is not None and [t.outcome for t in lease.log] == ["succeeded"]
    assert lease.log[0].end is TenureEnd.RELEASED


def test_a_duplicate_out_of_wait_budget_hands_back_without_using_an_attempt(
    tmp_path: Path,
) -> None:
    folder = Folder(tmp_path / "out", wait_budget_s=0.5)
    message = folder.drop("ok")
    # another delivery holds this run's export, alive, for a minute
    taken = folder.ports.ledger.leases.acquire(
        run_of(message), "kitchen", "export", "elsewhere", 60
    )
    assert isinstance(taken, Lease)
    busy = folder.deliverer()
    assert busy.deliver(message).outcome is Outcome.DEFER
    folder.bus.defer(message, delay_s=0)
    again = folder.bus.receive(["export"])
    assert again is not None
    assert again.delivery_attempt == message.delivery_attempt  # no attempt used
    assert again.attributes[ATTR_DEFERRALS] == "1"

    spent = replace(again, attributes={**again.attributes, ATTR_DEFERRALS: "20"})
    last = busy.deliver(spent)  # past max_deferrals: an ordinary retry, counted
    assert last.outcome is Outcome.RETRY and last.error is not None
    assert last.error.kind == "LeaseHeld"
    assert folder.ports.ledger.get(run_of(message)) is None  # no work, nothing recorded


def test_a_crashed_holders_lease_lapses_and_the_next_delivery_takes_over(tmp_path: Path) -> None:
    folder = Folder(tmp_path / "out", lease_ttl_s=2)
    message = folder.drop("ok")
    run_id = run_of(message)
    crashed = folder.ports.ledger.leases.acquire(run_id, "kitchen", "export", "crashed", 2)
    assert isinstance(crashed, Lease)  # and it never renews
    started = time.monotonic()
    verdict = folder.deliverer().deliver(message)
    assert verdict.outcome is Outcome.ACK and not verdict.duplicate
    assert time.monotonic() - started >= 1.5  # it waited for the lapse, then worked
    lease = folder.ports.ledger.leases.get(run_id, "export")
    assert lease is not None
    assert (lease.log[0].holder, lease.log[0].end) == ("crashed", TenureEnd.LAPSED)
    assert lease.log[-1].outcome == "succeeded"
    assert overlaps(lease, datetime.now(UTC)) == []


def test_a_push_that_finds_its_unit_held_is_handed_back_and_answered_204(tmp_path: Path) -> None:
    folder = Folder(tmp_path / "out", wait_budget_s=0.5)
    message = folder.drop("ok")
    taken = folder.ports.ledger.leases.acquire(
        run_of(message), "kitchen", "export", "elsewhere", 60
    )
    assert isinstance(taken, Lease)
    push = deliverer(PROBE, folder.ports, folder.settings, transport=Transport.PUSH)
    sink = TopicDeadLetterSink(folder.bus, "bp-export-dead-letter")
    client = TestClient(create_app(push, sink, TopicRedelivery(folder.bus), verifier=None))
    body = {
        "message": {
            "data": base64.b64encode(message.data).decode(),
            "attributes": message.attributes,
            "messageId": "m-1",
        },
        "subscription": "projects/p/subscriptions/bp-export",
        "deliveryAttempt": 3,
    }
    assert client.post("/push", json=body).status_code == 204  # acked: no attempt counted
    copies = [e for e in folder.bus.published("scene-uploads") if ATTR_DEFERRALS in e.attributes]
    assert [(c.data, c.attributes[ATTR_DEFERRALS]) for c in copies] == [(message.data, "1")]
    assert folder.ports.ledger.get(run_of(message)) is None


def test_work_slots_follow_the_stages_footprint_and_the_machine() -> None:
    machine = Machine(cpus=2, memory_mb=8192)
    assert work_slots_for(Footprint(cpus=1.0, memory_mb=1024), machine) == 2
    assert work_slots_for(Footprint(cpus=0.25, memory_mb=256), machine) == 8
    assert work_slots_for(Footprint(cpus=0.25, memory_mb=4096), machine) == 1  # memory bound
    assert work_slots_for(Footprint(cpus=4.0, memory_mb=512), machine) == 1  # at least one
    assert work_slots_for(Footprint(cpus=0.01, memory_mb=1), machine) == 32  # capped


def test_in_the_embedded_default_a_holder_whose_process_is_gone_is_taken_over_at_once(
    tmp_path: Path,
) -> None:
    folder = Folder(tmp_path / "out", lease_ttl_s=60)
    message = folder.drop("ok")
    boot, pid, _, rand = holder_name().split(":")
    dead = f"{boot}:{pid}:1:{rand}"  # this pid, started at another time: that process is gone
    assert holder_gone(dead) and not holder_gone(holder_name())
    taken = folder.ports.ledger.leases.acquire(run_of(message), "kitchen", "export", dead, 60)
    assert isinstance(taken, Lease)
    started = time.monotonic()
    verdict = folder.deliverer().deliver(message)
    assert verdict.outcome is Outcome.ACK and not verdict.duplicate
    assert time.monotonic() - started < 30  # not the 60 s the lease would have lived
    lease = folder.ports.ledger.leases.get(run_of(message), "export")
    assert lease is not None and (lease.log[0].holder, lease.log[0].end) == (dead, TenureEnd.LAPSED)
    assert overlaps(lease, datetime.now(UTC)) == []
