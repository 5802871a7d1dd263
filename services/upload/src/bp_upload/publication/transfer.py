"""Sends a dataset's files to the destination in parallel, each verified, within deadlines.

Per file, one read pass of the source feeds the upload and computes md5, crc32c and sha256.
The object is accepted only when the destination's own md5 and crc32c equal those digests (and,
in read-back mode, when a fresh download hashes the same); its sha256 must equal the import
manifest's, else the source is corrupt. An object already at the destination with the
manifest's sha256 in its metadata is hashed against the source instead of sent again.

Transient failures (the destination unreachable, 408/429/5xx, a checksum mismatch) are retried
with exponential backoff and full jitter; nothing is retried past the file's timeout or the
global deadline, and the coordinator stops waiting at the deadline whatever a transfer does.
"""

from __future__ import annotations

import logging
import mimetypes
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Literal

from bp_common.blobstore import BlobInfo, BlobStore
from bp_common.errors import NotFound, PipelineError, TransientError, Unavailable

from bp_upload.destinations.checksums import Digests, HashingReader, hash_stream
from bp_upload.destinations.port import Destination
from bp_upload.errors import (
    ChecksumMismatch,
    DeadlineExceeded,
    SourceCorrupt,
    SourceIncomplete,
    UploadCancelled,
    VerificationFailed,
)
from bp_upload.options import UploadOptions
from bp_upload.publication.import_manifest import SourceFile
from bp_upload.publication.result import FileFailure
from bp_upload.publication.retry_policy import Cancel, Deadline, soonest

log = logging.getLogger("bp.upload")
SHA256_METADATA = "sha256"
_CONTENT_TYPES = {
    ".json": "application/json",
    ".jsonl": "application/jsonl",
    ".parquet": "application/vnd.apache.parquet",
    ".mp4": "video/mp4",
    ".mkv": "video/x-matroska",
    ".md": "text/markdown",
}


def content_type_for(path: str) -> str:
    suffix = path[path.rfind(".") :].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or "application/octet-stream"


@dataclass(frozen=True)
class FileJob:
    """One file to place: where it is read, where it goes, what the destination has now."""

    file: SourceFile
    source_key: str
    dest_key: str
    existing: BlobInfo | None = None


@dataclass(frozen=True)
class FileOutcome:
    path: str
    key: str
    action: Literal["uploaded", "skipped"]
    stored: BlobInfo
    digests: Digests
    attempts: int


@dataclass
class TransferReport:
    outcomes: dict[str, FileOutcome] = field(default_factory=dict)
    failures: list[FileFailure] = field(default_factory=list)
    errors: list[PipelineError] = field(default_factory=list)
    stopped: PipelineError | None = None

    @property
    def retries(self) -> int:
        return sum(o.attempts - 1 for o in self.outcomes.values() if o.action == "uploaded")

    def first_error(self) -> PipelineError | None:
        """The error that decides the run: a permanent one before any transient one."""
        for error in self.errors:
            if error.permanent:
                return error
        return self.errors[0] if self.errors else self.stopped


def matches(stored: BlobInfo, digests: Digests) -> bool:
    """The destination's own size, md5 and crc32c equal the digests of the bytes sent."""
    return (
        stored.size == digests.size
        and stored.md5_b64 is not None
        and stored.crc32c_b64 is not None
        and stored.md5_b64 == digests.md5_b64
        and stored.crc32c_b64 == digests.crc32c_b64
    )


def claims(stored: BlobInfo, file: SourceFile) -> bool:
    """The object says it holds this file (size and sha256 metadata); it is checked before use."""
    return stored.size == file.size and stored.metadata.get(SHA256_METADATA) == file.sha256


class Transfer:
    """Transfers a set of files for one dataset; one instance per dataset and attempt."""

    def __init__(
        self,
        source: BlobStore,
        destination: Destination,
        options: UploadOptions,
        *,
        deadline: Deadline,
        cancel: Cancel | None = None,
        metadata: dict[str, str] | None = None,
        progress: Callable[[FileOutcome], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.destination = destination
        self.options = options
        self.deadline = deadline
        self.cancel = cancel or Cancel()
        self.metadata = metadata or {}
        self.progress = progress
        self.clock = clock

    def run(self, jobs: Sequence[FileJob]) -> TransferReport:
        report = TransferReport()
        if not jobs:
            return report
        pool = ThreadPoolExecutor(
            max_workers=min(self.options.concurrency, len(jobs)), thread_name_prefix="bp-upload"
        )
        futures: dict[Future[FileOutcome], FileJob] = {
            pool.submit(self._place, job): job for job in jobs
        }
        pending: set[Future[FileOutcome]] = set(futures)
        settled: set[Future[FileOutcome]] = set()
        try:
            while pending:
                done, pending = wait(
                    pending, timeout=self.deadline.remaining(), return_when=FIRST_COMPLETED
                )
                for future in done:
                    self._collect(future, futures[future], report)
                if not done and self.deadline.expired:
                    report.stopped = DeadlineExceeded(
                        f"{self.deadline.what} ran out with {len(pending)} file(s) unfinished",
                        unfinished=len(pending),
                    )
                    break
        finally:
            if pending and not self.cancel.is_set:
                self.cancel.set("the deadline passed" if report.stopped else "interrupted")
            pool.shutdown(wait=False, cancel_futures=True)
            # A future cancelled before it ran never counts as done for wait(): leave it out.
            pending = {f for f in pending if not f.cancelled()}
            if pending:
                # Running transfers stop at their next chunk, and their requests' timeouts end
                # at the deadline: wait that long at most, so none writes after we return.
                settled, _ = wait(pending, timeout=self.options.stop_grace_s)
        for future in settled:
            if not future.cancelled():
                self._collect(future, futures[future], report)
        return report

    def _collect(self, future: Future[FileOutcome], job: FileJob, report: TransferReport) -> None:
        try:
            outcome = future.result()
        except UploadCancelled:
            return  # stopped because of another file or the deadline, not a failure of its own
        except PipelineError as exc:
            self._failed(job, exc, report)
            return
        except Exception as exc:  # an unforeseen fault: reported, and the run retried
            self._failed(job, TransientError(f"{type(exc).__name__}: {exc}"), report)
            return
        report.outcomes[job.file.path] = outcome
        if self.progress is not None:
            self.progress(outcome)

    def _failed(self, job: FileJob, error: PipelineError, report: TransferReport) -> None:
        attempts = int(error.context.get("attempts", 1))
        report.failures.append(
            FileFailure(job.file.path, error.kind, error.message, attempts, error.permanent)
        )
        report.errors.append(error)
        if error.permanent and not self.cancel.is_set:
            self.cancel.set(f"{job.file.path} failed for good ({error.kind})")
        log.warning("upload of %s failed: %s", job.file.path, error)

    def _check(self, file_deadline: Deadline, path: str) -> None:
        self.cancel.check(file=path)
        self.deadline.check(file=path)
        file_deadline.check(file=path)

    def _request_timeout(self, file_deadline: Deadline) -> float:
        left = soonest(file_deadline, self.deadline)
        return (
            self.options.request_timeout_s
            if left is None
            else min(self.options.request_timeout_s, left)
        )

    def _place(self, job: FileJob) -> FileOutcome:
        """Skip, or upload and verify, one file, retrying what may pass."""
        path = job.file.path
        file_deadline = Deadline(
            self.options.file_timeout_s, clock=self.clock, what=f"the per-file timeout of {path}"
        )
        existing = job.existing
        tries = attempts = mismatches = 0
        while True:
            self._check(file_deadline, path)
            tries += 1
            try:
                if existing is not None and claims(existing, job.file):
                    skipped = self._verify_existing(job, existing, file_deadline)
                    if skipped is not None:
                        return skipped
                existing = None
                attempts += 1
                return self._upload(job, file_deadline, attempts)
            except ChecksumMismatch as exc:
                mismatches += 1
                if mismatches >= self.options.max_mismatches:
                    raise VerificationFailed(
                        f"still failing verification after {mismatches} tries: {exc.message}",
                        **{**exc.context, "attempts": tries},
                    ) from exc
                error: PipelineError = exc
            except Unavailable as exc:
                error = exc
            except NotFound as exc:
                raise SourceIncomplete(
                    "a listed file vanished from the source",
                    file=path,
                    source=job.source_key,
                    attempts=tries,
                ) from exc
            except PipelineError as exc:  # permanent, a deadline, or a cancel: not retried here
                exc.context.setdefault("attempts", tries)
                raise
            if tries >= self.options.max_attempts:
                error.context["attempts"] = tries
                raise error
            delay = self.options.backoff.delay(tries)
            left = soonest(file_deadline, self.deadline)
            log.info("retrying %s in %.2fs after: %s", path, delay, error)
            self.cancel.sleep(delay if left is None else min(delay, left))

    def _verify_existing(
        self, job: FileJob, existing: BlobInfo, file_deadline: Deadline
    ) -> FileOutcome | None:
        """A present object counts as done only if the source hashes to what it holds."""
        path = job.file.path
        with self.source.open_read(job.source_key) as raw:
            digests = hash_stream(raw, check=lambda: self._check(file_deadline, path))
        self._check_source(job, digests)
        if not matches(existing, digests):
            log.warning("%s is at the destination but differs from the source: resending", path)
            return None
        if self.options.read_back:
            back = self.destination.read_back(
                job.dest_key,
                generation=existing.generation,
                timeout=self._request_timeout(file_deadline),
            )
            if back != digests:
                log.warning("%s read back differently: resending", path)
                return None
        return FileOutcome(path, job.dest_key, "skipped", existing, digests, attempts=0)

    def _check_source(self, job: FileJob, digests: Digests) -> None:
        if digests.size != job.file.size or digests.sha256 != job.file.sha256:
            raise SourceCorrupt(
                "source bytes do not match the import manifest",
                file=job.file.path,
                expected_sha256=job.file.sha256,
                actual_sha256=digests.sha256,
                expected_size=job.file.size,
                actual_size=digests.size,
            )

    def _upload(self, job: FileJob, file_deadline: Deadline, attempts: int) -> FileOutcome:
        path = job.file.path
        with self.source.open_read(job.source_key) as raw:
            reader = HashingReader(raw, check=lambda: self._check(file_deadline, path))
            try:
                stored = self.destination.put(
                    job.dest_key,
                    reader,  # type: ignore[arg-type]
                    job.file.size,
                    content_type=content_type_for(path),
                    metadata={**self.metadata, SHA256_METADATA: job.file.sha256},
                    timeout=self._request_timeout(file_deadline),
                )
            except EOFError as exc:
                raise SourceCorrupt(
                    f"the source is shorter than the import manifest says: {exc}",
                    file=path,
                    expected_size=job.file.size,
                ) from exc
        digests = reader.digests()
        try:
            self._check_source(job, digests)
        except SourceCorrupt:
            self._discard(job.dest_key)
            raise
        if not matches(stored, digests):
            raise ChecksumMismatch(
                "the stored object's md5/crc32c differ from the bytes sent",
                file=path,
                object=self.destination.uri(job.dest_key),
                sent_md5=digests.md5_b64,
                stored_md5=stored.md5_b64,
                sent_crc32c=digests.crc32c_b64,
                stored_crc32c=stored.crc32c_b64,
            )
        if self.options.read_back:
            back = self.destination.read_back(
                job.dest_key,
                generation=stored.generation,
                timeout=self._request_timeout(file_deadline),
            )
            if back != digests:
                raise ChecksumMismatch(
                    "the object read back differs from the bytes sent",
                    file=path,
                    object=self.destination.uri(job.dest_key),
                    generation=stored.generation,
                )
        return FileOutcome(path, job.dest_key, "uploaded", stored, digests, attempts)

    def _discard(self, key: str) -> None:
        try:
            self.destination.delete(key, timeout=self.options.request_timeout_s)
        except PipelineError as exc:  # cleanup of the run prefix removes it later
            log.warning("could not remove %s after a corrupt source read: %s", key, exc)
