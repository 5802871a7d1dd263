"""A run's collection shards: the plan, the shards done and failed, and when it completed.

One document per run beside the runs (`shards`). Every change is one ledger transaction, so a
shard's completion and whether it completed the run are answered together: of all the
deliveries that complete shards, exactly one sees the run complete (`Completion.last`), however
they interleave or repeat. The fan-in it then does is idempotent, and the reconciler repeats it
for a run whose last completer died before it emitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from bp_common.errors import PermanentError
from bp_common.ledger.migrations import Document
from bp_common.ledger.store import Clock, LedgerStore, utcnow

SHARDS_KIND = "shards"


def shard_unit(shard_id: str) -> str:
    """The unit a shard's deliveries hold and record: a piece of the collect stage."""
    return f"collect/{shard_id}"


class PlanMismatch(PermanentError):
    """A run was planned again with other shards than its recorded plan."""


class UnknownShard(PermanentError):
    """A shard the run's plan does not have."""


class ShardDone(BaseModel):
    model_config = ConfigDict(extra="forbid")

    episodes: int = Field(ge=0)
    succeeded: int = Field(ge=0)
    manifest: str
    """The shard's create-only manifest in the run's folder."""
    done_at: datetime


class ShardFailed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    message: str
    at: datetime


class Collection(BaseModel):
    """One run's shards: planned (shard id -> episodes), done, failed."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    scene_id: str
    planned: dict[str, int]
    done: dict[str, ShardDone] = Field(default_factory=dict)
    failed: dict[str, ShardFailed] = Field(default_factory=dict)
    planned_at: datetime
    completed_at: datetime | None = None
    completed_by: str | None = None
    """The shard whose completion completed the run: its deliveries, and only they, fan in."""
    updated_at: datetime

    @property
    def complete(self) -> bool:
        return self.completed_at is not None

    @property
    def episodes_planned(self) -> int:
        return sum(self.planned.values())

    @property
    def episodes_done(self) -> int:
        return sum(d.episodes for d in self.done.values())

    def progress(self, now: datetime) -> Progress:
        elapsed = max((now - self.planned_at).total_seconds(), 0.0)
        rate = self.episodes_done / elapsed * 3600 if elapsed and self.episodes_done else 0.0
        left = self.episodes_planned - self.episodes_done
        return Progress(
            shards_done=len(self.done),
            shards_total=len(self.planned),
            shards_failed=len(self.failed),
            episodes_done=self.episodes_done,
            episodes_total=self.episodes_planned,
            episodes_per_hour=rate,
            eta_s=left / rate * 3600 if rate else None,
        )

    def to_document(self) -> Document:
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class Progress:
    shards_done: int
    shards_total: int
    shards_failed: int
    episodes_done: int
    episodes_total: int
    episodes_per_hour: float
    eta_s: float | None
    """None until an episode is done (no rate to go by); 0 once all are."""


@dataclass(frozen=True)
class Completion:
    last: bool
    """This completion made the run complete: its delivery does the fan-in."""
    collection: Collection


class ShardBook:
    def __init__(self, store: LedgerStore, clock: Clock = utcnow) -> None:
        self.store = store
        self.clock = clock

    def get(self, run_id: str) -> Collection | None:
        doc = self.store.read(run_id)
        return None if doc is None else Collection.model_validate(doc)

    def plan(self, run_id: str, scene_id: str, planned: dict[str, int]) -> Collection:
        """Record the run's plan; planning again must give the same shards."""

        def change(doc: Document | None) -> Document:
            if doc is not None:
                recorded = Collection.model_validate(doc)
                if recorded.planned != planned:
                    raise PlanMismatch(
                        "the run's shards were planned differently before",
                        run_id=run_id,
                        recorded=len(recorded.planned),
                        planned=len(planned),
                    )
                return doc
            now = self.clock()
            return Collection(
                run_id=run_id, scene_id=scene_id, planned=planned, planned_at=now, updated_at=now
            ).to_document()

        return Collection.model_validate(self.store.transact(run_id, change))

    def complete(
        self, run_id: str, shard_id: str, *, episodes: int, succeeded: int, manifest: str
    ) -> Completion:
        """Mark the shard done (again is a no-op); `last` for the one completion that completed
        the run."""
        last = False

        def change(doc: Document | None) -> Document:
            nonlocal last
            record = self._planned(doc, run_id, shard_id)
            last = False
            if shard_id in record.done:
                return doc or {}
            now = self.clock()
            record.done[shard_id] = ShardDone(
                episodes=episodes, succeeded=succeeded, manifest=manifest, done_at=now
            )
            record.failed.pop(shard_id, None)  # a replayed shard that failed before
            if set(record.done) == set(record.planned):
                record.completed_at = now
                record.completed_by = shard_id
                last = True
            record.updated_at = now
            return record.to_document()

        collection = Collection.model_validate(self.store.transact(run_id, change))
        return Completion(last=last, collection=collection)

    def fail(self, run_id: str, shard_id: str, error: PermanentError) -> Collection:
        """The shard failed for good (it is on the shards' dead-letter queue)."""

        def change(doc: Document | None) -> Document:
            record = self._planned(doc, run_id, shard_id)
            now = self.clock()
            if shard_id not in record.done:
                record.failed[shard_id] = ShardFailed(
                    type=type(error).__name__, message=error.message, at=now
                )
            record.updated_at = now
            return record.to_document()

        return Collection.model_validate(self.store.transact(run_id, change))

    @staticmethod
    def _planned(doc: Document | None, run_id: str, shard_id: str) -> Collection:
        record = None if doc is None else Collection.model_validate(doc)
        if record is None or shard_id not in record.planned:
            raise UnknownShard("no such shard in the run's plan", run_id=run_id, shard=shard_id)
        return record
