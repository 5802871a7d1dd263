"""The port datasets are published through: Firebase Storage in the cloud, a folder locally."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import BinaryIO

from bp_common.blobstore import BlobInfo

from bp_upload.destinations.checksums import Digests


class Destination(abc.ABC):
    """A bucket of published datasets.

    Errors are the pipeline's: `Unavailable` for what may pass (connection failures, 408, 429,
    5xx), `AlreadyExists` when a generation precondition fails, `NotFound`; anything else is a
    fault (a bad request, a forbidden bucket) that retrying will not fix.
    """

    @property
    @abc.abstractmethod
    def bucket_name(self) -> str:
        """The bucket consumers read from (the Firebase Storage bucket)."""

    @abc.abstractmethod
    def uri(self, key: str = "") -> str: ...

    @abc.abstractmethod
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
        """Stream exactly `size` bytes to key; returns what the destination stored.

        Raises EOFError, leaving no object, when the stream ends before `size` bytes.
        """

    @abc.abstractmethod
    def read_back(self, key: str, *, generation: int, timeout: float | None) -> Digests:
        """Download one generation again, streaming, and hash what came back."""

    @abc.abstractmethod
    def fetch(self, key: str, *, timeout: float | None = None) -> tuple[bytes, BlobInfo] | None:
        """A small object's bytes and properties (manifests, LATEST), or None when absent."""

    @abc.abstractmethod
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
        """Write a small object; `if_generation_match=0` is create-only. Raises AlreadyExists."""

    @abc.abstractmethod
    def list(self, prefix: str, *, timeout: float | None = None) -> Iterator[BlobInfo]:
        """Every object under prefix, in key order."""

    @abc.abstractmethod
    def delete(self, key: str, *, timeout: float | None = None) -> bool:
        """Remove one object; False when it was already gone."""
