"""A Cloud Storage bucket as a blob store: resumable streaming writes, generation-0 commits.

Reads are pinned to the generation found when the reader opens and checked end to end against
the object's CRC32C; writes are resumable uploads that only finalize when the writer closes
cleanly, so a stage killed or failing mid-write never leaves a partial object behind.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, cast

import google_crc32c
import requests
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import TransportError
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from google.cloud.storage.fileio import BlobReader, BlobWriter
from google.cloud.storage.retry import DEFAULT_RETRY

from bp_common.blobstore.base import BlobInfo, BlobStore
from bp_common.errors import AlreadyExists, NotFound, PipelineError, Unavailable
from bp_common.ids import validate_object_name

# Resumable uploads move in chunks of a multiple of 256 KiB; 8 MiB keeps requests few and RAM low.
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
_CHUNK_MULTIPLE = 256 * 1024
_DEFAULT_EMULATOR_PROJECT = "bp-local"
_TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_NETWORK_FAILURES = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    requests.exceptions.ChunkedEncodingError,
    TransportError,
    ConnectionError,
    TimeoutError,
    http.client.HTTPException,
)


def make_storage_client(
    project: str | None = None, *, emulator_url: str | None = None
) -> storage.Client:
    """A client for fake-gcs-server when STORAGE_EMULATOR_HOST (or emulator_url) is set, else ADC.

    The emulator gets anonymous credentials: it checks none, and asking for real ones would try to
    reach the metadata server.
    """
    url = emulator_url or os.environ.get("STORAGE_EMULATOR_HOST")
    if url:
        return storage.Client(
            project=project or os.environ.get("GOOGLE_CLOUD_PROJECT") or _DEFAULT_EMULATOR_PROJECT,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": url},
        )
    return storage.Client(project=project)


def ensure_bucket(client: storage.Client, name: str) -> None:
    """Create a bucket unless it exists (for emulators and `bp up`; Terraform owns real buckets)."""
    with storage_errors(bucket=name), contextlib.suppress(gexc.Conflict):  # Conflict: a racing peer
        if client.lookup_bucket(name) is None:
            client.create_bucket(name)


def _status(exc: BaseException) -> int | None:
    """The HTTP status a client-library failure carries, when it carries one."""
    if isinstance(exc, gexc.GoogleAPICallError):
        return exc.code if isinstance(exc.code, int) else None
    if isinstance(exc, InvalidResponse):
        status = getattr(exc.response, "status_code", None)
        return status if isinstance(status, int) else None
    return None


def _may_pass(exc: BaseException, status: int | None) -> bool:
    """Whether retrying may help: exhausted library retries, throttling, 5xx, the network."""
    if isinstance(exc, gexc.RetryError | gexc.ServerError):
        return True
    if status is not None:
        return status in _TRANSIENT_STATUS
    return isinstance(exc, _NETWORK_FAILURES)


def storage_error(exc: BaseException, **context: Any) -> BaseException:
    """The pipeline's error for a google-cloud-storage failure, or the failure itself when it is
    a fault retrying will not fix (a bad request, a forbidden bucket, a bug).

    The one translation of the client library's errors: the blob store and upload's Firebase
    Storage destination both raise what this returns.
    """
    if isinstance(exc, PipelineError):
        return exc
    status = _status(exc)
    if isinstance(exc, gexc.NotFound) or status == 404:
        return NotFound("no such object or bucket", **context)
    if isinstance(exc, gexc.PreconditionFailed) or status == 412:
        return AlreadyExists(
            "generation precondition failed (the object exists or changed)", **context
        )
    if isinstance(exc, DataCorruption):
        return Unavailable(f"checksum mismatch in transfer: {exc}", **context)
    if _may_pass(exc, status):
        return Unavailable(f"Cloud Storage: {type(exc).__name__}: {str(exc)[:300]}", **context)
    return exc


@contextmanager
def storage_errors(**context: Any) -> Iterator[None]:
    """Raise google-cloud-storage failures inside the block as `storage_error` translates them."""
    try:
        yield
    except Exception as exc:
        translated = storage_error(exc, **context)
        if translated is exc:
            raise
        raise translated from exc


def blob_info(blob: storage.Blob) -> BlobInfo:
    """A Cloud Storage object's properties as the server reported them (hashes, generation)."""
    return BlobInfo(
        key=blob.name,
        size=int(blob.size or 0),
        generation=int(blob.generation or 0),
        md5_b64=blob.md5_hash,
        crc32c_b64=blob.crc32c,
        metadata=dict(blob.metadata or {}),
        updated=blob.updated,
    )


class _VerifiedReader(BlobReader):  # type: ignore[misc]
    """A BlobReader with typed errors that checks the CRC32C of a front-to-back read at EOF."""

    def __init__(
        self, blob: storage.Blob, uri: str, size: int, crc32c: str | None, **kwargs: Any
    ) -> None:
        super().__init__(blob, **kwargs)
        self._uri = uri
        self._size = size
        self._expected = crc32c
        self._crc: Any = google_crc32c.Checksum() if crc32c else None  # type: ignore[no-untyped-call]
        self._consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        try:
            with storage_errors(object=self._uri):
                data = cast(bytes, super().read(-1 if size is None else size))
        except NotFound as exc:
            raise NotFound(
                "the generation being read is gone (replaced or deleted meanwhile)",
                object=self._uri,
                generation=self._blob.generation,
            ) from exc
        if self._crc is not None:
            self._crc.update(data)
            self._consumed += len(data)
            if self._consumed >= self._size or not data:
                self._verify()
        return data

    def _verify(self) -> None:
        crc, self._crc = self._crc, None
        actual = base64.b64encode(crc.digest()).decode()
        if self._consumed != self._size or actual != self._expected:
            raise Unavailable(
                "streamed bytes do not match the object's size and CRC32C",
                object=self._uri,
                expected=self._expected,
                actual=actual,
                size=self._size,
                read=self._consumed,
            )

    def seek(self, pos: int, whence: int = 0) -> int:
        self._crc = None  # a non-sequential read cannot be checked against the whole object
        with storage_errors(object=self._uri):
            return cast(int, super().seek(pos, whence))


class _AbortableWriter(BlobWriter):  # type: ignore[misc]
    """A BlobWriter with typed errors that can be abandoned without ever finalizing the upload,
    and that confirms a finished upload whose last answer was lost by the object's checksum."""

    def __init__(self, blob: storage.Blob, uri: str, **kwargs: Any) -> None:
        super().__init__(blob, **kwargs)
        self._uri = uri
        self._aborted = False
        self._size = 0
        self._crc: Any = google_crc32c.Checksum()  # type: ignore[no-untyped-call]

    def write(self, b: Any) -> int:
        with storage_errors(object=self._uri):
            written = cast(int, super().write(b))
        self._size += written
        self._crc.update(bytes(b[:written]))
        return written

    def close(self) -> None:
        # io.IOBase.__del__ calls close(): an abandoned writer must not finalize on collection.
        if self._aborted:
            return
        try:
            with storage_errors(object=self._uri):
                super().close()
        except NotFound:
            # The last chunk reached the server but its answer did not reach us; the retry asks
            # for a session that, complete, is gone (fake-gcs-server answers 404 where Cloud
            # Storage answers 200). The object holding exactly these bytes says it finished.
            if not self._landed():
                raise
            self._buffer.close()

    def _landed(self) -> bool:
        with storage_errors(object=self._uri):
            stored = self._blob.bucket.get_blob(self._blob.name, timeout=60.0)
        crc = base64.b64encode(self._crc.digest()).decode()
        return stored is not None and (stored.size, stored.crc32c) == (self._size, crc)

    def abort(self) -> None:
        self._aborted = True
        # Best effort: the final chunk was never sent, and unfinalized sessions expire anyway.
        with contextlib.suppress(Exception):
            self.terminate()


class GcsBlobStore(BlobStore):
    """One bucket. Errors: NotFound (404), AlreadyExists (412 on create-only), Unavailable
    (connection failures, 408/429/5xx, checksum mismatches)."""

    def __init__(
        self,
        client: storage.Client,
        bucket: str,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        retry: Retry = DEFAULT_RETRY,
        timeout: float = 60.0,
    ) -> None:
        if chunk_size <= 0 or chunk_size % _CHUNK_MULTIPLE:
            raise ValueError(f"chunk_size must be a positive multiple of {_CHUNK_MULTIPLE}")
        self.client = client
        self.bucket_name = bucket
        self.bucket = client.bucket(bucket)
        self.chunk_size = chunk_size
        self.retry = retry
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"GcsBlobStore(bucket={self.bucket_name!r})"

    def uri(self, key: str = "") -> str:
        return f"gs://{self.bucket_name}/{key}"

    def _blob(self, key: str) -> storage.Blob:
        validate_object_name(key)
        return self.bucket.blob(key, chunk_size=self.chunk_size)

    def _get(self, key: str) -> storage.Blob | None:
        validate_object_name(key)
        with storage_errors(object=self.uri(key)):
            return self.bucket.get_blob(key, retry=self.retry, timeout=self.timeout)

    @contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        found = self._get(key)
        if found is None:
            raise NotFound("no such object", object=self.uri(key))
        # A blob built from name + generation (not the mediaLink, which fake-gcs-server returns
        # without one) makes every ranged read ask for the version that was opened.
        pinned = self.bucket.blob(key, chunk_size=self.chunk_size, generation=found.generation)
        reader = _VerifiedReader(
            pinned,
            self.uri(key),
            int(found.size or 0),
            found.crc32c,
            chunk_size=self.chunk_size,
            retry=self.retry,
            timeout=self.timeout,
        )
        with reader:
            yield cast(BinaryIO, reader)

    @contextmanager
    def open_write(
        self,
        key: str,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        if_absent: bool = False,
    ) -> Iterator[BinaryIO]:
        blob = self._blob(key)
        blob.metadata = dict(metadata) if metadata else None
        precondition = {"if_generation_match": 0} if if_absent else {}
        # Cloud Storage enforces the precondition on resumable uploads; fake-gcs-server ignores
        # it there, so look first (on the emulator a race can still slip through).
        if if_absent and self._get(key) is not None:
            raise AlreadyExists("object already exists", object=self.uri(key))
        writer = _AbortableWriter(
            blob,
            self.uri(key),
            chunk_size=self.chunk_size,
            ignore_flush=True,
            retry=self.retry,
            content_type=content_type,
            timeout=self.timeout,
            **precondition,
        )
        try:
            yield cast(BinaryIO, writer)
        except BaseException:
            writer.abort()
            raise
        writer.close()

    def create_only(self, key: str, data: bytes, *, content_type: str | None = None) -> BlobInfo:
        blob = self._blob(key)
        with storage_errors(object=self.uri(key)):
            # The generation-0 precondition makes a retry safe: a second attempt cannot overwrite.
            blob.upload_from_string(
                data,
                content_type=content_type or "application/octet-stream",
                if_generation_match=0,
                retry=self.retry,
                timeout=self.timeout,
            )
        return blob_info(blob)

    def stat(self, key: str) -> BlobInfo | None:
        blob = self._get(key)
        return None if blob is None else blob_info(blob)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        # Cloud Storage lists in lexicographic name order, page by page.
        with storage_errors(object=self.uri(prefix)):
            for blob in self.client.list_blobs(
                self.bucket_name, prefix=prefix or None, retry=self.retry, timeout=self.timeout
            ):
                yield blob_info(blob)

    def delete(self, key: str) -> bool:
        blob = self._blob(key)
        try:
            with storage_errors(object=self.uri(key)):
                blob.delete(retry=self.retry, timeout=self.timeout)
        except NotFound:
            return False
        return True
