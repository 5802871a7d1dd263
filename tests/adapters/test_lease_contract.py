"""Leases and content claims in the ledger, the same assertions over SQLite and over Firestore
(official emulator, real client): one holder per unit, lapse and take-over, a log that proves it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from bp_common.errors import InvalidName
from bp_common.ledger import LedgerStore, RunLedger
from bp_common.ledger.firestore import FirestoreLedgerStore, make_firestore_client
from bp_common.ledger.leases import Held, Lease, LeaseLost, TenureEnd, overlaps
from bp_common.ledger.sqlite import SqliteLedgerStore

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
StoreFactory = Callable[[], LedgerStore]


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.emulators)])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Handles on ONE ledger, each as another process would open it."""
    if request.param == "sqlite":
        return lambda: SqliteLedgerStore(tmp_path / "ledger.sqlite")
    request.getfixturevalue("emulators")
    collection: str = request.getfixturevalue("firestore_collection")
    return lambda: FirestoreLedgerStore(make_firestore_client(), collection)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(new_store: StoreFactory, clock: Clock) -> RunLedger:
    return RunLedger(new_store(), clock=clock)


def test_a_live_lease_keeps_a_second_holder_out_until_it_is_released(ledger: RunLedger) -> None:
    first = ledger.leases.acquire("run-a", "kitchen", "import", "worker-1", ttl_s=30)
    assert isinstance(first, Lease) and first.token == 1
    second = ledger.leases.acquire("run-a", "kitchen", "import", "worker-2", ttl_s=30)
    assert second == Held("worker-1", first.expires_at)
    assert ledger.leases.state("run-a", "import") == Held("worker-1", first.expires_at)
    # other units and other runs are leased on their own
    assert isinstance(ledger.leases.acquire("run-a", "kitchen", "upload", "w", ttl_s=30), Lease)
    assert isinstance(ledger.leases.acquire("run-b", "kitchen", "import", "w", ttl_s=30), Lease)

    assert ledger.leases.release(first, "succeeded")
    assert ledger.leases.state("run-a", "import") == "free"
    third = ledger.leases.acquire("run-a", "kitchen", "import", "worker-2", ttl_s=30)
    assert isinstance(third, Lease) and third.token == 2
    record = ledger.leases.get("run-a", "import")
    assert record is not None
    [tenure] = record.log
    assert (tenure.holder, tenure.end, tenure.outcome) == (
        "worker-1",
        TenureEnd.RELEASED,
        "succeeded",
    )


def test_a_crashed_holders_lease_lapses_and_the_next_delivery_takes_over(
    ledger: RunLedger, clock: Clock
) -> None:
    crashed = ledger.leases.acquire("run-c", "kitchen", "export", "dead", ttl_s=10)
    assert isinstance(crashed, Lease)
    clock.advance(9)
    assert isinstance(ledger.leases.acquire("run-c", "kitchen", "export", "next", 10), Held)
    clock.advance(2)  # past the expiry: nobody renewed
    taken = ledger.leases.acquire("run-c", "kitchen", "export", "next", ttl_s=10)
    assert isinstance(taken, Lease) and taken.token == 2

    with pytest.raises(LeaseLost):
        ledger.leases.renew(crashed, ttl_s=10)
    with pytest.raises(LeaseLost):
        ledger.leases.check(crashed)
    # a late release takes nothing back; it only says what the lapsed tenure's work came to
    assert not ledger.leases.release(crashed, "succeeded")
    record = ledger.leases.get("run-c", "export")
    assert record is not None and record.holder == "next" and record.token == 2
    [lapsed] = record.log
    assert lapsed.holder == "dead" and lapsed.end is TenureEnd.LAPSED
    assert lapsed.outcome == "succeeded"
    assert lapsed.ended_at == T0 + timedelta(seconds=10)  # it ended at its expiry, not later
    assert overlaps(record, clock()) == []


def test_renewal_keeps_a_working_holder_in_and_a_lapsed_one_out(
    ledger: RunLedger, clock: Clock
) -> None:
    lease = ledger.leases.acquire("run-r", "kitchen", "submit", "worker", ttl_s=10)
    assert isinstance(lease, Lease)
    for _ in range(5):  # 25 s of work with a 10 s lease, renewed every 5 s
        clock.advance(5)
        lease = ledger.leases.renew(lease, ttl_s=10)
        assert isinstance(ledger.leases.acquire("run-r", "kitchen", "submit", "dup", 10), Held)
    ledger.leases.check(lease)
    clock.advance(10.5)
    with pytest.raises(LeaseLost):
        ledger.leases.renew(lease, ttl_s=10)
    assert ledger.leases.state("run-r", "submit") == "free"
    # released after lapsing, with nobody taking over: the log says it lapsed, at its expiry
    assert ledger.leases.release(lease, "succeeded")
    record = ledger.leases.get("run-r", "submit")
    assert record is not None
    assert [t.end for t in record.log] == [TenureEnd.LAPSED]
    assert record.log[0].ended_at == lease.expires_at


def test_the_log_is_bounded_and_units_name_pieces_of_a_run(ledger: RunLedger, clock: Clock) -> None:
    for i in range(60):
        lease = ledger.leases.acquire("run-s", "kitchen", "collect/shard-0003", f"w{i}", 5)
        assert isinstance(lease, Lease)
        clock.advance(1)
        ledger.leases.release(lease, "done")
    record = ledger.leases.get("run-s", "collect/shard-0003")
    assert record is not None and record.token == 60
    assert len(record.log) == 50 and record.log[-1].holder == "w59"
    assert overlaps(record, clock()) == []
    with pytest.raises(InvalidName):
        ledger.leases.acquire("run-s", "kitchen", "../import", "w", 5)


def test_racing_holders_take_turns_and_never_overlap(new_store: StoreFactory) -> None:
    """Threads with their own connections (as separate processes) race for one unit."""
    won: list[str] = []
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        ledger = RunLedger(new_store())
        try:
            for i in range(3):
                holder = f"{name}-{i}"
                while True:
                    lease = ledger.leases.acquire("run-hot", "kitchen", "import", holder, 30)
                    if isinstance(lease, Lease):
                        break
                    time.sleep(0.02)  # held: ask again shortly, as a redelivered message would
                won.append(holder)
                ledger.leases.release(lease, "done")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert not errors
    record = RunLedger(new_store()).leases.get("run-hot", "import")
    assert (
        record is not None
        and record.token == 6
        and sorted(won) == sorted(t.holder for t in record.log)
    )
    assert overlaps(record, datetime.now(UTC)) == []


def test_the_first_claim_on_a_scenes_content_keeps_it(ledger: RunLedger) -> None:
    first = ledger.claims.claim("c0ffee", "kitchen", "run-first")
    again = ledger.claims.claim("c0ffee", "kitchen", "run-second")
    assert first.run_id == again.run_id == "run-first"
    assert ledger.claims.get("c0ffee") == first
    assert ledger.claims.get("other") is None
    # claims and leases live beside the runs, never among them
    assert ledger.list() == []
