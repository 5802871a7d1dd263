"""Typed upload errors: which are retried (transient) and which fail the run (permanent)."""

from __future__ import annotations

from typing import Any

from bp_common.errors import InvalidInput, PermanentError, PipelineError, TransientError


class SourceCorrupt(InvalidInput):
    """A source file's bytes do not match the import manifest's sha256 or size: never retried."""


class SourceIncomplete(InvalidInput):
    """The import manifest names a file the source does not have, or is itself unreadable."""


class ChecksumMismatch(TransientError):
    """The stored object's md5/crc32c (or its read-back) differs from the bytes sent: resend."""


class ObjectConflict(PermanentError):
    """A published key already holds other bytes than this dataset's: it is never overwritten."""


class VerificationFailed(PermanentError):
    """An object still failed verification after every retry: the run fails and is cleaned up."""


class DeadlineExceeded(TransientError):
    """The per-file timeout or the global deadline ran out; a redelivery resumes the upload."""


class UploadCancelled(TransientError):
    """The transfer was stopped because another file failed for good or the deadline passed."""


class OutsideRunPrefix(PermanentError):
    """A key outside the run's own prefix reached code that may only touch the run's prefix."""


class CleanupFailed(TransientError):
    """Removing a failed run's partial objects failed; a retry runs the cleanup again."""


class _UploadFailure:
    """What a failed dataset upload carries beside its cause: the typed partial result."""

    cause: PipelineError
    result: Any

    @property
    def kind(self) -> str:
        return self.cause.kind


class DatasetUploadFailed(_UploadFailure, TransientError):
    """A dataset upload failed for a reason a redelivery may clear; it resumes from here."""


class DatasetRejected(_UploadFailure, PermanentError):
    """A dataset upload failed for good (corrupt source, persistent mismatch): dead-letter it."""


def upload_failed(
    message: str, *, cause: PipelineError, result: Any, **context: Any
) -> DatasetUploadFailed | DatasetRejected:
    """The failure to raise for a dataset: permanent exactly when its cause is."""
    kind = DatasetRejected if cause.permanent else DatasetUploadFailed
    error = kind(message, **{**cause.context, **context})
    error.cause = cause
    error.result = result
    return error
