"""The documents that publish a dataset: its manifest (inventory + provenance) and LATEST."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bp_common.errors import InvalidInput

from bp_upload.publication.layout import DatasetLocation

MANIFEST_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class QualitySummary:
    """What the import stage said about the dataset, kept beside it for people choosing data."""

    codebase_version: str
    episodes: int
    frames: int
    quality_pass_rate: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "codebase_version": self.codebase_version,
            "episodes": self.episodes,
            "frames": self.frames,
            "quality_pass_rate": self.quality_pass_rate,
        }


@dataclass(frozen=True)
class PublishedFile:
    path: str
    size: int
    sha256: str
    md5_b64: str
    crc32c_b64: str


@dataclass(frozen=True)
class DatasetManifest:
    location: DatasetLocation
    storage_bucket: str
    files: tuple[PublishedFile, ...]
    source_uri: str
    import_manifest_sha256: str
    quality: QualitySummary
    published_at: datetime

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_bytes(self) -> bytes:
        loc = self.location
        document = {
            "schema_version": MANIFEST_SCHEMA_VERSION,
            "scene_id": loc.scene_id,
            "robot": loc.robot,
            "run_id": loc.run_id,
            "storage_bucket": self.storage_bucket,
            "prefix": loc.prefix,
            "published_at": self.published_at.isoformat(),
            "source": {
                "uri": self.source_uri,
                "import_manifest_sha256": self.import_manifest_sha256,
            },
            "quality": self.quality.to_dict(),
            "totals": {"files": len(self.files), "bytes": self.total_bytes},
            "files": {
                f.path: {
                    "size": f.size,
                    "sha256": f.sha256,
                    "md5": f.md5_b64,
                    "crc32c": f.crc32c_b64,
                }
                for f in self.files
            },
        }
        return json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"


def parse_manifest(data: bytes, *, where: str) -> Mapping[str, Any]:
    """A committed manifest's document; what the no-op path and LATEST need from it."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"dataset manifest is not JSON: {exc}", manifest=where) from exc
    if not isinstance(document, dict) or not isinstance(document.get("files"), dict):
        raise InvalidInput("dataset manifest has no file inventory", manifest=where)
    return document


@dataclass(frozen=True)
class LatestPointer:
    """`datasets/{scene}/{robot}/LATEST`: which run's dataset is current, and its manifest."""

    run_id: str
    manifest: str
    manifest_uri: str
    published_at: datetime

    def to_bytes(self) -> bytes:
        document = {
            "run_id": self.run_id,
            "manifest": self.manifest,
            "manifest_uri": self.manifest_uri,
            "published_at": self.published_at.isoformat(),
        }
        return json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> LatestPointer | None:
        """The pointer, or None when the object is not one (it is then simply replaced)."""
        try:
            document = json.loads(data)
            return cls(
                run_id=str(document["run_id"]),
                manifest=str(document["manifest"]),
                manifest_uri=str(document.get("manifest_uri", "")),
                published_at=datetime.fromisoformat(document["published_at"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
