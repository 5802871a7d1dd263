"""The dataset catalogue port: every published dataset, where it lives and how good it is."""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass
from typing import Any

CATALOGUE_COLLECTION = "datasets"


@dataclass(frozen=True)
class CatalogueEntry:
    """One published dataset (one robot of one run), as people browsing datasets see it."""

    scene_id: str
    robot: str
    run_id: str
    storage_bucket: str
    prefix: str
    manifest: str
    manifest_uri: str
    latest: str
    files: int
    bytes: int
    codebase_version: str
    episodes: int
    frames: int
    quality_pass_rate: float | None
    published_at: str
    source_uri: str

    @property
    def entry_id(self) -> str:
        return entry_id(self.scene_id, self.robot, self.run_id)

    def to_document(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> CatalogueEntry:
        return cls(**{name: document[name] for name in cls.__dataclass_fields__})


def entry_id(scene_id: str, robot: str, run_id: str) -> str:
    """A document id without '/', unique per dataset; dots cannot occur in the parts."""
    return f"{scene_id}.{robot}.{run_id}"


class DatasetCatalogue(abc.ABC):
    @abc.abstractmethod
    def record(self, entry: CatalogueEntry) -> None:
        """Add or replace the entry (idempotent: a redelivery writes the same document)."""

    @abc.abstractmethod
    def get(self, scene_id: str, robot: str, run_id: str) -> CatalogueEntry | None: ...

    @abc.abstractmethod
    def list(
        self, *, scene_id: str | None = None, robot: str | None = None, limit: int = 50
    ) -> list[CatalogueEntry]:
        """Most recently published first."""
