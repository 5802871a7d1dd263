"""RunLedger: records stage starts, outcomes and errors; the store underneath is swappable."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from bp_common.errors import PipelineError
from bp_common.ledger.admissions import ADMISSIONS_KIND, Admissions
from bp_common.ledger.claims import CLAIMS_KIND, ContentClaims
from bp_common.ledger.leases import LEASES_KIND, LeaseBook
from bp_common.ledger.migrations import Document, upgrade
from bp_common.ledger.model import (
    EmittedEvent,
    RunRecord,
    RunSource,
    StageError,
    StageRecord,
    StageState,
)
from bp_common.ledger.run_state import run_state
from bp_common.ledger.shards import SHARDS_KIND, ShardBook
from bp_common.ledger.store import Clock, LedgerStore, utcnow

DEFAULT_RETENTION = timedelta(days=90)

__all__ = ["Clock", "LedgerStore", "RunLedger", "utcnow"]


class StageAlreadyCommitted(PipelineError):
    """The stage had already succeeded: another delivery committed it first; its commit stands."""


class RunLedger:
    """The runs, and beside them (in sibling stores) the leases on their units of work, the
    scene contents they claimed, the pools that cap runs collecting at once, and each run's
    collection shards."""

    def __init__(
        self, store: LedgerStore, clock: Clock = utcnow, retention: timedelta = DEFAULT_RETENTION
    ) -> None:
        self.store = store
        self.clock = clock
        self.retention = retention
        """How long an ended run is kept: its `expire_at` is its end plus this."""
        self.leases = LeaseBook(store.sibling(LEASES_KIND), clock)
        self.claims = ContentClaims(store.sibling(CLAIMS_KIND), clock, retention)
        self.admissions = Admissions(store.sibling(ADMISSIONS_KIND), clock)
        self.shards = ShardBook(store.sibling(SHARDS_KIND), clock)

    def get(self, run_id: str) -> RunRecord | None:
        doc = self.store.read(run_id)
        return None if doc is None else RunRecord.model_validate(upgrade(doc)[0])

    def list(self, limit: int = 50, scene_id: str | None = None) -> list[RunRecord]:
        return [RunRecord.model_validate(upgrade(d)[0]) for d in self.store.scan(limit, scene_id)]

    def remove(self, run_id: str) -> bool:
        """Delete the run's entry (retention on a store without a TTL policy); False if absent."""
        return self.store.delete(run_id)

    def migrate_all(self) -> int:
        """Rewrite every stored document at the current schema version; returns how many changed."""
        changed = 0
        for run_id in self.store.all_ids():
            doc = self.store.read(run_id)
            if doc is not None and upgrade(doc)[1]:
                # Through the model, so the stored document is JSON-mode (ISO strings) like every
                # other write, not the datetimes that upgrade() returns.
                self.store.transact(
                    run_id,
                    lambda d: RunRecord.model_validate(upgrade(d)[0]).to_document() if d else {},
                )
                changed += 1
        return changed

    def _update(self, run_id: str, scene_id: str, change: Callable[[RunRecord], None]) -> RunRecord:
        now = self.clock()

        def apply(doc: Document | None) -> Document:
            record = (
                RunRecord.model_validate(upgrade(doc)[0])
                if doc
                else RunRecord(run_id=run_id, scene_id=scene_id, created_at=now, updated_at=now)
            )
            change(record)
            record.updated_at = now
            # Retention counts from the end; a replay that makes the run live again clears it.
            if not run_state(record).ended:
                record.expire_at = None
            elif record.expire_at is None:
                record.expire_at = now + self.retention
            return record.to_document()

        return RunRecord.model_validate(self.store.transact(run_id, apply))

    def stage_started(
        self,
        run_id: str,
        scene_id: str,
        stage: str,
        attempt: int,
        source: tuple[str, str, str] | None = None,
    ) -> RunRecord:
        now = self.clock()

        def change(run: RunRecord) -> None:
            if source and run.source is None:
                run.source = RunSource(bucket=source[0], object=source[1], generation=source[2])
            old = run.stages.get(stage)
            # A delivery that died (running) or failed transiently (retrying) counts towards the
            # same round; after a final failure a replay starts a new round.
            same_round = old is not None and old.state in (StageState.RUNNING, StageState.RETRYING)
            run.stages[stage] = StageRecord(
                state=StageState.RUNNING,
                attempts=max(attempt, old.attempts + 1 if same_round and old else 1),
                started_at=now,
                counts=old.counts if old else {},
            )

        return self._update(run_id, scene_id, change)

    def stage_finished(
        self,
        run_id: str,
        scene_id: str,
        stage: str,
        state: StageState,
        *,
        counts: dict[str, float] | None = None,
        emitted: EmittedEvent | None = None,
        fanned_out: Sequence[EmittedEvent] = (),
        note: str | None = None,
        error: PipelineError | None = None,
        held_back: dict[str, str] | None = None,
    ) -> RunRecord:
        now = self.clock()

        def change(run: RunRecord) -> None:
            rec = run.stages.get(stage) or StageRecord(state=state, attempts=1, started_at=now)
            if rec.state is StageState.SUCCEEDED and state is StageState.SUCCEEDED and rec.emitted:
                # Two deliveries can each believe they hold the unit (a lapsed lease taken back
                # while a successor's lapsed too): the ledger's transaction decides which commits.
                raise StageAlreadyCommitted("stage already succeeded", run_id=run_id, stage=stage)
            rec.state = state
            rec.finished_at = now
            if rec.started_at is not None:
                rec.duration_s = (now - rec.started_at).total_seconds()
            if counts:
                rec.counts = {**rec.counts, **counts}
            if emitted is not None:
                rec.emitted = emitted
                rec.fanned_out = [*fanned_out]
                rec.published_at = None  # until mark_published says the bus has it
            rec.note = note
            rec.held_back = dict(held_back or {})
            rec.error = _stage_error(error, now) if error else None
            run.stages[stage] = rec

        return self._update(run_id, scene_id, change)

    def mark_published(self, run_id: str, scene_id: str, stage: str) -> RunRecord:
        """The stage's emitted event reached the bus: a duplicate delivery re-emits nothing."""
        now = self.clock()

        def change(run: RunRecord) -> None:
            rec = run.stages.get(stage)
            if rec is not None and rec.emitted is not None and rec.published_at is None:
                rec.published_at = now

        return self._update(run_id, scene_id, change)

    def stage_failed(
        self, run_id: str, scene_id: str, stage: str, error: PipelineError, *, final: bool
    ) -> RunRecord:
        state = StageState.FAILED if final else StageState.RETRYING
        return self.stage_finished(run_id, scene_id, stage, state, error=error)


def _stage_error(error: PipelineError, at: datetime) -> StageError:
    record: dict[str, Any] = error.to_record()
    return StageError(at=at, **record)
