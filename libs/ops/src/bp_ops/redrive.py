"""Stalled runs driven on: a run whose next stage has no holder and no progress gets that
stage's input event published again.

A message can go missing between stages without any stage failing: the Pub/Sub emulator has
been seen to drop push requests that a SIGKILL cut short (it never redelivers them), and an
operator may purge a queue by mistake. The run then waits for ever, and no alert fires, since no
message is left to grow old. A stage is stalled when the run has not ended, the stages before
it committed, its own lease is free (no live holder), and the run's record has not changed for
`stalled_after_s`. Its input is what the stage consumes: the previous stage's recorded event, or
for export a scene notification rebuilt from the run's source object. A scene file whose
notification never started a run (no record, its content claimed by no run) is stalled too.
Publishing it again is as safe as any duplicate (decisions 0050, 0051): a committed stage acks,
a held one waits.

`bp up` looks every minute; `bp runs redrive [--dry-run]` does it once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bp_common.blobstore import BlobInfo
from bp_common.contracts.envelope import Envelope
from bp_common.contracts.events import CollectionShard, SceneUpload
from bp_common.ids import SCENE_FILE_NAMES, run_id_for
from bp_common.ledger import RunLedger, RunRecord, StageState
from bp_common.ledger.model import RunSource
from bp_common.ledger.run_state import run_state, stage_records
from bp_common.ledger.shards import shard_unit
from bp_common.runtime.stage import Ports
from bp_common.runtime.uploads import claimed_run
from bp_common.topology import ROUTE_BY_STAGE, STAGE_NAMES

REDRIVE_ATTRIBUTE = "bp_redrive"


@dataclass(frozen=True)
class Redrive:
    run_id: str
    scene_id: str
    stage: str
    idle_s: float
    envelopes: tuple[Envelope, ...]
    """The stage's input: one event, or every event of the previous stage's fan-out."""


def stalled_stage(
    run: RunRecord, now: datetime, stalled_after_s: float, stages: Sequence[str] = STAGE_NAMES
) -> str | None:
    """The stage a live run waits on, when nothing has moved for `stalled_after_s` and that
    stage is among `stages` (those running here)."""
    state = run_state(run)
    if state.ended or (now - run.updated_at) < timedelta(seconds=stalled_after_s):
        return None
    records = stage_records(run)
    for name in STAGE_NAMES:
        record = records.get(name)
        if record is None or record.state is not StageState.SUCCEEDED:
            return name if name in stages else None
        if record.published_at is None:
            # committed, never published: its own delivery re-emits it
            return name if name in stages else None
    return None


def input_of(run: RunRecord, stage: str) -> tuple[Envelope, ...]:
    """What the stage consumes for this run: the previous stage's events (a fan-out's every
    one), or the notification of the run's scene object for export."""
    index = STAGE_NAMES.index(stage)
    if index == 0:
        return () if run.source is None else (notification(run.source),)
    previous = stage_records(run).get(STAGE_NAMES[index - 1])
    if previous is None or previous.emitted is None:
        return ()
    return tuple(
        Envelope(e.topic, e.data.encode(), {**e.attributes, REDRIVE_ATTRIBUTE: "1"})
        for e in (previous.emitted, *previous.fanned_out)
    )


def notification(source: RunSource) -> Envelope:
    """The Cloud Storage notification of one scene object's generation."""
    resource = {"name": source.object, "bucket": source.bucket, "generation": source.generation}
    attributes = {
        "eventType": "OBJECT_FINALIZE",
        "payloadFormat": "JSON_API_V1",
        "bucketId": source.bucket,
        "objectId": source.object,
        "objectGeneration": source.generation,
    }
    return Envelope(SceneUpload.TOPIC, json.dumps(resource).encode(), attributes)


def _scene_files(ports: Ports) -> list[BlobInfo]:
    return [
        info
        for info in ports.blobs.list("scenes/")
        if len(info.key.split("/")) == 3 and info.key.rsplit("/", 1)[-1] in SCENE_FILE_NAMES
    ]


def unstarted(ports: Ports, bucket: str, now: datetime, stalled_after_s: float) -> list[Redrive]:
    """Scene files older than `stalled_after_s` whose notification never started a run."""
    found = []
    for scene in _scene_files(ports):
        if scene.updated is None or now - scene.updated < timedelta(seconds=stalled_after_s):
            continue
        scene_id = scene.key.split("/")[1]
        run_id = run_id_for(bucket, scene.key, scene.generation)
        if ports.ledger.get(run_id) is not None:
            continue
        owner = claimed_run(ports.ledger, ports.blobs, scene_id, scene)
        if owner is not None and ports.ledger.get(owner) is not None:
            continue  # the content maps onto a run that has it
        # (a claim without a run: the delivery that claimed it died before recording the run)
        envelope = notification(
            RunSource(bucket=bucket, object=scene.key, generation=str(scene.generation))
        )
        envelope.attributes[REDRIVE_ATTRIBUTE] = "1"
        idle = (now - scene.updated).total_seconds()
        found.append(Redrive(run_id, scene_id, STAGE_NAMES[0], idle, (envelope,)))
    return found


def waiting_shards(ledger: RunLedger, run_id: str, envelopes: Iterable[Envelope]) -> list[Envelope]:
    """Of a run's shard messages, those whose shard is neither done nor held by a worker."""
    collection = ledger.shards.get(run_id)
    done = set(collection.done) if collection else set()
    waiting = []
    for envelope in envelopes:
        shard_id = CollectionShard.model_validate_json(envelope.data).shard_id
        if shard_id not in done and ledger.leases.state(run_id, shard_unit(shard_id)) == "free":
            waiting.append(envelope)
    return waiting


def stalled(
    ledger: RunLedger,
    now: datetime,
    stalled_after_s: float,
    limit: int = 500,
    stages: Sequence[str] = STAGE_NAMES,
) -> list[Redrive]:
    """Every stalled run among the latest `limit` whose next stage is among `stages`, with the
    events that drive it on (a run collected in shards: its shards not done and not held)."""
    found = []
    for run in ledger.list(limit=limit):
        stage = stalled_stage(run, now, stalled_after_s, stages)
        if stage is None or ledger.leases.state(run.run_id, stage) != "free":
            continue
        envelopes = input_of(run, stage)
        if ROUTE_BY_STAGE[stage].consumes == CollectionShard.TOPIC:
            envelopes = tuple(waiting_shards(ledger, run.run_id, envelopes))
        if not envelopes:
            continue
        idle = (now - run.updated_at).total_seconds()
        found.append(Redrive(run.run_id, run.scene_id, stage, idle, envelopes))
    return found


def redrive(
    ports: Ports,
    bucket: str,
    now: datetime,
    *,
    stalled_after_s: float,
    dry_run: bool = False,
    stages: Sequence[str] = STAGE_NAMES,
) -> list[Redrive]:
    """Publish each stalled run's input again (unless `dry_run`); returns what was found.
    `bucket` is the scenes bucket's name, which run ids derive from; `stages`, those running
    (a stage that runs nowhere here is not waited on)."""
    found = stalled(ports.ledger, now, stalled_after_s, stages=stages)
    if STAGE_NAMES[0] in stages:
        found += unstarted(ports, bucket, now, stalled_after_s)
    if not dry_run:
        for item in found:
            for envelope in item.envelopes:
                ports.publisher.publish(envelope)
    return found
