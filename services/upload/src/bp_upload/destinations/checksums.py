"""MD5, CRC32C and SHA-256 of a byte stream in one read pass, as Cloud Storage reports them."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import google_crc32c

READ_SIZE = 1024 * 1024


@dataclass(frozen=True)
class Digests:
    """The three digests of one object's bytes; md5 and crc32c base64 as in the JSON API."""

    size: int
    md5_b64: str
    crc32c_b64: str
    sha256: str


class StreamHasher:
    """Accumulates the three digests; `update` may be called with any chunking."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self._crc32c = google_crc32c.Checksum()  # type: ignore[no-untyped-call]
        self.size = 0

    def update(self, data: bytes) -> None:
        self._md5.update(data)
        self._sha256.update(data)
        self._crc32c.update(data)  # type: ignore[no-untyped-call]
        self.size += len(data)

    def digests(self) -> Digests:
        return Digests(
            size=self.size,
            md5_b64=base64.b64encode(self._md5.digest()).decode(),
            crc32c_b64=base64.b64encode(self._crc32c.digest()).decode(),  # type: ignore[no-untyped-call]
            sha256=self._sha256.hexdigest(),
        )


def hash_stream(reader: BinaryIO, *, check: Callable[[], None] | None = None) -> Digests:
    """Digests of everything left in reader, read in bounded chunks; `check` runs per chunk."""
    hasher = StreamHasher()
    while True:
        if check is not None:
            check()
        chunk = reader.read(READ_SIZE)
        if not chunk:
            return hasher.digests()
        hasher.update(chunk)


def digests_of(data: bytes) -> Digests:
    hasher = StreamHasher()
    hasher.update(data)
    return hasher.digests()


class HashingReader:
    """A read-only stream that hashes the bytes an uploader pulls through it.

    An upload library may seek back and send a range again (a resumable chunk the server did not
    keep); bytes are hashed only the first time their offset is read, so the digests always cover
    the source exactly once. `check` runs before every read: it is how a deadline or a cancel
    stops a transfer between chunks.
    """

    def __init__(self, raw: BinaryIO, *, check: Callable[[], None] | None = None) -> None:
        self._raw = raw
        self._check = check
        self._hasher = StreamHasher()
        self._pos = 0

    @property
    def hashed(self) -> int:
        return self._hasher.size

    def read(self, size: int = -1) -> bytes:
        if self._check is not None:
            self._check()
        data = self._read_all() if size is None or size < 0 else self._read_exactly(size)
        end = self._pos + len(data)
        if end > self._hasher.size:
            fresh = self._hasher.size - self._pos  # bytes before this offset were hashed already
            self._hasher.update(data if fresh == 0 else data[fresh:])
        self._pos = end
        return data

    def _read_exactly(self, size: int) -> bytes:
        # A network reader may return short reads; an uploader expects `size` bytes before EOF.
        parts: list[bytes] = []
        wanted = size
        while wanted > 0:
            chunk = self._raw.read(wanted)
            if not chunk:
                break
            parts.append(chunk)
            wanted -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _read_all(self) -> bytes:
        parts: list[bytes] = []
        while chunk := self._raw.read(READ_SIZE):
            parts.append(chunk)
        return b"".join(parts)

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0:
            raise OSError("HashingReader seeks to absolute offsets only")
        if offset > self._hasher.size:
            raise OSError("cannot seek past the bytes already read (they would go unhashed)")
        if offset != self._pos:
            self._raw.seek(offset)
            self._pos = offset
        return self._pos

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def digests(self) -> Digests:
        return self._hasher.digests()
