"""Leases on units of work: one holder per (run, unit) at a time, with expiry, renewal and a log.

A unit is a stage's name by default (`import`), or a finer piece of a run (`collect/shard-0003`).
Each (run, unit) is one document beside the runs (`leases`), changed only in a transaction of the
ledger's store, so two deliveries racing for the same unit cannot both win. A holder renews its
lease while it works; a crashed holder stops renewing and its lease lapses at `expires_at`, after
which the next delivery takes it over. Every tenure ends in the log (bounded), released or
lapsed, so one can prove that no unit ever had two holders at once.

Expiry compares the ledger's clock across processes: lease times must be far longer than clock
skew (seconds, not milliseconds).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bp_common.errors import InvalidName, TransientError
from bp_common.ledger.migrations import Document
from bp_common.ledger.store import Clock, LedgerStore, utcnow

LEASES_KIND = "leases"
LOG_LIMIT = 50
_UNIT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}(/[a-z0-9][a-z0-9_.-]{0,127})*$")


class LeaseLost(TransientError):
    """The lease lapsed or went to another holder while this one was still working."""


class TenureEnd(StrEnum):
    RELEASED = "released"
    LAPSED = "lapsed"


class Tenure(BaseModel):
    """One holder's time with the lease, as the log keeps it."""

    model_config = ConfigDict(extra="forbid")

    holder: str
    token: int
    acquired_at: datetime
    ended_at: datetime
    end: TenureEnd
    outcome: str | None = None


class LeaseRecord(BaseModel):
    """The lease document of one (run, unit): its current holder, if any, and its log."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    run_id: str
    scene_id: str
    unit: str
    holder: str | None = None
    token: int = 0
    """Raised at every acquisition: a fencing number that tells tenures apart."""
    acquired_at: datetime | None = None
    renewed_at: datetime | None = None
    expires_at: datetime | None = None
    updated_at: datetime
    log: list[Tenure] = Field(default_factory=list)

    def live(self, now: datetime) -> bool:
        return self.holder is not None and self.expires_at is not None and self.expires_at > now

    def to_document(self) -> Document:
        return self.model_dump(mode="json")


@dataclass(frozen=True)
class Lease:
    """A lease this process holds."""

    run_id: str
    scene_id: str
    unit: str
    holder: str
    token: int
    expires_at: datetime


@dataclass(frozen=True)
class Held:
    """Someone else holds the lease, until `expires_at` unless they renew it."""

    holder: str
    expires_at: datetime


def validate_unit(unit: str) -> str:
    if not _UNIT.fullmatch(unit):
        raise InvalidName("a unit of work is a stage name, optionally /piece/...", unit=repr(unit))
    return unit


def lease_key(run_id: str, unit: str) -> str:
    """The document id: Firestore ids may not hold `/`, and units use no `:`."""
    return f"{run_id}:{validate_unit(unit).replace('/', ':')}"


def _bounded(log: list[Tenure]) -> list[Tenure]:
    return log[-LOG_LIMIT:]


class LeaseBook:
    """Acquire, renew and release leases in the ledger's store (`LedgerStore.sibling`)."""

    def __init__(self, store: LedgerStore, clock: Clock = utcnow) -> None:
        self.store = store
        self.clock = clock

    def acquire(
        self,
        run_id: str,
        scene_id: str,
        unit: str,
        holder: str,
        ttl_s: float,
        *,
        evict: str | None = None,
    ) -> Lease | Held:
        """Take the lease unless another holder's lease is live; a lapsed one is logged.

        `evict` names a holder known to be dead (its process is gone): its lease ends now, as
        if it had lapsed, instead of at its expiry.
        """
        key = lease_key(run_id, unit)
        outcome: list[Lease | Held] = []

        def change(doc: Document | None) -> Document:
            now = self.clock()
            outcome.clear()
            record = (
                LeaseRecord.model_validate(doc)
                if doc
                else LeaseRecord(run_id=run_id, scene_id=scene_id, unit=unit, updated_at=now)
            )
            evicted = evict is not None and record.holder == evict
            if record.live(now) and record.holder != holder and not evicted:
                assert record.holder is not None and record.expires_at is not None
                outcome.append(Held(record.holder, record.expires_at))
                return record.to_document()
            if evicted:
                record.expires_at = now  # the holder died: its tenure lapsed now
            if record.holder is not None:
                record.log = _bounded([*record.log, _ended(record, now)])
            record.holder = holder
            record.token += 1
            record.acquired_at = record.renewed_at = record.updated_at = now
            record.expires_at = now + timedelta(seconds=ttl_s)
            outcome.append(Lease(run_id, scene_id, unit, holder, record.token, record.expires_at))
            return record.to_document()

        self.store.transact(key, change)
        return outcome[-1]

    def renew(self, lease: Lease, ttl_s: float) -> Lease:
        """Push the expiry out; raises LeaseLost if the lease lapsed or changed hands."""
        key = lease_key(lease.run_id, lease.unit)
        renewed: list[Lease] = []

        def change(doc: Document | None) -> Document:
            now = self.clock()
            renewed.clear()
            record = self._mine(doc, lease, now)
            record.renewed_at = record.updated_at = now
            record.expires_at = now + timedelta(seconds=ttl_s)
            renewed.append(
                Lease(
                    lease.run_id,
                    lease.scene_id,
                    lease.unit,
                    lease.holder,
                    lease.token,
                    record.expires_at,
                )
            )
            return record.to_document()

        self.store.transact(key, change)
        return renewed[-1]

    def check(self, lease: Lease) -> None:
        """Raise LeaseLost unless this tenure still holds the lease, live."""
        self._mine(self.store.read(lease_key(lease.run_id, lease.unit)), lease, self.clock())

    def release(self, lease: Lease, outcome: str) -> bool:
        """End this tenure in the log; False if it had already ended (lapsed, or taken over).

        A tenure that lapsed while its holder finished the work still gets its outcome in the
        log, so the log tells what every tenure did, not only the tenures released in time.
        """
        key = lease_key(lease.run_id, lease.unit)
        released: list[bool] = []

        def change(doc: Document | None) -> Document:
            now = self.clock()
            released.clear()
            if doc is None:
                raise LeaseLost("the lease document is gone", run_id=lease.run_id, unit=lease.unit)
            record = LeaseRecord.model_validate(doc)
            if record.holder != lease.holder or record.token != lease.token:
                released.append(False)
                record.log = [_with_outcome(t, lease, outcome) for t in record.log]
                return record.to_document()
            record.log = _bounded([*record.log, _ended(record, now, outcome)])
            record.holder = None
            record.acquired_at = record.renewed_at = record.expires_at = None
            record.updated_at = now
            released.append(True)
            return record.to_document()

        self.store.transact(key, change)
        return released[-1]

    def get(self, run_id: str, unit: str) -> LeaseRecord | None:
        doc = self.store.read(lease_key(run_id, unit))
        return None if doc is None else LeaseRecord.model_validate(doc)

    def state(self, run_id: str, unit: str) -> Held | Literal["free"]:
        """Who holds the unit now, or "free" (never taken, released, or lapsed)."""
        record = self.get(run_id, unit)
        if record is None or not record.live(self.clock()):
            return "free"
        assert record.holder is not None and record.expires_at is not None
        return Held(record.holder, record.expires_at)

    def all(self) -> list[LeaseRecord]:
        """Every lease document (tests and operators; one read per document)."""
        found = []
        for key in self.store.all_ids():
            doc = self.store.read(key)
            if doc is not None:
                found.append(LeaseRecord.model_validate(doc))
        return found

    def _mine(self, doc: Document | None, lease: Lease, now: datetime) -> LeaseRecord:
        record = None if doc is None else LeaseRecord.model_validate(doc)
        if (
            record is None
            or record.holder != lease.holder
            or record.token != lease.token
            or not record.live(now)
        ):
            raise LeaseLost(
                "the lease lapsed or went to another holder",
                run_id=lease.run_id,
                unit=lease.unit,
                holder=lease.holder,
                now_held_by=None if record is None else record.holder,
            )
        return record


def _with_outcome(tenure: Tenure, lease: Lease, outcome: str) -> Tenure:
    """The logged tenure of `lease`, if it ended without an outcome, with this one."""
    if (tenure.holder, tenure.token, tenure.outcome) != (lease.holder, lease.token, None):
        return tenure
    return tenure.model_copy(update={"outcome": outcome})


def _ended(record: LeaseRecord, now: datetime, outcome: str | None = None) -> Tenure:
    """The current tenure as it ends now: lapsed at its expiry if that has passed."""
    assert record.holder is not None and record.acquired_at is not None
    assert record.expires_at is not None
    lapsed = record.expires_at <= now
    return Tenure(
        holder=record.holder,
        token=record.token,
        acquired_at=record.acquired_at,
        ended_at=record.expires_at if lapsed else now,
        end=TenureEnd.LAPSED if lapsed else TenureEnd.RELEASED,
        outcome=outcome,
    )


def tenures(record: LeaseRecord, now: datetime) -> list[Tenure]:
    """The log, with the current holder's tenure as if it ended now (or at its expiry)."""
    current = [_ended(record, now, "holding")] if record.holder is not None else []
    return [*record.log, *current]


def overlaps(record: LeaseRecord, now: datetime) -> list[tuple[Tenure, Tenure]]:
    """Pairs of tenures of the same unit that overlapped in time (there must be none)."""
    terms = sorted(tenures(record, now), key=lambda t: t.acquired_at)
    return [(a, b) for a, b in itertools.pairwise(terms) if b.acquired_at < a.ended_at]
