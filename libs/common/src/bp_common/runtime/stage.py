"""What a stage is: a pure handler from one validated event to the next, plus its ports."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import BaseModel

from bp_common.blobstore import BlobStore
from bp_common.bus import Publisher
from bp_common.config import Settings
from bp_common.contracts.events import Event
from bp_common.ledger import RunLedger, StageState
from bp_common.secrets import SecretStore
from bp_common.topology import ROUTE_BY_STAGE, Route

In = TypeVar("In", bound=BaseModel)


@dataclass(frozen=True)
class Ports:
    """The adapters a stage runs on; the same stage code gets cloud or local ones."""

    blobs: BlobStore
    ledger: RunLedger
    publisher: Publisher
    secrets: SecretStore


@dataclass(frozen=True)
class RunRef:
    scene_id: str
    run_id: str
    source: tuple[str, str, str] | None = None


@dataclass(frozen=True)
class Skip:
    """A message this stage has nothing to do with (e.g. a manifest upload): ack it quietly."""

    reason: str


@dataclass(frozen=True)
class StageOutput:
    """The stage committed its outputs; emit this event."""

    event: Event
    counts: dict[str, float] = field(default_factory=dict)
    note: str | None = None


@dataclass(frozen=True)
class StageStop:
    """The stage finished without a next event (nothing to collect, quality gates failed)."""

    state: StageState
    note: str
    counts: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StageContext:
    settings: Settings
    ports: Ports
    scene_id: str
    run_id: str
    stage: str
    attempt: int
    log: logging.LoggerAdapter[logging.Logger]

    @property
    def blobs(self) -> BlobStore:
        return self.ports.blobs

    @property
    def run_prefix(self) -> str:
        return f"runs/{self.scene_id}/{self.run_id}/"


def _ref_from_event(event: BaseModel) -> RunRef | Skip:
    if not isinstance(event, Event):
        raise TypeError(f"{type(event).__name__} names no run: give the Stage an identify()")
    return RunRef(scene_id=event.scene_id, run_id=event.run_id)


@dataclass(frozen=True)
class Stage(Generic[In]):
    """A named handler bound to its route (the topic it consumes and the one it produces)."""

    name: str
    handle: Callable[[StageContext, In], StageOutput | StageStop]
    identify: Callable[[In], RunRef | Skip] = _ref_from_event

    @property
    def route(self) -> Route:
        return ROUTE_BY_STAGE[self.name]
