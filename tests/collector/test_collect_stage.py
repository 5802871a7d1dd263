"""The collect stage end to end on the embedded backends: a run's shards are worked (each
longer than several lease periods), every planned episode is committed once, and the last shard
fans in one `episodes-collected` that import can read; a shard delivered again after the fan-in
changes nothing; a poison shard is dead-lettered alone, and a dead-lettered shard replayed
resumes its run; a stalled collection is driven on with only its waiting shards; the reconciler
heals a worker that died between the last shard's commit and the fan-in."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bp_collector.shards import stage as stage_module
from bp_collector.shards.reconcile import reconcile
from bp_collector.shards.stage import COLLECT
from bp_collector.shards.work import ShardInputsInvalid, collect_shard
from bp_common.bus.local import LocalDeadLetterQueue
from bp_common.contracts import decode
from bp_common.contracts.envelope import Envelope
from bp_common.contracts.events import CollectionShard, EpisodesCollected
from bp_common.ledger.run_state import run_state
from bp_common.ledger.shards import shard_unit
from bp_common.runtime.delivery import Outcome
from bp_common.runtime.stage import Stage
from bp_episode_format import read_episode
from bp_export.stage import EXPORT
from bp_ops import dlq
from bp_ops.embedded import LOCAL_BUCKET, EmbeddedPipeline
from bp_ops.redrive import redrive
from bp_submit.stage import make_submit_stage

from tests.submit.conftest import KITCHEN, settings, tiny


def collecting(root: Path, episodes_per_task: int, **values: Any) -> EmbeddedPipeline:
    """Export, submit and collect on one folder; shards of one episode each."""
    submit = make_submit_stage(tiny(episodes_per_task=episodes_per_task, episodes_per_shard=1))
    stages: dict[str, Stage[Any, Any]] = {"export": EXPORT, "submit": submit, "collect": COLLECT}
    return EmbeddedPipeline(root, settings(**values), stages)


def test_a_runs_shards_are_collected_once_each_and_fanned_in_once(tmp_path: Path) -> None:
    # Leases of 2 s: every shard outlasts several lease periods, renewed while it works.
    p = collecting(tmp_path, episodes_per_task=2, lease_ttl_s=2)
    run = p.drain(p.drop_scene(KITCHEN))
    shards = p.bus.published("collection-shards")
    [envelope] = p.bus.published("episodes-collected")
    event = decode("episodes-collected", envelope.data, envelope.attributes)
    assert isinstance(event, EpisodesCollected) and event.run_id == run.run_id
    [robot] = event.robots
    manifest = json.loads(p.ports.blobs.read_bytes(robot.manifest))
    ids = [e["episode_id"] for e in manifest["episodes"]]
    assert len(ids) == len(set(ids)) == len(shards) == robot.episodes
    for entry in manifest["episodes"]:
        folder = tmp_path / "bucket" / robot.prefix / entry["prefix"]
        assert read_episode(folder, verify=True).manifest["episode_id"] == entry["episode_id"]
    record = p.ports.ledger.get(run.run_id)
    assert record is not None
    assert run_state(record).stages["collect"] == "succeeded"
    collection = p.ports.ledger.shards.get(run.run_id)
    assert collection is not None and collection.complete
    assert p.ports.ledger.admissions.admitted("project") == []  # the run left the cap
    for shard_id in collection.planned:  # one delivery each, never taken over, no dead letter
        assert record.stages[f"collect/{shard_id}"].attempts == 1
        lease = p.ports.ledger.leases.get(run.run_id, f"collect/{shard_id}")
        assert lease is not None and [t.end.value for t in lease.log] == ["released"]

    for shard in shards:  # every shard delivered again: nothing new anywhere
        p.bus.publish(shard)
    p.drain(run)
    assert len(p.bus.published("episodes-collected")) == 1
    again = json.loads(p.ports.blobs.read_bytes(robot.manifest))
    assert again == manifest


def test_the_reconciler_heals_a_worker_that_died_between_the_last_commit_and_the_emit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = collecting(tmp_path, episodes_per_task=1)
    run = p.drop_scene(KITCHEN)

    def died(*args: object) -> object:
        raise RuntimeError("the worker died here")

    monkeypatch.setattr(stage_module, "fan_in", died)
    lost: list[str] = []
    while (message := p.bus.receive(["export", "submit", "collect"])) is not None:
        name = message.id.rsplit(".", 1)[-1]
        verdict = p.deliverers[name].deliver(message)
        if verdict.outcome is not Outcome.ACK:
            lost.append(name)  # its process died: the message is lost on the way back
        p.bus.ack(message)
    assert lost == ["collect"]  # the last shard: it completed the run, then died
    collection = p.ports.ledger.shards.get(run.run_id)
    assert collection is not None and collection.complete
    assert p.bus.published("episodes-collected") == []

    monkeypatch.undo()
    later = datetime.now(UTC) + timedelta(hours=1)
    [nudge] = reconcile(p.ports.ledger, p.bus, later, stuck_after_s=600)
    assert nudge.shard_id == collection.completed_by and "never fanned in" in nudge.why
    p.drain(run)
    assert len(p.bus.published("episodes-collected")) == 1
    assert reconcile(p.ports.ledger, p.bus, later, stuck_after_s=600) == []


def test_a_poison_shard_is_dead_lettered_alone_and_the_run_names_it(tmp_path: Path) -> None:
    p = collecting(tmp_path, episodes_per_task=1)
    run = p.drop_scene(KITCHEN)
    while (message := p.bus.receive(["export", "submit"])) is not None:
        name = message.id.rsplit(".", 1)[-1]
        assert p.deliverers[name].deliver(message).outcome is Outcome.ACK
        p.bus.ack(message)
    first, *rest = p.bus.published("collection-shards")
    shard = CollectionShard.model_validate_json(first.data)
    poison = shard.model_copy(update={"robot": "no_such_robot"})  # no simulator offers it
    genuine = p.bus.receive(["collect"])
    assert genuine is not None and genuine.data == first.data
    p.bus.ack(genuine)  # the genuine first shard's message is lost, a poisoned one comes instead
    p.bus.publish(Envelope(first.topic, poison.model_dump_json().encode(), first.attributes))
    p.drain(run)
    with LocalDeadLetterQueue(p.bus).claim("collect", 10) as letters:
        assert [letter.attributes["bp_error_type"] for letter in letters] == ["ShardInputsInvalid"]
    collection = p.ports.ledger.shards.get(run.run_id)
    assert collection is not None and not collection.complete
    assert sorted(collection.done) == sorted(
        CollectionShard.model_validate_json(e.data).shard_id for e in rest
    )  # every other shard went through
    assert list(collection.failed) == [shard.shard_id]
    record = p.ports.ledger.get(run.run_id)
    assert record is not None
    state = run_state(record)
    assert state.state.value == "failed" and state.stage == "collect"
    assert state.reason is not None and shard.shard_id in state.reason
    assert p.bus.published("episodes-collected") == []


def test_a_dead_lettered_shard_replayed_resumes_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = collecting(tmp_path, episodes_per_task=1)
    calls = 0

    def first_refused(shard: CollectionShard, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:  # e.g. a worker whose simulator lacked the robot that day
            raise ShardInputsInvalid("the simulator offers no such robot", shard=shard.shard_id)
        return collect_shard(shard, *args, **kwargs)

    monkeypatch.setattr(stage_module, "collect_shard", first_refused)
    run = p.drain(p.drop_scene(KITCHEN))
    collection = p.ports.ledger.shards.get(run.run_id)
    assert collection is not None and len(collection.failed) == 1
    assert p.bus.published("episodes-collected") == []

    report = dlq.replay(LocalDeadLetterQueue(p.bus), p.bus, stage="collect")
    assert len(report.replayed) == 1
    p.drain(run)
    collection = p.ports.ledger.shards.get(run.run_id)
    assert collection is not None and collection.complete and not collection.failed
    assert len(p.bus.published("episodes-collected")) == 1
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and run_state(record).stages["collect"] == "succeeded"


def test_a_worker_asked_to_stop_hands_its_shard_back_unused(tmp_path: Path) -> None:
    p = collecting(tmp_path, episodes_per_task=1)
    run = p.drop_scene(KITCHEN)
    while (message := p.bus.receive(["export", "submit"])) is not None:
        name = message.id.rsplit(".", 1)[-1]
        assert p.deliverers[name].deliver(message).outcome is Outcome.ACK
        p.bus.ack(message)
    shard = p.bus.receive(["collect"])
    assert shard is not None
    collect = p.deliverers["collect"]
    collect.stopping.set()  # SIGTERM, or a Spot VM's preemption notice
    verdict = collect.deliver(shard)
    assert verdict.outcome is Outcome.DEFER and verdict.error is None  # no attempt used
    unit = f"collect/{CollectionShard.model_validate_json(shard.data).shard_id}"
    lease = p.ports.ledger.leases.get(run.run_id, unit)
    assert lease is not None and lease.log[-1].outcome == "handed back"

    collect.stopping.clear()  # another worker takes the shard up
    p.bus.publish(Envelope(shard.topic, shard.data, shard.attributes))
    p.bus.ack(shard)
    p.drain(run)
    assert len(p.bus.published("episodes-collected")) == 1


def test_a_stalled_collection_is_driven_on_with_only_the_shards_nobody_did_or_holds(
    tmp_path: Path,
) -> None:
    p = collecting(tmp_path, episodes_per_task=3)
    run = p.drop_scene(KITCHEN)
    while (message := p.bus.receive(["export", "submit"])) is not None:
        name = message.id.rsplit(".", 1)[-1]
        assert p.deliverers[name].deliver(message).outcome is Outcome.ACK
        p.bus.ack(message)
    done = p.bus.receive(["collect"])
    assert done is not None and p.deliverers["collect"].deliver(done).outcome is Outcome.ACK
    p.bus.ack(done)
    lost = []
    while (message := p.bus.receive(["collect"])) is not None:
        p.bus.ack(message)  # gone, as the emulator loses what a restart held
        lost.append(CollectionShard.model_validate_json(message.data).shard_id)
    held, *waiting = lost
    p.ports.ledger.leases.acquire(
        run.run_id, run.scene_id, shard_unit(held), "another-worker", ttl_s=7200
    )

    later = datetime.now(UTC) + timedelta(hours=1)
    here = ["export", "submit", "collect"]
    [found] = redrive(p.ports, LOCAL_BUCKET, later, stalled_after_s=60, stages=here)
    driven = [CollectionShard.model_validate_json(e.data).shard_id for e in found.envelopes]
    assert found.stage == "collect" and driven == waiting  # not the done one, not the held one
    assert redrive(p.ports, LOCAL_BUCKET, later, stalled_after_s=60, stages=["export"]) == []
