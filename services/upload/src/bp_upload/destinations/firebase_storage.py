"""Firebase Storage (a Cloud Storage bucket reached through firebase-admin) as a Destination.

Files of at most one chunk (and at most 8 MiB) go up in one multipart request, larger ones as
resumable uploads in `chunk_size` pieces, so a transfer holds about one chunk in memory, never
a whole large file. The server's own md5 and crc32c (from the upload's response, or a metadata
read after the last chunk of a resumable upload) are what verification compares. Library
retries are off for uploads: the transfer's policy (backoff, jitter, deadlines) is the only
one, and a failed resumable upload is abandoned, never finalized short.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, BinaryIO

import requests
from bp_common.blobstore import BlobInfo
from bp_common.blobstore.gcs import blob_info, storage_errors
from bp_common.errors import NotFound
from bp_common.ids import validate_object_name
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.cloud import storage
from google.cloud.storage.fileio import BlobWriter
from google.cloud.storage.retry import DEFAULT_RETRY

from bp_upload.destinations.checksums import Digests, StreamHasher
from bp_upload.destinations.port import Destination

DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
CHUNK_MULTIPLE = 256 * 1024
# Above this the library itself would switch to a resumable upload.
MULTIPART_MAX = 8 * 1024 * 1024
_CONNECT_TIMEOUT_S = 10.0


def request_timeout(seconds: float | None) -> float | tuple[float, float]:
    """A requests (connect, read) timeout no longer than `seconds`."""
    if seconds is None:
        return (_CONNECT_TIMEOUT_S, 60.0)
    seconds = max(0.05, seconds)
    return (min(_CONNECT_TIMEOUT_S, seconds), seconds)


class _AbandonableWriter(BlobWriter):  # type: ignore[misc]
    """A resumable upload that a failed transfer can drop without finalizing a short object.

    io.IOBase calls close() on garbage collection, and BlobWriter.close() sends the final
    chunk; after abandon() it does nothing, and the unfinished session simply expires.
    """

    def __init__(self, blob: storage.Blob, **kwargs: Any) -> None:
        super().__init__(blob, **kwargs)
        self._abandoned = False

    def close(self) -> None:
        if not self._abandoned:
            super().close()

    def abandon(self) -> None:
        self._abandoned = True


class _HashSink:
    """A write-only file that hashes what a download writes into it and keeps nothing."""

    def __init__(self) -> None:
        self.hasher = StreamHasher()

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        return len(data)

    def flush(self) -> None:
        return None


class FirebaseDestination(Destination):
    """One Firebase Storage bucket, from `firebase_admin.storage.bucket(app=...)`."""

    def __init__(
        self,
        bucket: storage.Bucket,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        connections: int = 8,
        small_request_timeout_s: float = 30.0,
    ) -> None:
        if chunk_size <= 0 or chunk_size % CHUNK_MULTIPLE:
            raise ValueError(f"chunk_size must be a positive multiple of {CHUNK_MULTIPLE} bytes")
        self.bucket = bucket
        self.chunk_size = chunk_size
        self.small_request_timeout_s = small_request_timeout_s
        _widen_connection_pool(bucket.client, connections)

    def __repr__(self) -> str:
        return f"FirebaseDestination(bucket={self.bucket.name!r})"

    @property
    def bucket_name(self) -> str:
        return str(self.bucket.name)

    def uri(self, key: str = "") -> str:
        return f"gs://{self.bucket.name}/{key}"

    def _small_call(self, timeout: float | None) -> dict[str, Any]:
        budget = self.small_request_timeout_s if timeout is None else max(0.05, timeout)
        retry: Retry = DEFAULT_RETRY.with_timeout(budget)
        return {"timeout": request_timeout(budget), "retry": retry}

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
        validate_object_name(key)
        with storage_errors(object=self.uri(key)):
            if size <= min(self.chunk_size, MULTIPART_MAX):
                return self._put_in_one_request(key, stream, size, content_type, metadata, timeout)
            return self._put_resumable(key, stream, size, content_type, metadata, timeout)

    def _put_in_one_request(
        self,
        key: str,
        stream: BinaryIO,
        size: int,
        content_type: str,
        metadata: dict[str, str],
        timeout: float | None,
    ) -> BlobInfo:
        data = stream.read(size)  # at most one chunk
        if len(data) != size:
            raise EOFError(f"the source ended after {len(data)} of {size} bytes")
        blob = self.bucket.blob(key)
        blob.metadata = dict(metadata)
        blob.upload_from_string(
            data,
            content_type=content_type,
            checksum=None,
            retry=None,
            timeout=request_timeout(timeout),
        )
        return blob_info(blob)  # the response's object resource: the server's md5 and crc32c

    def _put_resumable(
        self,
        key: str,
        stream: BinaryIO,
        size: int,
        content_type: str,
        metadata: dict[str, str],
        timeout: float | None,
    ) -> BlobInfo:
        blob = self.bucket.blob(key, chunk_size=self.chunk_size)
        blob.metadata = dict(metadata)
        writer = _AbandonableWriter(
            blob,
            chunk_size=self.chunk_size,
            ignore_flush=True,
            retry=None,
            content_type=content_type,
            timeout=request_timeout(timeout),
        )
        try:
            left = size
            while left > 0:
                piece = stream.read(min(self.chunk_size, left))
                if not piece:
                    raise EOFError(f"the source ended after {size - left} of {size} bytes")
                writer.write(piece)
                left -= len(piece)
            writer.close()  # sends the last chunk: only now does the object exist
        except BaseException:
            writer.abandon()
            raise
        blob.reload(timeout=request_timeout(timeout), retry=None)
        return blob_info(blob)

    def read_back(self, key: str, *, generation: int, timeout: float | None) -> Digests:
        blob = self.bucket.blob(key, generation=generation)
        sink = _HashSink()
        with storage_errors(object=self.uri(key), generation=generation):
            blob.download_to_file(
                sink, raw_download=True, checksum=None, retry=None, timeout=request_timeout(timeout)
            )
        return sink.hasher.digests()

    def fetch(self, key: str, *, timeout: float | None = None) -> tuple[bytes, BlobInfo] | None:
        validate_object_name(key)
        call = self._small_call(timeout)
        with storage_errors(object=self.uri(key)):
            blob = self.bucket.get_blob(key, **call)
            if blob is None:
                return None
            pinned = self.bucket.blob(key, generation=blob.generation)
            try:
                data = pinned.download_as_bytes(**call)
            except gexc.NotFound:  # replaced or deleted between the two calls
                return None
        return data, blob_info(blob)

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
        validate_object_name(key)
        blob = self.bucket.blob(key)
        blob.metadata = dict(metadata) if metadata else None
        call = self._small_call(timeout)
        if if_generation_match is None:
            call["retry"] = None  # an unconditional write is not idempotent to retry blindly
        with storage_errors(object=self.uri(key)):
            blob.upload_from_string(
                data, content_type=content_type, if_generation_match=if_generation_match, **call
            )
        return blob_info(blob)

    def list(self, prefix: str, *, timeout: float | None = None) -> Iterator[BlobInfo]:
        call = self._small_call(timeout)
        with storage_errors(prefix=self.uri(prefix)):
            for blob in self.bucket.client.list_blobs(self.bucket, prefix=prefix, **call):
                yield blob_info(blob)

    def delete(self, key: str, *, timeout: float | None = None) -> bool:
        validate_object_name(key)
        try:
            with storage_errors(object=self.uri(key)):
                self.bucket.blob(key).delete(**self._small_call(timeout))
        except NotFound:
            return False
        return True


def _widen_connection_pool(client: storage.Client, connections: int) -> None:
    """Let `connections` transfers share the client's session without waiting for a socket."""
    if connections <= 10:  # requests' default pool already holds ten
        return
    session = client._http
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=connections)
    for scheme in ("http://", "https://"):
        with contextlib.suppress(AttributeError):
            session.mount(scheme, adapter)
