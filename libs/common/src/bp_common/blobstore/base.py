"""The blob store interface every stage writes through (GCS in the cloud, a folder locally)."""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO

from bp_common.errors import NotFound


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    generation: int
    md5_b64: str | None = None
    crc32c_b64: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    updated: datetime | None = None
    """When this generation was written, when the store says."""


class BlobStore(abc.ABC):
    """Keys are `/`-separated object names, validated against traversal by every adapter."""

    @abc.abstractmethod
    def uri(self, key: str = "") -> str:
        """Where a key lives, for people and logs (gs://bucket/key or file:///...)."""

    @abc.abstractmethod
    def open_read(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A streaming reader; raises NotFound."""

    @abc.abstractmethod
    def open_write(
        self,
        key: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> AbstractContextManager[BinaryIO]:
        """A streaming writer; the object appears whole when the block exits cleanly, else never.

        With `if_absent` the object is created only if the key is free (generation 0): an object
        already there is never replaced, and the exit raises AlreadyExists.
        """

    @abc.abstractmethod
    def create_only(self, key: str, data: bytes, *, content_type: str | None = None) -> BlobInfo:
        """Write only if the key does not exist yet (generation 0); raises AlreadyExists."""

    @abc.abstractmethod
    def stat(self, key: str) -> BlobInfo | None:
        """Size, generation, hashes and metadata, or None when absent."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Every object whose key starts with prefix, in key order."""

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Remove one object; False when it was not there."""

    def exists(self, key: str) -> bool:
        return self.stat(key) is not None

    def digest(self, info: BlobInfo) -> str:
        """A checksum of the object's content: the server's own when it keeps one (no download),
        else a sha256 of the bytes. Only comparable within one store."""
        if info.md5_b64:
            return f"md5:{info.md5_b64}"
        if info.crc32c_b64:
            return f"crc32c:{info.crc32c_b64}"
        sha = hashlib.sha256()
        with self.open_read(info.key) as reader:
            for chunk in iter(lambda: reader.read(1 << 20), b""):
                sha.update(chunk)
        return f"sha256:{sha.hexdigest()}"

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as reader:
            return reader.read()

    def write_bytes(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> BlobInfo:
        with self.open_write(key, content_type=content_type, metadata=metadata) as writer:
            writer.write(data)
        info = self.stat(key)
        if info is None:
            raise NotFound("object vanished right after it was written", key=key)
        return info
