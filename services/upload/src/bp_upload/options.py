"""How an upload behaves: concurrency, chunking, verification depth, retries and time limits."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bp_upload.publication.retry_policy import Backoff

MIB = 1024 * 1024
CHUNK_MULTIPLE = 256 * 1024


@dataclass(frozen=True)
class UploadOptions:
    """Limits for one dataset upload; every time limit bounds wall time, not attempts."""

    concurrency: int = 8
    chunk_size: int = 8 * MIB
    read_back: bool = False
    file_timeout_s: float | None = 300.0
    deadline_s: float | None = 3600.0
    request_timeout_s: float = 60.0
    max_attempts: int = 8
    max_mismatches: int = 3
    backoff: Backoff = field(default_factory=Backoff)
    stop_grace_s: float = 5.0
    cleanup_timeout_s: float = 60.0
    audit_rounds: int = 2

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.chunk_size <= 0 or self.chunk_size % CHUNK_MULTIPLE:
            raise ValueError(f"chunk_size must be a positive multiple of {CHUNK_MULTIPLE} bytes")
        if self.max_attempts < 1 or self.max_mismatches < 1:
            raise ValueError("max_attempts and max_mismatches must be at least 1")


class UploadSettings(BaseSettings):
    """`BP_UPLOAD_*` variables; unset values keep UploadOptions' defaults."""

    model_config = SettingsConfigDict(env_prefix="BP_UPLOAD_", extra="ignore", frozen=True)

    concurrency: int = Field(default=8, ge=1, le=128)
    chunk_size_kib: int = Field(default=8 * 1024, ge=256)
    read_back: bool = False
    file_timeout_s: float = Field(default=300.0, gt=0)
    deadline_s: float | None = Field(default=None, gt=0)
    request_timeout_s: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=8, ge=1, le=100)
    max_mismatches: int = Field(default=3, ge=1, le=20)
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=20.0, ge=0)
    cleanup_timeout_s: float = Field(default=60.0, gt=0)

    @field_validator("chunk_size_kib")
    @classmethod
    def _whole_quarter_mib(cls, value: int) -> int:
        if value % 256:
            raise ValueError("chunk_size_kib must be a multiple of 256 (resumable uploads need it)")
        return value

    def options(self, *, deadline_s: float | None) -> UploadOptions:
        """Options with the deadline the caller can afford (a push request's, or the CLI's)."""
        return UploadOptions(
            concurrency=self.concurrency,
            chunk_size=self.chunk_size_kib * 1024,
            read_back=self.read_back,
            file_timeout_s=self.file_timeout_s,
            deadline_s=self.deadline_s if self.deadline_s is not None else deadline_s,
            request_timeout_s=self.request_timeout_s,
            max_attempts=self.max_attempts,
            max_mismatches=self.max_mismatches,
            backoff=Backoff(initial_s=self.backoff_initial_s, cap_s=self.backoff_max_s),
            cleanup_timeout_s=self.cleanup_timeout_s,
        )
