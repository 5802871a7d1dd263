"""Committed means immutable: one attempt's outputs under its own prefix, one create-only manifest.

A unit of a run (export, one robot's dataset) lives in a folder of the bucket:

    {unit}/attempts/{attempt_id}/...      what one delivery wrote; no other delivery writes here
    {unit}/{manifest}                     create-only: names the attempt and each file's sha256

The manifest is the commit: whoever creates it first wins, and what it names is never rewritten
or deleted afterwards (only retention removes runs). An attempt that loses the race removes its
own prefix and nothing else, and reads the winner's manifest. Readers never list: they follow the
manifest (`read_committed`), and check every file against it.

Paths in a manifest are relative to the manifest's own folder (`attempt.path`, then each file's
name), so a committed unit still reads after it is copied or downloaded elsewhere. A manifest
without `attempt` names files beside it (what `bp export` and `bp import` write on local disk).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from bp_common.blobstore import BlobStore
from bp_common.errors import AlreadyExists, InvalidInput, NotFound, PipelineError
from bp_common.ids import validate_object_name

ATTEMPTS_DIR = "attempts"
ATTEMPT_PATH = re.compile(r"^attempts/[A-Za-z0-9_-]{1,64}/$")
_CHUNK = 1 << 20


class CommitMismatch(InvalidInput):
    """A committed unit's manifest or files are missing, malformed, or differ from each other."""


def manifest_json(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def folder_of(key: str) -> str:
    """`runs/s/r/export/export_manifest.json` -> `runs/s/r/export/` ("" for a top-level key)."""
    return key.rsplit("/", 1)[0] + "/" if "/" in key else ""


@dataclass(frozen=True)
class Committed:
    """A unit as its manifest names it."""

    store: BlobStore
    manifest_key: str
    raw: bytes
    document: dict[str, Any]
    root: str
    """The prefix the files live under: the committed attempt's, or the manifest's folder."""
    won: bool = True
    """Whether the delivery that read this is the one that committed it."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    @property
    def files(self) -> dict[str, dict[str, Any]]:
        files: dict[str, dict[str, Any]] = self.document.get("files", {})
        return files

    def key(self, name: str) -> str:
        if name not in self.files:
            raise CommitMismatch(
                "the manifest names no such file", manifest=self.manifest_key, file=name
            )
        return validate_object_name(self.root + name)

    def read(self, name: str) -> bytes:
        """One named file, checked against the manifest's sha256 and size."""
        key = self.key(name)
        try:
            data = self.store.read_bytes(key)
        except NotFound as exc:
            raise CommitMismatch("a committed file is missing", key=key) from exc
        expected = self.files[name]
        if hashlib.sha256(data).hexdigest() != expected.get("sha256") or len(data) != expected.get(
            "size"
        ):
            raise CommitMismatch("a committed file differs from its manifest", key=key)
        return data


def read_committed(store: BlobStore, manifest_key: str) -> Committed | None:
    """The committed unit whose manifest is at `manifest_key`, or None when nothing committed."""
    try:
        raw = store.read_bytes(manifest_key)
    except NotFound:
        return None
    return parse_committed(store, manifest_key, raw)


def parse_committed(store: BlobStore, manifest_key: str, raw: bytes, won: bool = True) -> Committed:
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CommitMismatch(f"the manifest is not JSON: {exc}", key=manifest_key) from exc
    if not isinstance(document, dict) or not isinstance(document.get("files", {}), dict):
        raise CommitMismatch("the manifest has no file inventory", key=manifest_key)
    root = folder_of(manifest_key)
    attempt = document.get("attempt")
    if attempt is not None:
        path = attempt.get("path") if isinstance(attempt, dict) else None
        if not isinstance(path, str) or not ATTEMPT_PATH.fullmatch(path):
            raise CommitMismatch("the manifest's attempt path is malformed", key=manifest_key)
        root += path
    return Committed(store, manifest_key, raw, document, root, won)


@dataclass
class AttemptWriter:
    """Writes one attempt of a unit and commits it; see the module docstring."""

    store: BlobStore
    unit: str
    """The unit's folder, ending in `/` (or "" for a store that holds just this unit)."""
    attempt_id: str
    manifest_name: str
    lease_check: Callable[[], None] = lambda: None
    """Called right before the commit (the delivery must still hold its unit)."""
    written: dict[str, dict[str, Any]] = field(default_factory=dict)
    committed: Committed | None = None

    def __enter__(self) -> AttemptWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        """An attempt that fails before it commits takes its partial outputs with it."""
        if e is not None and self.committed is None:
            self.discard()

    def __post_init__(self) -> None:
        if self.unit and not self.unit.endswith("/"):
            raise ValueError("a unit's folder ends with '/'")
        if not ATTEMPT_PATH.fullmatch(self.path):
            raise ValueError(f"not an attempt id: {self.attempt_id!r}")

    @property
    def path(self) -> str:
        """The attempt's folder, relative to the unit's."""
        return f"{ATTEMPTS_DIR}/{self.attempt_id}/"

    @property
    def prefix(self) -> str:
        return self.unit + self.path

    @property
    def manifest_key(self) -> str:
        return self.unit + self.manifest_name

    def write(self, name: str, data: bytes, *, content_type: str | None = None) -> None:
        digest = hashlib.sha256(data).hexdigest()
        self.store.write_bytes(
            self._key(name), data, content_type=content_type, metadata={"sha256": digest}
        )
        self.written[name] = {"sha256": digest, "size": len(data)}

    def put_file(
        self, name: str, path: Path, *, sha256: str | None = None, content_type: str | None = None
    ) -> None:
        """Stream a local file up; with `sha256` (what a local manifest says) it is checked."""
        digest = hashlib.sha256()
        size = 0
        metadata = {"sha256": sha256} if sha256 else None
        with (
            path.open("rb") as reader,
            self.store.open_write(
                self._key(name), content_type=content_type, metadata=metadata
            ) as writer,
        ):
            for chunk in iter(lambda: reader.read(_CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
                writer.write(chunk)
            if sha256 is not None and digest.hexdigest() != sha256:
                # raising inside the writer abandons the object: it never appears
                raise CommitMismatch("a file changed while it was uploaded", file=str(path))
        self.written[name] = {"sha256": digest.hexdigest(), "size": size}

    def _key(self, name: str) -> str:
        validate_object_name(name)
        return self.prefix + name

    def commit(self, document: Mapping[str, Any]) -> Committed:
        """Create the manifest naming exactly what this attempt wrote, or lose to the first.

        A loser removes its own prefix and returns the winner's commit (`won` False).
        """
        names = document.get("files")
        if names is not None and set(names) != set(self.written):
            raise CommitMismatch(
                "the manifest and the attempt's files differ",
                missing=",".join(sorted(set(names) - set(self.written))[:5]),
                extra=",".join(sorted(set(self.written) - set(names))[:5]),
            )
        if names is not None:
            for name, entry in names.items():
                if entry.get("sha256") != self.written[name]["sha256"]:
                    raise CommitMismatch("a file differs from the manifest", file=name)
        full = {
            **document,
            "attempt": {"id": self.attempt_id, "path": self.path},
            "files": {name: self.written[name] for name in sorted(self.written)},
        }
        raw = manifest_json(full)
        self.lease_check()
        try:
            self.store.create_only(self.manifest_key, raw, content_type="application/json")
        except AlreadyExists:
            winner = read_committed(self.store, self.manifest_key)
            if winner is not None and winner.raw == raw:
                # This attempt's own create: its answer was lost, and the retry found it. The
                # manifest names this attempt (its id is in it), so no other attempt wrote it.
                self.committed = winner
                return self.committed
            self.discard()
            if winner is None:  # created and gone at once: only retention deletes manifests
                raise CommitMismatch(
                    "the manifest vanished after a commit race", key=self.manifest_key
                ) from None
            self.committed = Committed(
                winner.store, winner.manifest_key, winner.raw, winner.document, winner.root, False
            )
            return self.committed
        self.committed = parse_committed(self.store, self.manifest_key, raw)
        return self.committed

    def discard(self) -> int:
        """Remove this attempt's own objects (never a committed one: a commit names another
        attempt's prefix, or this one's only after it won). Returns how many went."""
        removed = 0
        for info in list(self.store.list(self.prefix)):
            try:
                removed += self.store.delete(info.key)
            except PipelineError:  # best effort: retention clears what is left
                continue
        return removed
