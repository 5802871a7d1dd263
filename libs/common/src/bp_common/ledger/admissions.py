"""Caps on runs collecting at once: a pool (the project, a scene) admits at most its cap.

Each pool is one document beside the runs (`admissions`) listing the runs it admitted, each
until a deadline. A run is admitted, or re-admitted with a later deadline, in one ledger
transaction, so two runs racing for the last place cannot both get it. A run leaves its pools
when its collection ends; a run whose process died leaves when its deadline passes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from bp_common.ledger.migrations import Document
from bp_common.ledger.store import Clock, LedgerStore, utcnow

ADMISSIONS_KIND = "admissions"
PROJECT_POOL = "project"


def scene_pool(scene_id: str) -> str:
    return f"scene:{scene_id}"


class Pool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pool: str
    admitted: dict[str, datetime] = Field(default_factory=dict)
    """Run id -> until when it holds its place."""
    updated_at: datetime

    def live(self, now: datetime) -> dict[str, datetime]:
        return {run: until for run, until in self.admitted.items() if until > now}

    def to_document(self) -> Document:
        return self.model_dump(mode="json")


class Admissions:
    def __init__(self, store: LedgerStore, clock: Clock = utcnow) -> None:
        self.store = store
        self.clock = clock

    def admit(self, pool: str, run_id: str, cap: int, hold_s: float) -> list[str]:
        """Admit the run for `hold_s` (again, if it was); returns [] when admitted, else the
        runs that fill the pool."""
        full: list[str] = []

        def change(doc: Document | None) -> Document:
            now = self.clock()
            record = Pool.model_validate(doc) if doc else Pool(pool=pool, updated_at=now)
            live = record.live(now)
            full.clear()
            if run_id not in live and len(live) >= cap:
                full.extend(sorted(live))
                record.admitted = live
            else:
                record.admitted = {**live, run_id: now + timedelta(seconds=hold_s)}
            record.updated_at = now
            return record.to_document()

        self.store.transact(pool, change)
        return full

    def release(self, pool: str, run_id: str) -> None:
        def change(doc: Document | None) -> Document:
            now = self.clock()
            record = Pool.model_validate(doc) if doc else Pool(pool=pool, updated_at=now)
            record.admitted = {r: t for r, t in record.live(now).items() if r != run_id}
            record.updated_at = now
            return record.to_document()

        self.store.transact(pool, change)

    def release_run(self, scene_id: str, run_id: str) -> None:
        """The run leaves the project's pool and its scene's (its collection ended)."""
        self.release(scene_pool(scene_id), run_id)
        self.release(PROJECT_POOL, run_id)

    def admitted(self, pool: str) -> list[str]:
        doc = self.store.read(pool)
        return [] if doc is None else sorted(Pool.model_validate(doc).live(self.clock()))
