"""A folder as a blob store: atomic renames for writes, hard links for create-only commits.

Processes may share the folder: an object and its metadata change together under a file lock,
so a reader never sees a created object without the metadata it was written with.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from bp_common.blobstore.base import BlobInfo, BlobStore
from bp_common.errors import AlreadyExists, NotFound
from bp_common.ids import validate_object_name

_META_DIR = ".bp-meta"


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        validate_object_name(key)
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise NotFound("key resolves outside the store", key=key)
        return path

    def _meta_path(self, key: str) -> Path:
        return self.root / _META_DIR / f"{key}.json"

    def uri(self, key: str = "") -> str:
        return (self.root / key).as_uri() if key else self.root.as_uri()

    @contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        path = self._path(key)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound("no such object", store=self.uri(), key=key) from exc
        with handle:
            yield handle

    @contextmanager
    def _staged(self, key: str) -> Iterator[tuple[BinaryIO, Path]]:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                yield handle, Path(tmp)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            Path(tmp).unlink(missing_ok=True)

    def _write_meta(self, key: str, metadata: dict[str, str] | None) -> None:
        meta = self._meta_path(key)
        if metadata:
            meta.parent.mkdir(parents=True, exist_ok=True)
            meta.write_text(json.dumps(metadata, sort_keys=True))
        else:
            meta.unlink(missing_ok=True)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.root / _META_DIR / "objects.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def open_write(
        self,
        key: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> Iterator[BinaryIO]:
        with self._staged(key) as (handle, tmp):
            yield handle
            handle.flush()
            self._place(key, tmp, metadata, if_absent=if_absent)

    def _place(
        self, key: str, staged: Path, metadata: dict[str, str] | None, *, if_absent: bool
    ) -> None:
        with self._locked():
            if if_absent:
                try:
                    os.link(staged, self._path(key))  # atomic: fails if the name exists
                except FileExistsError as exc:
                    raise AlreadyExists("object already exists", store=self.uri(), key=key) from exc
                self._write_meta(key, metadata)
            else:
                self._write_meta(key, metadata)
                os.replace(staged, self._path(key))

    def create_only(self, key: str, data: bytes, *, content_type: str | None = None) -> BlobInfo:
        with self._staged(key) as (handle, tmp):
            handle.write(data)
            handle.flush()
            self._place(key, tmp, None, if_absent=True)
        info = self.stat(key)
        assert info is not None
        return info

    def stat(self, key: str) -> BlobInfo | None:
        path = self._path(key)
        meta = self._meta_path(key)
        with self._locked():  # the object and its metadata as one writer left them
            try:
                st = path.stat()
            except (FileNotFoundError, NotADirectoryError):
                return None
            if not path.is_file():
                return None
            metadata = json.loads(meta.read_text()) if meta.exists() else {}
        return BlobInfo(
            key=key,
            size=st.st_size,
            generation=st.st_mtime_ns,
            metadata=metadata,
            updated=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        keys = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d != _META_DIR]
            for name in filenames:
                if name.endswith(".partial"):
                    continue
                key = Path(dirpath, name).relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        for key in sorted(keys):
            info = self.stat(key)
            if info is not None:
                yield info

    def delete(self, key: str) -> bool:
        path = self._path(key)
        with self._locked():
            self._meta_path(key).unlink(missing_ok=True)
            try:
                path.unlink()
            except FileNotFoundError:
                return False
        return True
