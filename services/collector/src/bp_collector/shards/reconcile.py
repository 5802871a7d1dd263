"""The reconciler: runs whose collection needs a nudge, and the shard messages that give it.

Two things can leave a run waiting with no message on its way:
- the worker that completed the run's last shard died between its ledger commit and the fan-in
  (or between the fan-in's commit and its publish): the completing shard's message is
  published again, and its delivery fans in (or re-emits) exactly once;
- a shard planned but not done, whose unit no one holds, has seen no progress past the
  deadline (its message was lost, or it is on the dead-letter queue): its message is
  published again (a dead-lettered shard fails again, into the same queue).

Publishing a shard again is as safe as any duplicate: a done shard commits nothing new.
`bp collector reconcile` does it once; in the cloud a scheduled job runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bp_common.bus import Publisher
from bp_common.contracts.envelope import Envelope
from bp_common.contracts.events import CollectionShard
from bp_common.ledger import RunLedger, RunRecord, StageState
from bp_common.ledger.model import EmittedEvent
from bp_common.ledger.run_state import run_state

RECONCILE_ATTRIBUTE = "bp_reconciled"


@dataclass(frozen=True)
class Nudge:
    run_id: str
    shard_id: str
    why: str
    envelope: Envelope


def _shard_messages(run: RunRecord) -> dict[str, EmittedEvent]:
    """The run's shard messages, as submit's commit recorded them, by shard id."""
    submit = run.stages.get("submit")
    if submit is None or submit.emitted is None:
        return {}
    found = {}
    for emitted in (submit.emitted, *submit.fanned_out):
        if emitted.topic == CollectionShard.TOPIC:
            found[CollectionShard.model_validate_json(emitted.data).shard_id] = emitted
    return found


def _envelope(emitted: EmittedEvent) -> Envelope:
    return Envelope(
        emitted.topic, emitted.data.encode(), {**emitted.attributes, RECONCILE_ATTRIBUTE: "1"}
    )


def nudges(ledger: RunLedger, now: datetime, stuck_after_s: float, limit: int = 500) -> list[Nudge]:
    """Every shard message that a live run among the latest `limit` waits for."""
    found: list[Nudge] = []
    for run in ledger.list(limit=limit):
        if run_state(run).ended:
            continue
        collection = ledger.shards.get(run.run_id)
        if collection is None:
            continue
        messages = _shard_messages(run)
        if collection.complete:
            shard = collection.completed_by or ""
            unit = run.stages.get(f"collect/{shard}")
            emitted = unit is not None and unit.state is StageState.SUCCEEDED and unit.emitted
            if emitted and unit is not None and unit.published_at is not None:
                continue
            if shard in messages and ledger.leases.state(run.run_id, f"collect/{shard}") == "free":
                why = "complete, never fanned in" if not emitted else "fanned in, never published"
                found.append(Nudge(run.run_id, shard, why, _envelope(messages[shard])))
            continue
        if now - collection.updated_at < timedelta(seconds=stuck_after_s):
            continue
        for shard in sorted(set(collection.planned) - set(collection.done)):
            if shard in messages and ledger.leases.state(run.run_id, f"collect/{shard}") == "free":
                found.append(Nudge(run.run_id, shard, "no progress", _envelope(messages[shard])))
    return found


def reconcile(
    ledger: RunLedger,
    publisher: Publisher,
    now: datetime,
    *,
    stuck_after_s: float,
    dry_run: bool = False,
) -> list[Nudge]:
    """Publish every nudge (unless `dry_run`); returns them."""
    found = nudges(ledger, now, stuck_after_s)
    if not dry_run:
        for nudge in found:
            publisher.publish(nudge.envelope)
    return found
