"""Reads the import stage's `import_manifest.json`: the inventory of a LeRobot dataset folder.

The shape this stage relies on (anything else in the document is kept but not needed):

    {"files": {"meta/info.json": {"sha256": "<64 hex>", "size": 1234}, ...}}

A list of `{"path", "sha256", "size"}` records is accepted as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bp_common.errors import InvalidName
from bp_common.ids import validate_object_name

from bp_upload.errors import SourceIncomplete

IMPORT_MANIFEST_NAME = "import_manifest.json"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class SourceFile:
    """One file of the dataset as the import stage recorded it."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class DatasetInventory:
    """Every file of one dataset, in path order, and the manifest's own bytes' digest."""

    files: tuple[SourceFile, ...]
    manifest_sha256: str
    document: Mapping[str, Any]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def parse_import_manifest(data: bytes, *, manifest_sha256: str, where: str) -> DatasetInventory:
    """The inventory in `data`; anything malformed is a permanent SourceIncomplete."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceIncomplete(f"import manifest is not JSON: {exc}", manifest=where) from exc
    if not isinstance(document, dict) or "files" not in document:
        raise SourceIncomplete("import manifest has no `files` inventory", manifest=where)
    raw = document["files"]
    records: list[tuple[Any, Any]]
    if isinstance(raw, dict):
        records = list(raw.items())
    elif isinstance(raw, list):
        records = [(r.get("path") if isinstance(r, dict) else "", r) for r in raw]
    else:
        raise SourceIncomplete("`files` must be an object or a list", manifest=where)
    files: dict[str, SourceFile] = {}
    for path, record in records:
        entry = _entry(path, record, where)
        if entry.path in files:
            raise SourceIncomplete("file listed twice", manifest=where, file=entry.path)
        files[entry.path] = entry
    if not files:
        raise SourceIncomplete("import manifest lists no files", manifest=where)
    return DatasetInventory(
        files=tuple(files[p] for p in sorted(files)),
        manifest_sha256=manifest_sha256,
        document=document,
    )


def _entry(path: Any, record: Any, where: str) -> SourceFile:
    if not isinstance(path, str) or not isinstance(record, dict):
        raise SourceIncomplete("malformed file record", manifest=where, file=repr(path))
    try:
        validate_object_name(path)
    except InvalidName as exc:
        raise SourceIncomplete(f"unsafe file path: {exc.message}", manifest=where) from exc
    if path == IMPORT_MANIFEST_NAME:
        raise SourceIncomplete("the manifest cannot list itself", manifest=where)
    sha256, size = record.get("sha256"), record.get("size")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise SourceIncomplete(
            "file record needs a lowercase hex sha256", manifest=where, file=path
        )
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise SourceIncomplete("file record needs a size in bytes", manifest=where, file=path)
    return SourceFile(path=path, sha256=sha256, size=size)
