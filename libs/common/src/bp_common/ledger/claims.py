"""Scene contents claimed by runs: an identical re-drop maps to the run that already exists.

A content key names what a scene drop consists of (the scene file, its manifest and its assets,
by checksum). The first run to claim a key owns it for good; a later drop with the same content
reads the owner back instead of starting a new run (collecting again costs GPU hours). Claims are
documents beside the runs (`contents`), written create-only in a ledger transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from bp_common.ledger.migrations import Document
from bp_common.ledger.store import Clock, LedgerStore, utcnow

CLAIMS_KIND = "contents"


class ContentClaim(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content_key: str
    scene_id: str
    run_id: str
    claimed_at: datetime
    updated_at: datetime
    expire_at: datetime | None = None
    """The claim's end (its run's retention, counted from the claim): Firestore's TTL policy
    removes it, so a re-drop of content whose run retention removed starts a new run."""

    def to_document(self) -> Document:
        return self.model_dump(mode="json")


class ContentClaims:
    def __init__(
        self, store: LedgerStore, clock: Clock = utcnow, retention: timedelta | None = None
    ) -> None:
        self.store = store
        self.clock = clock
        self.retention = retention

    def claim(self, content_key: str, scene_id: str, run_id: str) -> ContentClaim:
        """The claim on this content: ours if nobody had it, else the first claimer's."""

        def change(doc: Document | None) -> Document:
            if doc is not None:
                return doc
            now = self.clock()
            return ContentClaim(
                content_key=content_key,
                scene_id=scene_id,
                run_id=run_id,
                claimed_at=now,
                updated_at=now,
                expire_at=None if self.retention is None else now + self.retention,
            ).to_document()

        return ContentClaim.model_validate(self.store.transact(content_key, change))

    def get(self, content_key: str) -> ContentClaim | None:
        doc = self.store.read(content_key)
        return None if doc is None else ContentClaim.model_validate(doc)

    def release(self, scene_id: str, run_id: str) -> int:
        """Drop the claims a run removed by retention holds, so its content runs again when
        dropped again; returns how many went. (`bp gc` on SQLite; in the cloud the claims'
        own TTL removes them.)"""
        docs = self.store.scan(1_000_000, scene_id)
        owned = [d["content_key"] for d in docs if d.get("run_id") == run_id]
        return sum(1 for key in owned if self.store.delete(key))
