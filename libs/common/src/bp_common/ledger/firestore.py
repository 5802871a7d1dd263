"""The run ledger in Firestore: one document per run id, updated in Firestore transactions.

Documents are stored exactly as the ledger produces them (JSON-mode dicts, datetimes as ISO-8601
strings), so a run reads back identically from Firestore and from SQLite.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core.retry import Retry, if_exception_type
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from bp_common.errors import NotFound, Unavailable
from bp_common.ledger.migrations import Document
from bp_common.ledger.store import LedgerStore

_DEFAULT_EMULATOR_PROJECT = "bp-local"
# Two stages finishing the same run at once contend on one document; the loser tries again.
DEFAULT_MAX_ATTEMPTS = 10
# Between a lost attempt and the next, a random pause of up to 50 ms, doubling to at most 2 s:
# writers that read together and deadlocked (the emulator aborts all of them on its lock timeout)
# must not all begin again in the same instant, or they deadlock again on every attempt.
CONTENTION_BACKOFF_S = (0.05, 2.0)
# Give up within half a minute and let the bus retry the message with its own backoff.
DEFAULT_RETRY = Retry(
    predicate=if_exception_type(
        gexc.ServiceUnavailable,
        gexc.DeadlineExceeded,
        gexc.InternalServerError,
        gexc.ResourceExhausted,
    ),
    initial=0.1,
    maximum=5.0,
    multiplier=2.0,
    timeout=30.0,
)


def make_firestore_client(
    project: str | None = None, *, database: str | None = None
) -> firestore.Client:
    """A Firestore client; with FIRESTORE_EMULATOR_HOST set it talks to the emulator, anonymously.

    The library only reads the emulator address from the environment (it then opens a plaintext
    channel), so the emulator host is not a parameter here.
    """
    if os.environ.get("FIRESTORE_EMULATOR_HOST"):
        return firestore.Client(
            project=project or os.environ.get("GOOGLE_CLOUD_PROJECT") or _DEFAULT_EMULATOR_PROJECT,
            credentials=AnonymousCredentials(),
            database=database,
        )
    return firestore.Client(project=project, database=database)


# What Firestore raises for a passing fault: the bus retries the message later.
TRANSIENT_ERRORS = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.Aborted,
    gexc.ResourceExhausted,
    gexc.InternalServerError,
    gexc.Unknown,
    gexc.RetryError,
)


@contextmanager
def _translated(**context: Any) -> Iterator[None]:
    try:
        yield
    except gexc.NotFound as exc:
        raise NotFound(f"Firestore: {exc.message}", **context) from exc
    except TRANSIENT_ERRORS as exc:
        raise Unavailable(f"Firestore: {type(exc).__name__}: {exc}", **context) from exc


class FirestoreLedgerStore(LedgerStore):
    """`{collection}/{run_id}` documents with top-level `scene_id` and `updated_at` for queries.

    `scan` with a scene filter needs a composite index in production (the emulator needs none):
    collection `runs`, fields `scene_id` ASCENDING, `updated_at` DESCENDING
    (Terraform: google_firestore_index). The unfiltered scan uses the automatic single-field index.
    """

    def __init__(
        self,
        client: firestore.Client,
        collection: str = "runs",
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        retry: Retry = DEFAULT_RETRY,
        timeout: float = 30.0,
    ) -> None:
        self.client = client
        self.collection = client.collection(collection)
        self.max_attempts = max_attempts
        self.retry = retry
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"FirestoreLedgerStore(collection={self.collection.id!r})"

    def sibling(self, kind: str) -> FirestoreLedgerStore:
        return FirestoreLedgerStore(
            self.client,
            f"{self.collection.id}_{kind}",
            max_attempts=self.max_attempts,
            retry=self.retry,
            timeout=self.timeout,
        )

    def read(self, run_id: str) -> Document | None:
        with _translated(run_id=run_id):
            snapshot = self.collection.document(run_id).get(retry=self.retry, timeout=self.timeout)
        return snapshot.to_dict() if snapshot.exists else None

    def transact(self, run_id: str, change: Callable[[Document | None], Document]) -> Document:
        """Read, change and write one document in a transaction.

        A transaction that loses to other writers is begun again after a jittered, growing pause,
        so `change` may be called more than once and must only compute from its argument. After
        `max_attempts` lost attempts it raises Unavailable, and the bus retries the message.
        """
        ref = self.collection.document(run_id)

        @firestore.transactional  # type: ignore[untyped-decorator]
        def apply(transaction: firestore.Transaction) -> Document:
            snapshot = ref.get(transaction=transaction)
            doc = change(snapshot.to_dict() if snapshot.exists else None)
            transaction.set(ref, _with_timestamps(doc))
            return doc

        first, cap = CONTENTION_BACKOFF_S
        with _translated(run_id=run_id):
            for attempt in range(self.max_attempts):
                if attempt:
                    time.sleep(random.uniform(0.0, min(cap, first * 2 ** (attempt - 1))))
                try:
                    result: Document = apply(self.client.transaction(max_attempts=1))
                    return result
                except ValueError as exc:
                    if not isinstance(exc.__cause__, gexc.Aborted):
                        raise
        raise Unavailable(
            f"Firestore: the transaction lost to other writers {self.max_attempts} times",
            run_id=run_id,
        )

    def delete(self, run_id: str) -> bool:
        ref = self.collection.document(run_id)
        with _translated(run_id=run_id):
            if not ref.get(retry=self.retry, timeout=self.timeout).exists:
                return False
            ref.delete(retry=self.retry, timeout=self.timeout)
        return True

    def scan(self, limit: int, scene_id: str | None = None) -> list[Document]:
        query: Any = self.collection
        if scene_id:
            query = query.where(filter=FieldFilter("scene_id", "==", scene_id))
        query = query.order_by("updated_at", direction=firestore.Query.DESCENDING).limit(limit)
        with _translated(scene_id=scene_id):
            return [s.to_dict() for s in query.stream(retry=self.retry, timeout=self.timeout)]

    def all_ids(self) -> list[str]:
        with _translated(collection=self.collection.id):
            refs = self.collection.list_documents(retry=self.retry, timeout=self.timeout)
            return sorted(ref.id for ref in refs)


def _with_timestamps(doc: Document) -> Document:
    """`expire_at` stored as a Firestore timestamp: the TTL policy on it (deploy/terraform)
    deletes a run's document once it has passed, and ignores a string."""
    expire_at = doc.get("expire_at")
    if isinstance(expire_at, str):
        return {**doc, "expire_at": datetime.fromisoformat(expire_at)}
    return doc
