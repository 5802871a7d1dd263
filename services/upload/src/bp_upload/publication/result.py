"""What an upload did, typed and never None: counts, bytes, time, and every failure."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FileFailure:
    """A file that did not make it (or needed retries), and why."""

    path: str
    error_type: str
    message: str
    attempts: int
    permanent: bool


@dataclass(frozen=True)
class UploadResult:
    """One dataset's transfer.

    uploaded: files sent in this invocation; skipped: files already at the destination and
    verified against the source; verified: files whose stored md5 and crc32c (and read-back, when
    on) were confirmed in this invocation; bytes: bytes sent; retries: extra attempts;
    failures: files that failed for good; repaired: objects the pre-commit audit found missing
    or altered and sent again.
    """

    files: int = 0
    uploaded: int = 0
    skipped: int = 0
    verified: int = 0
    bytes: int = 0
    retries: int = 0
    repaired: int = 0
    duration_s: float = 0.0
    failures: tuple[FileFailure, ...] = field(default_factory=tuple)
    already_published: bool = False

    def counts(self) -> dict[str, float]:
        """The numbers the run ledger and `bp runs show` keep."""
        return {
            "files": float(self.files),
            "uploaded": float(self.uploaded),
            "skipped": float(self.skipped),
            "verified": float(self.verified),
            "bytes": float(self.bytes),
            "retries": float(self.retries),
            "repaired": float(self.repaired),
            "failures": float(len(self.failures)),
            "duration_s": round(self.duration_s, 3),
        }

    def summary(self) -> str:
        mb = self.bytes / 1e6
        rate = mb / self.duration_s if self.duration_s > 0 else 0.0
        text = (
            f"{self.uploaded} uploaded, {self.skipped} skipped, {self.verified} verified, "
            f"{mb:.1f} MB in {self.duration_s:.1f}s ({rate:.1f} MB/s)"
        )
        if self.retries:
            text += f", {self.retries} retries"
        if self.repaired:
            text += f", {self.repaired} repaired"
        if self.failures:
            text += f", {len(self.failures)} failed"
        if self.already_published:
            text += " (already published)"
        return text


def combine(results: list[UploadResult]) -> dict[str, float]:
    """Totals over several robots' datasets, for one stage's counts."""
    total: dict[str, float] = {}
    for result in results:
        for key, value in result.counts().items():
            total[key] = total.get(key, 0.0) + value
    total["datasets"] = float(len(results))
    return total
