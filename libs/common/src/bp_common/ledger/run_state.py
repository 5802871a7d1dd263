"""Where a run truly is, derived from its stage records along the pipeline's stages.

One derivation for every reader (`bp runs`, the status page and its JSON API):

- `succeeded` only once the last stage (upload) committed: the datasets are published;
- `partially_published` when it committed but a stage held some robots' datasets back (their
  own quality gates failed): the others are published, and `held_back` names who and why;
- `failed` names the stage that failed for good and its error; `quality_failed` the stage whose
  gates held the datasets back;
- `stopped` when a stage ended the run on purpose (a superseded scene, nothing to collect),
  with its reason;
- `running` from the first record until one of the above, `pending` before any stage started.

Stages not yet started read `pending` while the run is live, and `not_run` once it has ended
before them. A stage worked in pieces (`collect/{shard}`, each held and recorded on its own) reads
as its own record once it has one, else as its pieces rolled up: succeeded as the piece that
emitted the stage's event, failed when a piece failed for good (naming it), retrying when one
retries, else running.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from bp_common.ledger.model import RunRecord, StageRecord, StageState
from bp_common.topology import STAGE_NAMES


class RunStateName(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIALLY_PUBLISHED = "partially_published"
    FAILED = "failed"
    QUALITY_FAILED = "quality_failed"
    STOPPED = "stopped"


PENDING_STAGE = "pending"
NOT_RUN_STAGE = "not_run"


@dataclass(frozen=True)
class RunState:
    """The run's state, the stage that decides it, why, and every pipeline stage's state."""

    state: RunStateName
    stage: str | None = None
    reason: str | None = None
    stages: dict[str, str] = field(default_factory=dict)
    held_back: dict[str, str] = field(default_factory=dict)
    """Robots whose datasets were held back, and why (any state: a live run may have some)."""

    @property
    def ended(self) -> bool:
        return self.state not in (RunStateName.PENDING, RunStateName.RUNNING)

    def describe(self) -> str:
        """One line for people: `failed in import: InvalidInput: ...`."""
        if self.state is RunStateName.RUNNING and self.stage:
            return f"running ({self.stage})"
        if self.stage and self.reason:
            return f"{self.state.value} in {self.stage}: {self.reason}"
        return self.state.value

    def to_document(self) -> dict[str, object]:
        """The fields `bp runs show --json` and the status page's JSON API add to a run."""
        return {
            "state": self.state.value,
            "state_detail": {"stage": self.stage, "reason": self.reason},
            "pipeline": dict(self.stages),
            "held_back": dict(self.held_back),
        }


_ENDING = {
    StageState.FAILED: RunStateName.FAILED,
    StageState.QUALITY_FAILED: RunStateName.QUALITY_FAILED,
    StageState.SKIPPED: RunStateName.STOPPED,
}


def run_state(run: RunRecord, pipeline: Sequence[str] = STAGE_NAMES) -> RunState:
    """The run's state along `pipeline` (the stage names in order; the last one publishes)."""
    records = stage_records(run, pipeline)
    pieces = {name for name in run.stages if name.split("/", 1)[0] in pipeline and "/" in name}
    order = [*pipeline, *sorted(set(run.stages) - set(pipeline) - pieces)]
    ended: tuple[RunStateName, str, str | None] | None = None
    furthest: str | None = None
    for name in order:
        record = records.get(name)
        if record is None:
            continue
        furthest = name
        if ended is None and record.state in _ENDING:
            reason = (
                f"{record.error.type}: {record.error.message}"
                if record.error is not None
                else record.note
            )
            ended = (_ENDING[record.state], name, reason)
    last = run.stages.get(pipeline[-1]) if pipeline else None
    held_back, holding = _held_back(run, order)
    stage: str | None
    if ended is not None:
        state, stage, reason = ended
    elif last is not None and last.state is StageState.SUCCEEDED and held_back:
        state, stage = RunStateName.PARTIALLY_PUBLISHED, holding
        reason = "held back " + "; ".join(f"{robot}: {why}" for robot, why in held_back.items())
    elif last is not None and last.state is StageState.SUCCEEDED:
        state, stage, reason = RunStateName.SUCCEEDED, None, None
    elif furthest is None:
        state, stage, reason = RunStateName.PENDING, None, None
    else:
        state, stage, reason = RunStateName.RUNNING, furthest, _retrying(records[furthest])
    idle = (
        NOT_RUN_STAGE
        if state not in (RunStateName.PENDING, RunStateName.RUNNING)
        else (PENDING_STAGE)
    )
    stages = {name: records[name].state.value if name in records else idle for name in order}
    return RunState(state, stage, reason, stages, held_back)


def stage_records(run: RunRecord, pipeline: Sequence[str] = STAGE_NAMES) -> dict[str, StageRecord]:
    """The run's stage records, with a record for each stage worked in pieces (rolled up)."""
    return {**_rolled_up(run, pipeline), **run.stages}


def _rolled_up(run: RunRecord, pipeline: Sequence[str]) -> dict[str, StageRecord]:
    """A record for each pipeline stage that has pieces but no record of its own."""
    rolled: dict[str, StageRecord] = {}
    for stage in pipeline:
        pieces = {
            name.split("/", 1)[1]: record
            for name, record in sorted(run.stages.items())
            if name.startswith(stage + "/")
        }
        if not pieces or stage in run.stages:
            continue
        emitting = [r for r in pieces.values() if r.emitted is not None]
        if emitting and emitting[0].state is StageState.SUCCEEDED:
            rolled[stage] = emitting[0]  # the piece that finished the stage emitted its event
            continue
        stuck = [
            (name, record)
            for want in (StageState.FAILED, StageState.RETRYING)
            for name, record in pieces.items()
            if record.state is want
        ]
        if not stuck:
            rolled[stage] = StageRecord(state=StageState.RUNNING)
            continue
        piece, record = stuck[0]
        error = record.error
        if error is not None:
            error = error.model_copy(update={"message": f"{piece}: {error.message}"})
        rolled[stage] = StageRecord(state=record.state, error=error, note=record.note)
    return rolled


def _held_back(run: RunRecord, order: Sequence[str]) -> tuple[dict[str, str], str | None]:
    """Every robot a committed stage held back, and the first stage that did."""
    held: dict[str, str] = {}
    first: str | None = None
    for name in order:
        record = run.stages.get(name)
        if record is not None and record.state is StageState.SUCCEEDED and record.held_back:
            first = first or name
            held.update(record.held_back)
    return dict(sorted(held.items())), first


def _retrying(record: StageRecord) -> str | None:
    if record.state is StageState.RETRYING and record.error is not None:
        return f"retrying after {record.error.type}: {record.error.message}"
    return None
