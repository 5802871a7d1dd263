"""What upload counts as a verification failure on bp.upload.verification_failures."""

from __future__ import annotations

from bp_upload.publication.result import FileFailure, UploadResult
from bp_upload.stage import verification_failures


def failure(error_type: str, *, permanent: bool = True) -> FileFailure:
    return FileFailure("data/chunk-000/file-000.parquet", error_type, "", 3, permanent)


def test_files_that_failed_a_checksum_or_the_audit_count_and_other_failures_do_not() -> None:
    assert verification_failures(UploadResult()) == 0
    result = UploadResult(
        failures=(
            failure("VerificationFailed"),
            failure("SourceCorrupt"),
            failure("DeadlineExceeded", permanent=False),
        ),
        repaired=2,
    )
    assert verification_failures(result) == 4
