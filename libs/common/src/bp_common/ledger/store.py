"""The ledger's storage port: documents keyed by id, changed in atomic read-modify-writes."""

from __future__ import annotations

import abc
from collections.abc import Callable
from datetime import UTC, datetime

from bp_common.ledger.migrations import Document

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class LedgerStore(abc.ABC):
    """Documents keyed by id (a run id, for the runs), with an atomic read-modify-write."""

    @abc.abstractmethod
    def read(self, run_id: str) -> Document | None: ...

    @abc.abstractmethod
    def transact(self, run_id: str, change: Callable[[Document | None], Document]) -> Document:
        """Atomically apply change to the stored document (None when absent); store the result."""

    @abc.abstractmethod
    def scan(self, limit: int, scene_id: str | None = None) -> list[Document]:
        """Most recently updated first."""

    @abc.abstractmethod
    def all_ids(self) -> list[str]: ...

    def delete(self, run_id: str) -> bool:
        """Remove one document (retention); False when it was not there."""
        raise NotImplementedError(f"{type(self).__name__} removes no documents")

    @abc.abstractmethod
    def sibling(self, kind: str) -> LedgerStore:
        """A store of the same backend for another kind of document (leases, content claims):
        a collection or table beside this one, named after it."""
