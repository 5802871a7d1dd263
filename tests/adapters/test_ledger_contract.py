"""The run ledger contract, run over SQLite and over Firestore (official emulator, real client)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bp_common.errors import InvalidInput, Unavailable
from bp_common.ledger import LedgerStore, RunLedger, StageAlreadyCommitted, StageState
from bp_common.ledger.firestore import FirestoreLedgerStore, make_firestore_client
from bp_common.ledger.migrations import Document
from bp_common.ledger.model import EmittedEvent
from bp_common.ledger.shards import PlanMismatch, UnknownShard
from bp_common.ledger.sqlite import SqliteLedgerStore
from google.api_core.retry import Retry
from google.cloud import firestore

T0 = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
StoreFactory = Callable[[], LedgerStore]


@pytest.fixture(params=["sqlite", pytest.param("firestore", marks=pytest.mark.emulators)])
def new_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Makes handles on ONE store: each call is a fresh connection/client, as another process
    would have."""
    if request.param == "sqlite":
        return lambda: SqliteLedgerStore(tmp_path / "ledger.sqlite")
    request.getfixturevalue("emulators")
    collection: str = request.getfixturevalue("firestore_collection")
    return lambda: FirestoreLedgerStore(make_firestore_client(), collection)


@pytest.fixture
def store(new_store: StoreFactory) -> LedgerStore:
    return new_store()


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def put(store: LedgerStore, run_id: str, doc: Document) -> None:
    store.transact(run_id, lambda _: doc)


def doc(run_id: str, scene_id: str, updated_at: str, **extra: Any) -> Document:
    return {"run_id": run_id, "scene_id": scene_id, "updated_at": updated_at, **extra}


def test_a_document_round_trips_exactly(store: LedgerStore) -> None:
    assert store.read("run-a") is None
    original = doc("run-a", "kitchen", "2026-03-01T12:00:00.250000Z", schema_version=2,
                   nested={"counts": {"episodes": 12.0, "ok": 11.5}, "none": None,
                           "list": [1, "two", 3.5], "flag": True, "empty": {}})
    assert store.transact("run-a", lambda current: original) == original
    assert store.read("run-a") == original


def test_transact_sees_the_stored_document_and_replaces_it(store: LedgerStore) -> None:
    seen: list[Document | None] = []

    def bump(current: Document | None) -> Document:
        seen.append(current)
        n = (current or {}).get("n", 0)
        return doc("run-b", "kitchen", f"2026-03-01T12:00:0{n}Z", n=n + 1)

    store.transact("run-b", bump)
    store.transact("run-b", bump)
    assert seen[0] is None
    assert seen[-1] == doc("run-b", "kitchen", "2026-03-01T12:00:00Z", n=1)
    assert store.read("run-b") == doc("run-b", "kitchen", "2026-03-01T12:00:01Z", n=2)


def test_a_change_that_raises_stores_nothing(store: LedgerStore) -> None:
    put(store, "run-c", doc("run-c", "kitchen", "2026-03-01T12:00:00Z", n=1))

    def broken(current: Document | None) -> Document:
        raise InvalidInput("refusing")

    with pytest.raises(InvalidInput):
        store.transact("run-c", broken)
    with pytest.raises(InvalidInput):
        store.transact("run-new", broken)
    assert store.read("run-c") == doc("run-c", "kitchen", "2026-03-01T12:00:00Z", n=1)
    assert store.read("run-new") is None
    assert store.all_ids() == ["run-c"]


def test_scan_is_newest_first_limited_and_filtered_by_scene(store: LedgerStore) -> None:
    put(store, "run-1", doc("run-1", "kitchen", "2026-03-01T12:00:01Z"))
    put(store, "run-2", doc("run-2", "garage", "2026-03-01T12:00:03Z"))
    put(store, "run-3", doc("run-3", "kitchen", "2026-03-01T12:00:02Z"))
    put(store, "run-4", doc("run-4", "kitchen", "2026-03-01T12:00:04Z"))
    assert [d["run_id"] for d in store.scan(10)] == ["run-4", "run-2", "run-3", "run-1"]
    assert [d["run_id"] for d in store.scan(2)] == ["run-4", "run-2"]
    assert [d["run_id"] for d in store.scan(10, "kitchen")] == ["run-4", "run-3", "run-1"]
    assert [d["run_id"] for d in store.scan(1, "kitchen")] == ["run-4"]
    assert store.scan(10, "attic") == []
    assert store.all_ids() == ["run-1", "run-2", "run-3", "run-4"]


def test_concurrent_transactions_lose_no_update(new_store: StoreFactory) -> None:
    put(new_store(), "run-hot", doc("run-hot", "kitchen", "2026-03-01T12:00:00Z", n=0, by=[]))
    per_thread = 3  # the emulator resolves each conflict by a ~2 s lock timeout
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        store = new_store()  # its own connection or client, like a second process
        try:
            for _ in range(per_thread):
                store.transact("run-hot", lambda d: {**(d or {}), "n": (d or {})["n"] + 1,
                                                     "by": [*(d or {})["by"], name]})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    final = new_store().read("run-hot")
    assert final is not None
    assert final["n"] == 2 * per_thread
    assert sorted(final["by"]) == ["a"] * per_thread + ["b"] * per_thread


def test_run_ledger_records_a_run_stage_by_stage(store: LedgerStore) -> None:
    clock = Clock()
    ledger = RunLedger(store, clock=clock)
    source = ("pipeline-bucket", "scenes/kitchen/scene.usda", "1712345")

    ledger.stage_started("run-k", "kitchen", "export", attempt=1, source=source)
    clock.advance(2.5)
    ledger.stage_finished("run-k", "kitchen", "export", StageState.SUCCEEDED,
                          counts={"objects": 14, "tasks": 3}, note="exported")
    clock.advance(1)
    ledger.stage_started("run-k", "kitchen", "submit", attempt=1)
    clock.advance(1)
    ledger.stage_failed("run-k", "kitchen", "submit", Unavailable("collector down",
                                                                   host="127.0.0.1:50051"),
                        final=False)
    clock.advance(1)
    ledger.stage_started("run-k", "kitchen", "submit", attempt=2)
    clock.advance(1)
    ledger.stage_failed("run-k", "kitchen", "submit", InvalidInput("no robot fits"), final=True)

    run = ledger.get("run-k")
    assert run is not None
    assert run.state == "failed"
    assert run.source is not None and run.source.object == "scenes/kitchen/scene.usda"
    assert run.created_at == T0 and run.updated_at == T0 + timedelta(seconds=6.5)
    export = run.stages["export"]
    assert (export.state, export.attempts, export.duration_s) == (StageState.SUCCEEDED, 1, 2.5)
    assert export.counts == {"objects": 14.0, "tasks": 3.0} and export.note == "exported"
    submit = run.stages["submit"]
    assert (submit.state, submit.attempts) == (StageState.FAILED, 2)
    assert submit.error is not None
    assert (submit.error.type, submit.error.message, submit.error.permanent) == (
        "InvalidInput", "no robot fits", True)

    clock.advance(1)
    ledger.stage_started("run-g", "garage", "export", attempt=1)
    assert [r.run_id for r in ledger.list()] == ["run-g", "run-k"]
    assert [r.run_id for r in ledger.list(scene_id="kitchen")] == ["run-k"]
    assert ledger.list(limit=1)[0].state == "running"
    assert ledger.get("run-missing") is None


def test_a_stage_commits_once_and_a_second_commit_is_refused(store: LedgerStore) -> None:
    ledger = RunLedger(store)
    first = EmittedEvent(topic="scenes-exported", data='{"by": "first"}', attributes={})
    second = EmittedEvent(topic="scenes-exported", data='{"by": "second"}', attributes={})
    ledger.stage_started("run-once", "kitchen", "export", attempt=1)
    ledger.stage_finished("run-once", "kitchen", "export", StageState.SUCCEEDED, emitted=first)
    with pytest.raises(StageAlreadyCommitted):
        ledger.stage_finished("run-once", "kitchen", "export", StageState.SUCCEEDED, emitted=second)
    record = ledger.get("run-once")
    assert record is not None and record.stages["export"].emitted == first  # the first stands


def test_the_same_run_reads_back_identically_from_the_raw_store(store: LedgerStore) -> None:
    ledger = RunLedger(store, clock=Clock())
    record = ledger.stage_started("run-r", "kitchen", "export", attempt=1)
    raw = store.read("run-r")
    assert raw == record.to_document()
    assert raw is not None and raw["created_at"] == "2026-03-01T12:00:00.250000Z"


V1_DOCUMENT: Document = {
    "run_id": "run-legacy",
    "scene_id": "kitchen",
    "created": 1_767_225_600,  # 2026-01-01T00:00:00Z
    "updated": 1_767_225_660,
    "stages": {
        "export": {"status": "done", "started": 1_767_225_600, "finished": 1_767_225_630,
                   "counts": {"objects": 9}},
        "submit": {"status": "error", "started": 1_767_225_640, "finished": 1_767_225_660,
                   "error": "collector refused the scene", "attempts": 3},
    },
}


def test_a_v1_document_reads_as_current_and_migrate_all_rewrites_it(store: LedgerStore) -> None:
    put(store, "run-legacy", dict(V1_DOCUMENT))
    ledger = RunLedger(store, clock=Clock())

    run = ledger.get("run-legacy")
    assert run is not None
    assert run.schema_version == 3
    assert run.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert run.stages["export"].state is StageState.SUCCEEDED
    assert run.stages["export"].duration_s == 30.0
    assert run.stages["submit"].state is StageState.FAILED
    assert run.stages["submit"].error is not None
    assert run.stages["submit"].error.message == "collector refused the scene"
    assert run.stages["submit"].attempts == 3
    assert store.read("run-legacy") == V1_DOCUMENT  # reading never rewrites

    ledger.stage_started("run-new", "kitchen", "export", attempt=1)
    assert ledger.migrate_all() == 1

    raw = store.read("run-legacy")
    assert raw is not None
    assert raw["schema_version"] == 3
    assert raw == run.to_document()  # JSON-mode: ISO strings, exactly as the ledger writes
    assert raw["created_at"] == "2026-01-01T00:00:00Z"
    assert ledger.migrate_all() == 0
    assert [r.run_id for r in ledger.list()] == ["run-new", "run-legacy"]


def test_a_v2_stage_that_emitted_reads_as_published_when_it_finished(
    store: LedgerStore,
) -> None:
    emitted = {"topic": "scenes-exported", "data": "{}", "attributes": {}}
    stage = {"state": "succeeded", "attempts": 1, "started_at": "2026-01-01T00:00:00Z",
             "finished_at": "2026-01-01T00:00:30Z", "duration_s": 30.0, "counts": {},
             "error": None, "emitted": emitted, "note": None}
    put(store, "run-v2", doc("run-v2", "kitchen", "2026-01-01T00:00:30Z", schema_version=2,
                             source=None, created_at="2026-01-01T00:00:00Z",
                             stages={"export": stage, "submit": {**stage, "emitted": None}}))
    run = RunLedger(store).get("run-v2")
    assert run is not None
    # v2 published each event as it recorded it, so a duplicate must not re-emit it
    assert run.stages["export"].published_at == datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
    assert run.stages["submit"].published_at is None


def test_a_document_from_a_newer_schema_is_refused(store: LedgerStore) -> None:
    put(store, "run-future", doc("run-future", "kitchen", "2026-03-01T12:00:00Z",
                                 schema_version=4))
    with pytest.raises(InvalidInput):
        RunLedger(store).get("run-future")


@pytest.mark.emulators
def test_firestore_keeps_each_run_as_a_document_named_by_its_run_id(
    emulators: object, firestore_collection: str
) -> None:
    client = make_firestore_client()
    ledger = RunLedger(FirestoreLedgerStore(client, firestore_collection), clock=Clock())
    ledger.stage_started("run-doc", "kitchen", "export", attempt=1)
    snapshot = client.collection(firestore_collection).document("run-doc").get()
    assert snapshot.exists
    assert snapshot.get("scene_id") == "kitchen"
    assert isinstance(snapshot.get("updated_at"), str)  # not a Firestore timestamp


def test_firestore_unreachable_is_a_transient_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from bp_ops.emulators import free_port

    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    client: firestore.Client = make_firestore_client("p")
    store = FirestoreLedgerStore(client, "runs", retry=Retry(timeout=1.0), timeout=2.0)
    with pytest.raises(Unavailable):
        store.read("run-x")


def test_an_ended_run_is_stamped_to_expire_and_retention_removes_it(store: LedgerStore) -> None:
    clock = Clock()
    ledger = RunLedger(store, clock, retention=timedelta(days=30))
    run = "run-00000000000000000042"
    for stage in ("export", "submit", "import"):
        ledger.stage_started(run, "kitchen", stage, 1)
        clock.advance(5)
        ledger.stage_finished(run, "kitchen", stage, StageState.SUCCEEDED)
    live = ledger.get(run)
    assert live is not None and live.expire_at is None  # upload has not committed yet
    ledger.stage_started(run, "kitchen", "upload", 1)
    clock.advance(5)
    ended = ledger.stage_finished(run, "kitchen", "upload", StageState.SUCCEEDED)
    assert ended.expire_at == T0 + timedelta(seconds=20, days=30)
    raw = store.read(run)
    assert raw is not None
    if isinstance(store, FirestoreLedgerStore):  # a timestamp, which the TTL policy reads
        assert isinstance(raw["expire_at"], datetime)
    # a replay makes the run live again: no expiry until it ends again
    ledger.stage_started(run, "kitchen", "upload", 1)
    replayed = ledger.get(run)
    assert replayed is not None and replayed.expire_at is None
    assert ledger.remove(run) is True and ledger.get(run) is None
    assert ledger.remove(run) is False
    # content claims expire by the same retention, counted from the claim
    claim = ledger.claims.claim("content-1", "kitchen", run)
    assert claim.expire_at == clock.now + timedelta(days=30)
    if isinstance(store, FirestoreLedgerStore):
        raw_claim = ledger.claims.store.read("content-1")
        assert raw_claim is not None and isinstance(raw_claim["expire_at"], datetime)
    assert ledger.claims.release("kitchen", run) == 1 and ledger.claims.get("content-1") is None


def test_a_pool_admits_runs_up_to_its_cap_until_they_leave_or_their_time_is_up(
    store: LedgerStore,
) -> None:
    clock = Clock()
    pools = RunLedger(store, clock).admissions
    assert pools.admit("scene:kitchen", "run-a", 2, hold_s=60) == []
    assert pools.admit("scene:kitchen", "run-b", 2, hold_s=60) == []
    assert pools.admit("scene:kitchen", "run-c", 2, hold_s=60) == ["run-a", "run-b"]
    assert pools.admit("scene:kitchen", "run-a", 2, hold_s=60) == []  # a holder comes back
    assert pools.admit("scene:pantry", "run-c", 2, hold_s=60) == []  # pools are apart
    pools.release("scene:kitchen", "run-a")
    assert pools.admit("scene:kitchen", "run-c", 2, hold_s=60) == []
    assert pools.admitted("scene:kitchen") == ["run-b", "run-c"]
    clock.advance(61)  # run-b's process died: its place lapses with its deadline
    assert pools.admitted("scene:kitchen") == []
    assert pools.admit("scene:kitchen", "run-d", 1, hold_s=60) == []


def test_runs_racing_for_the_last_places_never_overfill_a_pool(new_store: StoreFactory) -> None:
    admitted: list[str] = []
    errors: list[BaseException] = []

    def worker(run_id: str) -> None:
        pools = RunLedger(new_store()).admissions  # its own client, like another process
        try:
            if pools.admit("project", run_id, 2, hold_s=60) == []:
                admitted.append(run_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"run-{n}",)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert len(admitted) == 2
    assert RunLedger(new_store()).admissions.admitted("project") == sorted(admitted)


def test_a_runs_shards_complete_once_each_and_exactly_one_completion_is_the_last(
    store: LedgerStore,
) -> None:
    clock = Clock()
    shards = RunLedger(store, clock).shards
    planned = {"ur5e.pick.00000": 5, "ur5e.pick.00005": 5, "ur5e.place.00000": 3}
    shards.plan("run-s", "kitchen", planned)
    assert shards.plan("run-s", "kitchen", planned).planned == planned  # again: the same plan
    with pytest.raises(PlanMismatch):
        shards.plan("run-s", "kitchen", {"ur5e.pick.00000": 10})
    with pytest.raises(UnknownShard):
        shards.complete("run-s", "fetch.pick.00000", episodes=1, succeeded=1, manifest="m")

    clock.advance(1800)
    first = shards.complete("run-s", "ur5e.pick.00005", episodes=5, succeeded=4, manifest="a")
    assert not first.last
    progress = first.collection.progress(clock())
    assert (progress.shards_done, progress.shards_total) == (1, 3)
    assert (progress.episodes_done, progress.episodes_total) == (5, 13)
    assert progress.episodes_per_hour == pytest.approx(10.0)
    assert progress.eta_s == pytest.approx(8 / 10 * 3600)

    failed = shards.fail("run-s", "ur5e.place.00000", InvalidInput("the mug is gone"))
    assert failed.failed["ur5e.place.00000"].type == "InvalidInput"
    assert not shards.complete("run-s", "ur5e.pick.00000", episodes=5, succeeded=5,
                               manifest="b").last
    replayed = shards.complete("run-s", "ur5e.place.00000", episodes=3, succeeded=3,
                               manifest="c")
    assert replayed.last and replayed.collection.complete
    assert replayed.collection.completed_by == "ur5e.place.00000"
    assert replayed.collection.failed == {}  # the replay healed it
    again = shards.complete("run-s", "ur5e.place.00000", episodes=3, succeeded=3, manifest="c")
    assert not again.last  # a redelivered last shard does not fan in twice
    assert again.collection.progress(clock()).eta_s == 0.0


def test_shards_completing_at_once_elect_exactly_one_last(new_store: StoreFactory) -> None:
    ids = [f"fetch.pick.{n:05d}" for n in range(3)]
    RunLedger(new_store()).shards.plan("run-race", "kitchen", dict.fromkeys(ids, 1))
    lasts: list[str] = []
    errors: list[BaseException] = []

    def worker(shard: str) -> None:
        book = RunLedger(new_store()).shards  # its own client, like another worker
        try:
            for _ in range(2):  # and each shard delivered twice
                if book.complete("run-race", shard, episodes=1, succeeded=1, manifest=shard).last:
                    lasts.append(shard)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(shard,)) for shard in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert len(lasts) == 1
