"""The dataset catalogue in Firestore: collection `datasets`, one document per published dataset.

Listing one scene's or robot's datasets newest first needs a composite index in production
(`scene_id` ASC, `published_at` DESC; with `robot` ASC too when filtering by robot); the
emulator needs none.
"""

from __future__ import annotations

from typing import Any

from bp_common.errors import Unavailable
from bp_common.ledger.firestore import DEFAULT_RETRY, TRANSIENT_ERRORS
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from bp_upload.catalogue.port import (
    CATALOGUE_COLLECTION,
    CatalogueEntry,
    DatasetCatalogue,
    entry_id,
)


class FirestoreCatalogue(DatasetCatalogue):
    def __init__(
        self,
        client: firestore.Client,
        collection: str = CATALOGUE_COLLECTION,
        *,
        timeout: float = 30.0,
    ) -> None:
        self.collection = client.collection(collection)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"FirestoreCatalogue(collection={self.collection.id!r})"

    def record(self, entry: CatalogueEntry) -> None:
        try:
            self.collection.document(entry.entry_id).set(
                entry.to_document(), retry=DEFAULT_RETRY, timeout=self.timeout
            )
        except TRANSIENT_ERRORS as exc:
            raise Unavailable(
                f"Firestore catalogue: {type(exc).__name__}", entry=entry.entry_id
            ) from exc

    def get(self, scene_id: str, robot: str, run_id: str) -> CatalogueEntry | None:
        key = entry_id(scene_id, robot, run_id)
        try:
            snapshot = self.collection.document(key).get(retry=DEFAULT_RETRY, timeout=self.timeout)
        except TRANSIENT_ERRORS as exc:
            raise Unavailable(f"Firestore catalogue: {type(exc).__name__}", entry=key) from exc
        document = snapshot.to_dict() if snapshot.exists else None
        return None if document is None else CatalogueEntry.from_document(document)

    def list(
        self, *, scene_id: str | None = None, robot: str | None = None, limit: int = 50
    ) -> list[CatalogueEntry]:
        query: Any = self.collection
        if scene_id:
            query = query.where(filter=FieldFilter("scene_id", "==", scene_id))
        if robot:
            query = query.where(filter=FieldFilter("robot", "==", robot))
        query = query.order_by("published_at", direction=firestore.Query.DESCENDING).limit(limit)
        try:
            documents = [
                s.to_dict() for s in query.stream(retry=DEFAULT_RETRY, timeout=self.timeout)
            ]
        except TRANSIENT_ERRORS as exc:
            raise Unavailable(f"Firestore catalogue: {type(exc).__name__}") from exc
        return [CatalogueEntry.from_document(d) for d in documents if d]
