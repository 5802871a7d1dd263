"""What a stage is: a pure handler from one validated event to the next, plus its ports."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, overload

from pydantic import BaseModel
from typing_extensions import TypeVar

from bp_common.blobstore import BlobStore
from bp_common.bus import Publisher
from bp_common.config import Settings
from bp_common.contracts.events import Event
from bp_common.errors import TransientError
from bp_common.ledger import RunLedger, StageState
from bp_common.metrics import PipelineMetrics, pipeline_metrics
from bp_common.runtime.limits import Footprint
from bp_common.secrets import SecretStore
from bp_common.topology import ROUTE_BY_STAGE, Route

In = TypeVar("In", bound=BaseModel)
# A stage's own adapters beyond the ports (upload: its destination and catalogue); most have none.
A = TypeVar("A", default=None)


@dataclass(frozen=True)
class Ports:
    """The adapters a stage runs on; the same stage code gets cloud or local ones.

    What differs between the embedded default and a service is said here, never found out by
    asking which adapter this is.
    """

    blobs: BlobStore
    ledger: RunLedger
    publisher: Publisher
    secrets: SecretStore
    workdir: Path
    """This process's own folder for scratch and side stores (a collector's jobs, a SQLite
    catalogue): the embedded run's folder, or BP_DATA_DIR in a service."""
    publication_folder: Path | None = None
    """A folder standing in for the bucket datasets are published to (the embedded default), or
    None to publish to BP_FIREBASE_BUCKET."""


@dataclass(frozen=True)
class RunRef:
    scene_id: str
    run_id: str
    source: tuple[str, str, str] | None = None
    note: str | None = None
    """Why this run, when `resolve` mapped the message onto one that already exists."""
    unit: str | None = None
    """The piece of the stage this message is (`collect/{shard}`), held and recorded on its own;
    None for the whole stage."""


@dataclass(frozen=True)
class Skip:
    """A message this stage has nothing to do with (e.g. a manifest upload): ack it quietly."""

    reason: str


@dataclass(frozen=True)
class StageOutput:
    """The stage committed its outputs; emit this event (and `fan_out`, the same commit's
    further events: a plan's shards after the first). A crash part-way through publishing
    re-emits them all, so each may arrive more than once: their consumers are idempotent."""

    event: Event
    counts: dict[str, float] = field(default_factory=dict)
    note: str | None = None
    held_back: dict[str, str] = field(default_factory=dict)
    """Robots whose datasets the stage held back, and why: the run ends partially published."""
    fan_out: tuple[Event, ...] = ()

    @classmethod
    def of_all(
        cls, events: list[Event], counts: dict[str, float], note: str | None = None
    ) -> StageOutput:
        """One commit that emits every event, in order (at least one)."""
        first, *rest = events
        return cls(first, counts=counts, note=note, fan_out=tuple(rest))


@dataclass(frozen=True)
class StageStop:
    """The stage finished without a next event (nothing to collect, quality gates failed)."""

    state: StageState
    note: str
    counts: dict[str, float] = field(default_factory=dict)


class HandedBack(TransientError):
    """The delivery stopped at a safe point because its process is stopping (`stopping`): what
    it committed stands, and its message goes back unused for another process to carry on."""


@dataclass(frozen=True)
class StageContext(Generic[A]):
    settings: Settings
    ports: Ports
    scene_id: str
    run_id: str
    stage: str
    attempt: int
    log: logging.LoggerAdapter[logging.Logger]
    adapters: A
    """What the stage's `adapters` hook built for this process (None when it has none)."""
    unit: str = ""
    """The unit of work this delivery holds: the stage's name, or a piece of it."""
    attempt_id: str = "a00-local"
    """This delivery's own name: outputs it writes before its commit go under
    `.../attempts/{attempt_id}/`, where no other delivery writes."""
    lease_check: Callable[[], None] = lambda: None
    """Raises LeaseLost unless this delivery still holds the run's unit; call it right before
    a commit, so a delivery whose lease lapsed does not commit over its successor."""
    metrics: PipelineMetrics = field(default_factory=pipeline_metrics)
    """The instruments a stage records its own numbers on (bp_common.metrics)."""
    stopping: Callable[[], bool] = lambda: False
    """True once this process was asked to stop (SIGTERM, a preemption notice): a long delivery
    commits what it has and hands its message back rather than starting more work."""

    @property
    def blobs(self) -> BlobStore:
        return self.ports.blobs

    @property
    def run_prefix(self) -> str:
        return f"runs/{self.scene_id}/{self.run_id}/"


class Admission(Protocol):
    """A cap on runs working at once: whether this run may start now, and its leaving."""

    def admit(self, ports: Ports, settings: Settings, ref: RunRef) -> str | None:
        """None when admitted (again); else why not now (what fills the cap)."""

    def release(self, ports: Ports, settings: Settings, ref: RunRef) -> None: ...


def _ref_from_event(event: BaseModel) -> RunRef | Skip:
    if not isinstance(event, Event):
        raise TypeError(f"{type(event).__name__} names no run: give the Stage an identify()")
    return RunRef(scene_id=event.scene_id, run_id=event.run_id)


def _no_adapters(settings: Settings, ports: Ports) -> None:
    return None


def _as_is(ports: Ports, settings: Settings, event: BaseModel, ref: RunRef) -> RunRef:
    return ref


class Stage(Generic[In, A]):
    """A named handler bound to its route (the topic it consumes and the one it produces).

    `adapters`, when given, builds what the handler needs beyond the ports; the composition root
    (bp_common.wiring) calls it once per process and hands the result to every delivery as
    `ctx.adapters`, typed as the handler expects. The two constructors keep hook and handler in
    step: a handler that expects adapters without a hook to build them does not type-check.

    `resolve` may map a message onto a run that already exists (export: an identical re-drop);
    `footprint` is what one delivery needs (work slots derive from it); `deadline_s`, when
    given, bounds how long one delivery works (bp_common.runtime.limits); `admission`, when
    given, caps the runs whose deliveries work at once (a run over it waits, then is handed
    back, without using a delivery attempt).
    """

    name: str
    handle: Callable[[StageContext[A], In], StageOutput | StageStop]
    identify: Callable[[In], RunRef | Skip]
    adapters: Callable[[Settings, Ports], A]
    resolve: Callable[[Ports, Settings, In, RunRef], RunRef]
    footprint: Footprint
    deadline_s: Callable[[Settings], float] | None
    admission: Admission | None

    @overload
    def __init__(
        self: Stage[In, None],
        name: str,
        handle: Callable[[StageContext[None], In], StageOutput | StageStop],
        identify: Callable[[In], RunRef | Skip] = ...,
        *,
        resolve: Callable[[Ports, Settings, In, RunRef], RunRef] = ...,
        footprint: Footprint = ...,
        deadline_s: Callable[[Settings], float] | None = ...,
        admission: Admission | None = ...,
    ) -> None: ...

    @overload
    def __init__(
        self,
        name: str,
        handle: Callable[[StageContext[A], In], StageOutput | StageStop],
        identify: Callable[[In], RunRef | Skip] = ...,
        *,
        adapters: Callable[[Settings, Ports], A],
        resolve: Callable[[Ports, Settings, In, RunRef], RunRef] = ...,
        footprint: Footprint = ...,
        deadline_s: Callable[[Settings], float] | None = ...,
        admission: Admission | None = ...,
    ) -> None: ...

    def __init__(
        self,
        name: str,
        handle: Callable[[StageContext[Any], In], StageOutput | StageStop],
        identify: Callable[[In], RunRef | Skip] = _ref_from_event,
        *,
        adapters: Callable[[Settings, Ports], Any] = _no_adapters,
        resolve: Callable[[Ports, Settings, In, RunRef], RunRef] = _as_is,
        footprint: Footprint = Footprint(),
        deadline_s: Callable[[Settings], float] | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.name = name
        self.handle = handle
        self.identify = identify
        self.adapters = adapters
        self.resolve = resolve
        self.footprint = footprint
        self.deadline_s = deadline_s
        self.admission = admission

    def __repr__(self) -> str:
        return f"Stage({self.name!r})"

    @property
    def route(self) -> Route:
        return ROUTE_BY_STAGE[self.name]
