"""Stalled runs driven on: a run whose next stage has no holder and no progress gets that
stage's input event published again.

A message can go missing between stages without any stage failing: the Pub/Sub emulator has
been seen to drop a push request that a SIGKILL cut short (it never redelivers it), and an
operator may purge a queue by mistake. The run then waits for ever, and no alert fires, since no
message is left to grow old. A stage is stalled when the run has not ended, the stages before
it committed, its own lease is free (no live holder), and the run's record has not changed for
`stalled_after_s`. Its input is what the stage consumes: the previous stage's recorded event, or
for export a scene notification rebuilt from the run's source object. Publishing it again is as
safe as any duplicate (decisions 0050, 0051): a committed stage acks, a held one waits.

`bp up` looks every minute; `bp runs redrive [--dry-run]` does it once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from bp_common.bus.base import Publisher
from bp_common.contracts.envelope import Envelope
from bp_common.contracts.events import SceneUpload
from bp_common.ledger import RunLedger, RunRecord, StageState
from bp_common.ledger.run_state import run_state
from bp_common.topology import STAGE_NAMES

REDRIVE_ATTRIBUTE = "bp_redrive"


@dataclass(frozen=True)
class Redrive:
    run_id: str
    scene_id: str
    stage: str
    idle_s: float
    envelope: Envelope


def stalled_stage(run: RunRecord, now: datetime, stalled_after_s: float) -> str | None:
    """The stage a live run waits on, when nothing has moved for `stalled_after_s`."""
    state = run_state(run)
    if state.ended or (now - run.updated_at) < timedelta(seconds=stalled_after_s):
        return None
    for name in STAGE_NAMES:
        record = run.stages.get(name)
        if record is None or record.state is not StageState.SUCCEEDED:
            return name
        if record.published_at is None:
            return name  # committed, never published: its own delivery re-emits it
    return None


def input_of(run: RunRecord, stage: str) -> Envelope | None:
    """What the stage consumes for this run: the previous stage's event, or the notification
    of the run's scene object for export."""
    index = STAGE_NAMES.index(stage)
    if index == 0:
        if run.source is None:
            return None
        resource = {
            "name": run.source.object,
            "bucket": run.source.bucket,
            "generation": run.source.generation,
        }
        attributes = {
            "eventType": "OBJECT_FINALIZE",
            "payloadFormat": "JSON_API_V1",
            "bucketId": run.source.bucket,
            "objectId": run.source.object,
            "objectGeneration": run.source.generation,
        }
        return Envelope(SceneUpload.TOPIC, json.dumps(resource).encode(), attributes)
    previous = run.stages.get(STAGE_NAMES[index - 1])
    if previous is None or previous.emitted is None:
        return None
    emitted = previous.emitted
    return Envelope(emitted.topic, emitted.data.encode(), dict(emitted.attributes))


def stalled(
    ledger: RunLedger, now: datetime, stalled_after_s: float, limit: int = 500
) -> list[Redrive]:
    """Every stalled run among the latest `limit`, with the event that drives it on."""
    found = []
    for run in ledger.list(limit=limit):
        stage = stalled_stage(run, now, stalled_after_s)
        if stage is None or ledger.leases.state(run.run_id, stage) != "free":
            continue
        envelope = input_of(run, stage)
        if envelope is None:
            continue
        envelope.attributes[REDRIVE_ATTRIBUTE] = "1"
        found.append(
            Redrive(
                run.run_id,
                run.scene_id,
                stage,
                (now - run.updated_at).total_seconds(),
                envelope,
            )
        )
    return found


def redrive(
    ledger: RunLedger,
    publisher: Publisher,
    now: datetime,
    *,
    stalled_after_s: float,
    dry_run: bool = False,
) -> list[Redrive]:
    """Publish each stalled run's input again (unless `dry_run`); returns what was found."""
    found = stalled(ledger, now, stalled_after_s)
    if not dry_run:
        for item in found:
            publisher.publish(item.envelope)
    return found
