"""A local folder as the Firebase bucket, for the embedded default and `bp upload` offline.

Objects are written through `LocalBlobStore` (atomic renames, metadata beside them). What the
folder "reports" as md5 and crc32c is computed by reading the stored file back, so verification
still compares against bytes that reached the destination, not the bytes that were sent.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from bp_common.blobstore import BlobInfo
from bp_common.blobstore.local import LocalBlobStore
from bp_common.errors import AlreadyExists, NotFound

from bp_upload.destinations.checksums import READ_SIZE, Digests, hash_stream
from bp_upload.destinations.port import Destination

_LOCK_DIR = ".bp-meta"


class FolderDestination(Destination):
    def __init__(self, root: Path, *, bucket_name: str = "local-datasets") -> None:
        self.store = LocalBlobStore(root)
        self._bucket_name = bucket_name

    def __repr__(self) -> str:
        return f"FolderDestination(root={str(self.store.root)!r})"

    @property
    def bucket_name(self) -> str:
        return self._bucket_name

    def uri(self, key: str = "") -> str:
        return self.store.uri(key)

    def _stored(self, info: BlobInfo) -> BlobInfo:
        with self.store.open_read(info.key) as reader:
            digests = hash_stream(reader)
        return BlobInfo(
            key=info.key,
            size=digests.size,
            generation=info.generation,
            md5_b64=digests.md5_b64,
            crc32c_b64=digests.crc32c_b64,
            metadata=dict(info.metadata),
        )

    def _stat(self, key: str) -> BlobInfo:
        info = self.store.stat(key)
        if info is None:
            raise NotFound("object vanished right after it was written", object=self.uri(key))
        return self._stored(info)

    def put(
        self,
        key: str,
        stream: BinaryIO,
        size: int,
        *,
        content_type: str,
        metadata: dict[str, str],
        timeout: float | None,
    ) -> BlobInfo:
        left = size
        with self.store.open_write(key, content_type=content_type, metadata=metadata) as writer:
            while left > 0:
                chunk = stream.read(min(READ_SIZE, left))
                if not chunk:
                    raise EOFError(f"the source ended after {size - left} of {size} bytes")
                writer.write(chunk)
                left -= len(chunk)
        return self._stat(key)

    def read_back(self, key: str, *, generation: int, timeout: float | None) -> Digests:
        with self.store.open_read(key) as reader:
            return hash_stream(reader)

    def fetch(self, key: str, *, timeout: float | None = None) -> tuple[bytes, BlobInfo] | None:
        info = self.store.stat(key)
        if info is None:
            return None
        try:
            data = self.store.read_bytes(key)
        except NotFound:
            return None
        return data, self._stored(info)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        lock = self.store.root / _LOCK_DIR / "write.lock"
        lock.parent.mkdir(parents=True, exist_ok=True)
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write_small(
        self,
        key: str,
        data: bytes,
        *,
        if_generation_match: int | None,
        content_type: str,
        metadata: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> BlobInfo:
        with self._locked():
            current = self.store.stat(key)
            if if_generation_match is not None:
                have = 0 if current is None else current.generation
                if have != if_generation_match:
                    raise AlreadyExists(
                        "generation precondition failed",
                        object=self.uri(key),
                        expected=if_generation_match,
                        actual=have,
                    )
            self.store.write_bytes(key, data, content_type=content_type, metadata=metadata)
            return self._stat(key)

    def list(self, prefix: str, *, timeout: float | None = None) -> Iterator[BlobInfo]:
        for info in self.store.list(prefix):
            yield self._stored(info)

    def delete(self, key: str, *, timeout: float | None = None) -> bool:
        return self.store.delete(key)
