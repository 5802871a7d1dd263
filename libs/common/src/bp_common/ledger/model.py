"""The run document (schema v3): per run and per stage state, attempts, timings, counts, error,
and whether a committed stage's event was published."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION: Final = 3


class StageState(StrEnum):
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"
    QUALITY_FAILED = "quality_failed"


class StageError(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    message: str
    permanent: bool
    context: dict[str, str] = Field(default_factory=dict)
    at: datetime


class EmittedEvent(BaseModel):
    """The event a stage emitted, kept so a duplicate delivery can re-emit it without work."""

    model_config = ConfigDict(extra="forbid")

    topic: str
    data: str
    attributes: dict[str, str]


class StageRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: StageState
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    counts: dict[str, float] = Field(default_factory=dict)
    error: StageError | None = None
    emitted: EmittedEvent | None = None
    fanned_out: list[EmittedEvent] = Field(default_factory=list)
    """The same commit's further events (a plan's shards after the first), published after it."""
    published_at: datetime | None = None
    """When the emitted event reached the bus; a committed stage without it is re-emitted."""
    note: str | None = None
    held_back: dict[str, str] = Field(default_factory=dict)
    """Robots whose datasets this stage held back (their own gates failed), and why."""


class RunSource(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bucket: str
    object: str
    generation: str


class RunRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[3] = SCHEMA_VERSION
    run_id: str
    scene_id: str
    source: RunSource | None = None
    created_at: datetime
    updated_at: datetime
    stages: dict[str, StageRecord] = Field(default_factory=dict)
    expire_at: datetime | None = None
    """Set when the run ends: past it, retention removes the run (Firestore's TTL, `bp gc`)."""

    @property
    def state(self) -> str:
        """The run's overall state along the pipeline's stages (bp_common.ledger.run_state)."""
        # Imported here: the derivation reads this model, and the topology's stage order.
        from bp_common.ledger.run_state import run_state

        return run_state(self).state.value

    def to_document(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
