"""One delivery of one message: validate, hold the run's unit, run the stage, classify failures.

The rules every transport (push, pull, the in-process bus) shares:

1. A message whose stage is already committed and published is a duplicate: ack, emit nothing.
2. Otherwise the delivery takes the lease on (run, stage) in the ledger. A duplicate that finds
   it held by a live holder neither works nor fails: it waits, polling the ledger, and acks once
   the holder has committed; if the holder's lease lapses without a commit it takes over. When
   its wait budget runs out it hands the message back (`Outcome.DEFER`) without using one of the
   delivery attempts that lead to the dead-letter queue, at most `max_deferrals` times.
3. The holder renews its lease from a heartbeat while the handler runs (bp_common.runtime.
   holding), within a work slot (flow control), and then, still holding it: records the commit
   and its event, publishes the event, marks it published, releases the lease.
4. A committed stage whose event was never marked published (a crash in between) is re-emitted,
   once, by the next delivery that takes the lease.
5. A stage with an admission (a cap on runs working at once) admits the run before it works;
   over the cap the delivery waits, then hands the message back like a busy duplicate. The run
   leaves the cap when the delivery that records its outcome ends in anything but a retry that
   will come back (past its deadline, if its process died).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from opentelemetry.metrics import Meter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from bp_common import telemetry
from bp_common.bus import Message
from bp_common.config import Settings
from bp_common.contracts.envelope import Envelope, decode, encode
from bp_common.contracts.events import DatasetsPublished, Event
from bp_common.errors import PermanentError, PipelineError, TransientError
from bp_common.ledger import RunRecord, StageAlreadyCommitted, StageState
from bp_common.ledger.leases import Held, Lease, LeaseLost
from bp_common.ledger.model import EmittedEvent
from bp_common.metrics import DEAD_LETTER_REASONS, OUTCOMES, PipelineMetrics, pipeline_metrics
from bp_common.runtime.holding import Hold, holder_gone, holder_name
from bp_common.runtime.limits import DeliveryLimits, Transport, delivery_limits
from bp_common.runtime.stage import (
    Admission,
    HandedBack,
    Ports,
    RunRef,
    Skip,
    Stage,
    StageContext,
    StageOutput,
)

log = logging.getLogger("bp.delivery")
_ID_ATTRS = ("scene_id", "run_id")


class Outcome(StrEnum):
    ACK = "ack"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"
    DEFER = "defer"
    """Hand the message back without using a delivery attempt (another delivery holds its unit);
    the transport republishes a copy (Pub/Sub) or re-queues it (the in-process bus), then acks."""


class LeaseHeld(TransientError):
    """Another delivery held the run's unit for longer than this one could wait or defer."""


class AtCapacity(TransientError):
    """The stage's cap on runs at once stayed full for longer than this run could wait or
    defer."""


# A run over its stage's cap waits at most this long in one delivery before it is handed back:
# the message should not sit in the process's flow control while other runs could start.
ADMISSION_WAIT_S = 60.0


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    error: PipelineError | None = None
    emitted: Envelope | None = None
    duplicate: bool = False
    ignored: bool = False
    """Acked without work: the stage has nothing to do with this message."""
    final: bool = False
    """A retry on the last delivery attempt: the subscription dead-letters it next."""

    @property
    def counted_as(self) -> str:
        """The outcome label of bp.stage.messages."""
        if self.outcome is Outcome.RETRY:
            return "transient"
        if self.outcome is Outcome.DEAD_LETTER:
            return "permanent"
        if self.outcome is Outcome.DEFER:
            return "duplicate"  # handed back while another delivery holds the unit
        return "duplicate" if self.duplicate else "ignored" if self.ignored else "succeeded"


def _emitted(envelope: Envelope) -> EmittedEvent:
    return EmittedEvent(
        topic=envelope.topic, data=envelope.data.decode(), attributes=envelope.attributes
    )


def error_log_fields(error: PipelineError) -> dict[str, str]:
    """The typed error as the JSON logs carry it (log-based metrics count permanent ones)."""
    return {
        "error_type": type(error).__name__,
        "error_kind": "permanent" if error.permanent else "transient",
    }


class Deliverer:
    """The delivery rules shared by push, pull and the in-process bus.

    Built once per stage and process by the composition root (bp_common.wiring), which also
    hands over what the stage's `adapters` hook built.
    """

    def __init__(
        self,
        stage: Stage[Any, Any],
        ports: Ports,
        settings: Settings,
        adapters: Any,
        meter: Meter | None = None,
        *,
        transport: Transport = Transport.LOCAL,
        limits: DeliveryLimits | None = None,
    ) -> None:
        self.stage = stage
        self.ports = ports
        self.settings = settings
        self.adapters = adapters
        self.transport = transport
        self.limits = limits or delivery_limits(
            settings,
            stage.footprint,
            transport,
            stage_deadline_s=stage.deadline_s(settings) if stage.deadline_s else None,
        )
        self._slots = threading.BoundedSemaphore(self.limits.work_slots)
        self.metrics = PipelineMetrics(meter) if meter is not None else pipeline_metrics()
        self.stopping = threading.Event()
        """Set when the process is asked to stop (SIGTERM, a preemption notice): deliveries
        at work see it (`StageContext.stopping`) and may hand their message back early."""
        name, subscription = stage.name, stage.route.dead_letter_subscription
        # Every series this stage can emit starts at 0: a dashboard shows 0, not "no data".
        self.metrics.stage_messages.zero({"stage": name, "outcome": o} for o in OUTCOMES)
        self.metrics.dead_letters.zero(
            {"stage": name, "subscription": subscription, "reason": r} for r in DEAD_LETTER_REASONS
        )
        self.metrics.stage_in_flight.add(0, stage=name)

    def close(self) -> None:
        """Release what the stage's adapters hold (a pool of simulation processes), if they
        hold anything: once, when the process stops taking messages."""
        close = getattr(self.adapters, "close", None)
        if callable(close):
            close()

    def deliver(self, message: Message) -> Verdict:
        started = time.monotonic()
        name = self.stage.name
        ctx = telemetry.extract_trace(message.attributes)
        self.metrics.stage_in_flight.add(1, stage=name)
        try:
            with telemetry.tracer().start_as_current_span(
                f"{name} {message.topic}", context=ctx, kind=SpanKind.CONSUMER
            ) as span:
                span.set_attribute("bp.stage", name)
                span.set_attribute("messaging.message.id", message.id)
                span.set_attribute("bp.delivery_attempt", message.delivery_attempt)
                verdict = self._deliver(message, span)
                span.set_attribute("bp.outcome", verdict.outcome.value)
                if verdict.error is not None:
                    span.set_status(Status(StatusCode.ERROR, verdict.error.message))
        finally:
            self.metrics.stage_in_flight.add(-1, stage=name)
        outcome = verdict.counted_as
        self.metrics.stage_messages.add(1, stage=name, outcome=outcome)
        self.metrics.stage_duration.record(time.monotonic() - started, stage=name, outcome=outcome)
        if verdict.outcome is Outcome.DEAD_LETTER or verdict.final:
            self.metrics.dead_letters.add(
                1,
                stage=name,
                subscription=self.stage.route.dead_letter_subscription,
                reason="permanent" if verdict.outcome is Outcome.DEAD_LETTER else "exhausted",
            )
        return verdict

    def _deliver(self, message: Message, span: Span) -> Verdict:
        extra = {
            "stage": self.stage.name,
            "message_id": message.id,
            "attempt": message.delivery_attempt,
        }
        try:
            event = decode(self.stage.route.consumes, message.data, message.attributes)
            ref = self.stage.identify(event)
        except PermanentError as exc:
            self._record_unparsed(message, exc)
            log.error(
                "dead-lettering invalid message: %s",
                exc,
                extra={**extra, "outcome": "dead_letter", **error_log_fields(exc)},
            )
            return Verdict(Outcome.DEAD_LETTER, exc)
        if isinstance(ref, Skip):
            log.info("skipped: %s", ref.reason, extra={**extra, "outcome": "ack"})
            return Verdict(Outcome.ACK, ignored=True)
        extra.update(scene_id=ref.scene_id, run_id=ref.run_id)
        span.set_attribute("bp.run_id", ref.run_id)
        final = message.delivery_attempt >= self.settings.max_delivery_attempts
        try:
            return self._run(message, event, ref, extra)
        except PipelineError as exc:
            log.warning(
                "ledger or bus failure, will retry: %s",
                exc,
                extra={**extra, **error_log_fields(exc)},
            )
            return Verdict(Outcome.RETRY, exc, final=final)
        except Exception as exc:  # an unforeseen failure is retried, then dead-lettered by policy
            error = TransientError(f"{type(exc).__name__}: {exc}")
            log.exception(
                "unexpected failure, will retry", extra={**extra, **error_log_fields(error)}
            )
            return Verdict(Outcome.RETRY, error, final=final)

    def _run(
        self, message: Message, event: object, ref: RunRef, extra: dict[str, object]
    ) -> Verdict:
        ref = self.stage.resolve(self.ports, self.settings, event, ref)
        if ref.note:
            extra.update(run_id=ref.run_id)
            log.info("%s", ref.note, extra=extra)
        record = self.ports.ledger.get(ref.run_id)
        settled = self._settled(record, ref, extra)
        if settled is not None:
            return settled
        holder = holder_name()
        waited = self._acquire(message, ref, holder, extra)
        if not isinstance(waited, Lease):
            return waited
        with Hold(
            self.ports.ledger.leases,
            waited,
            ttl_s=self.limits.lease_ttl_s,
            work_deadline_s=self.limits.work_deadline_s,
        ) as hold:
            try:
                return self._hold(message, event, ref, hold, holder.rsplit(":", 1)[-1], extra)
            except BaseException:
                hold.release("interrupted")
                raise

    def _unit(self, ref: RunRef) -> str:
        """The unit of work the delivery holds and records: the stage, or a piece of it."""
        return ref.unit or self.stage.name

    def _settled(
        self,
        record: RunRecord | None,
        ref: RunRef,
        extra: dict[str, object],
        *,
        waiting: bool = False,
    ) -> Verdict | None:
        """A verdict when the stage needs no delivery: committed and published, or finished.

        A delivery that waited for the holder also acks once the holder failed for good (its
        error is recorded and its message dead-lettered); any other delivery after a final
        failure starts a new round, as a replay does.
        """
        done = record.stages.get(self._unit(ref)) if record else None
        if done is None:
            return None
        if done.state is StageState.SUCCEEDED and done.emitted is not None:
            if done.published_at is None:
                return None  # committed, never published: the lease holder re-emits it
            log.info("duplicate of a committed stage: acked", extra={**extra, "outcome": "ack"})
            return Verdict(Outcome.ACK, duplicate=True)
        if done.state in (StageState.SKIPPED, StageState.QUALITY_FAILED) or (
            waiting and done.state is StageState.FAILED
        ):
            log.info(
                "duplicate of a finished stage (%s): nothing to do",
                done.state.value,
                extra={**extra, "outcome": "ack"},
            )
            return Verdict(Outcome.ACK, duplicate=True)
        return None

    def _acquire(
        self, message: Message, ref: RunRef, holder: str, extra: dict[str, object]
    ) -> Lease | Verdict:
        """The lease on (run, stage), after waiting for a live holder if need be."""
        leases, name = self.ports.ledger.leases, self._unit(ref)
        give_up = time.monotonic() + self.limits.wait_budget_s
        logged = False
        dead: str | None = None
        while True:
            taken = leases.acquire(
                ref.run_id, ref.scene_id, name, holder, self.limits.lease_ttl_s, evict=dead
            )
            if isinstance(taken, Lease):
                return taken
            if self.transport is Transport.LOCAL and holder_gone(taken.holder):
                # every embedded holder shares this machine: a gone process holds nothing
                log.info("the holder %s is gone: taking over", taken.holder, extra=extra)
                dead = taken.holder
                continue
            if not logged:
                log.info(
                    "another delivery holds %s (%s, until %s): waiting",
                    name,
                    taken.holder,
                    taken.expires_at.isoformat(),
                    extra={**extra, "outcome": "wait"},
                )
                logged = True
            if time.monotonic() >= give_up:
                return self._hand_back(message, taken.holder, extra)
            time.sleep(min(self.limits.poll_s, max(0.0, give_up - time.monotonic())))
            settled = self._settled(self.ports.ledger.get(ref.run_id), ref, extra, waiting=True)
            if settled is not None:
                return settled

    def _hand_back(
        self,
        message: Message,
        busy: str,
        extra: dict[str, object],
        error_type: type[TransientError] = LeaseHeld,
    ) -> Verdict:
        """Give the message back unused, or past the deferrals, retry it as a failure."""
        if message.deferrals < self.limits.max_deferrals:
            log.info(
                "still busy (%s): handing the message back (deferral %d of %d)",
                busy,
                message.deferrals + 1,
                self.limits.max_deferrals,
                extra={**extra, "outcome": "defer"},
            )
            return Verdict(Outcome.DEFER)
        error = error_type(
            f"busy ({busy}) through {message.deferrals} deferrals",
            stage=self.stage.name,
        )
        log.warning("%s: retrying", error, extra={**extra, "outcome": "retry"})
        return Verdict(Outcome.RETRY, error)

    def _hold(
        self,
        message: Message,
        event: object,
        ref: RunRef,
        hold: Hold,
        name: str,
        extra: dict[str, object],
    ) -> Verdict:
        """Everything a lease holder does; it releases the lease on every way out."""
        ledger, stage = self.ports.ledger, self._unit(ref)
        extra = {**extra, "holder": hold.lease.holder}
        record = ledger.get(ref.run_id)
        done = record.stages.get(stage) if record else None
        if (
            done is not None
            and done.state is StageState.SUCCEEDED
            and done.emitted is not None
            and done.published_at is None
        ):
            envelope = self._publish(ref, done.emitted, done.fanned_out)
            hold.release("re-emitted")
            log.info(
                "committed stage whose event was never published: re-emitted",
                extra={**extra, "outcome": "ack"},
            )
            return Verdict(Outcome.ACK, emitted=envelope, duplicate=True)
        settled = self._settled(record, ref, extra)
        if settled is not None:
            hold.release("duplicate")
            return settled
        admission = self.stage.admission
        if admission is not None:
            full = self._admit(admission, ref, extra)
            if full is not None:
                hold.release("at capacity")
                return self._hand_back(message, full, extra, AtCapacity)
        if not self._slots.acquire(timeout=self.limits.wait_budget_s):
            hold.release("no work slot")
            return self._hand_back(message, "every work slot of this process", extra)
        try:
            verdict = self._work(message, event, ref, hold, name, extra)
        finally:
            self._slots.release()
        # The delivery that records the run's outcome lets it go (a duplicate leaves that to
        # the delivery that carries on); a retry keeps its place for the redelivery.
        recorded = not verdict.duplicate
        if (
            admission is not None
            and recorded
            and (verdict.outcome is not Outcome.RETRY or verdict.final)
        ):
            admission.release(self.ports, self.settings, ref)
        return verdict

    def _admit(self, admission: Admission, ref: RunRef, extra: dict[str, object]) -> str | None:
        """None once the run is admitted; what keeps it out if the cap stays full."""
        give_up = time.monotonic() + min(self.limits.wait_budget_s, ADMISSION_WAIT_S)
        logged = False
        while True:
            full = admission.admit(self.ports, self.settings, ref)
            if full is None:
                return None
            if not logged:
                log.info("at capacity (%s): waiting", full, extra={**extra, "outcome": "wait"})
                logged = True
            if time.monotonic() >= give_up:
                return full
            time.sleep(self.limits.poll_s)

    def _work(
        self,
        message: Message,
        event: object,
        ref: RunRef,
        hold: Hold,
        name: str,
        extra: dict[str, object],
    ) -> Verdict:
        ledger, stage = self.ports.ledger, self._unit(ref)
        started = ledger.stage_started(
            ref.run_id, ref.scene_id, stage, message.delivery_attempt, ref.source
        )
        # Push from the emulator omits deliveryAttempt; the ledger counts attempts either way.
        attempt = started.stages[stage].attempts
        ctx = StageContext(
            settings=self.settings,
            ports=self.ports,
            scene_id=ref.scene_id,
            run_id=ref.run_id,
            stage=self.stage.name,
            unit=stage,
            attempt=attempt,
            log=logging.LoggerAdapter(logging.getLogger(f"bp.{self.stage.name}"), extra),
            adapters=self.adapters,
            attempt_id=f"a{attempt:02d}-{name}",
            lease_check=hold.check,
            metrics=self.metrics,
            stopping=self.stopping.is_set,
        )
        try:
            result = self.stage.handle(ctx, event)
        except PermanentError as exc:
            ledger.stage_failed(ref.run_id, ref.scene_id, stage, exc, final=True)
            hold.release("failed")
            log.error(
                "permanent failure, dead-lettering: %s",
                exc,
                extra={**extra, "outcome": "dead_letter", **error_log_fields(exc)},
            )
            return Verdict(Outcome.DEAD_LETTER, exc)
        except HandedBack as exc:  # the process is stopping: another one carries on
            hold.release("handed back")
            log.info("%s: handing the message back", exc, extra={**extra, "outcome": "defer"})
            return Verdict(Outcome.DEFER)
        except LeaseLost as exc:  # checked before a commit: the successor records its outcome
            hold.release("lost")
            if isinstance(ledger.leases.state(ref.run_id, stage), Held):
                log.warning("%s: the successor carries on", exc, extra={**extra, "outcome": "ack"})
                return Verdict(Outcome.ACK, duplicate=True)
            log.warning("%s: retrying", exc, extra={**extra, "outcome": "retry"})
            return Verdict(Outcome.RETRY, exc)
        except Exception as exc:
            error = (
                exc
                if isinstance(exc, PipelineError)
                else TransientError(f"{type(exc).__name__}: {exc}", stage=stage)
            )
            final = attempt >= self.settings.max_delivery_attempts
            ledger.stage_failed(ref.run_id, ref.scene_id, stage, error, final=final)
            hold.release("retrying")
            log.warning(
                "transient failure (attempt %d): %s",
                attempt,
                error,
                extra={**extra, "outcome": "retry", **error_log_fields(error)},
                exc_info=not isinstance(exc, PipelineError),
            )
            return Verdict(Outcome.RETRY, error, final=final)

        if not self._still_holding(hold, ref, extra):
            hold.release("lost")
            return Verdict(Outcome.ACK, duplicate=True)
        if isinstance(result, StageOutput):
            envelope = encode(result.event, telemetry.inject_trace())
            emitted = EmittedEvent(
                topic=envelope.topic, data=envelope.data.decode(), attributes=envelope.attributes
            )
            fanned_out = [_emitted(encode(e, telemetry.inject_trace())) for e in result.fan_out]
            try:
                ledger.stage_finished(
                    ref.run_id,
                    ref.scene_id,
                    stage,
                    StageState.SUCCEEDED,
                    counts=result.counts,
                    emitted=emitted,
                    fanned_out=fanned_out,
                    note=result.note,
                    held_back=result.held_back,
                )
            except StageAlreadyCommitted:
                hold.release("duplicate")
                log.warning(
                    "another delivery committed this stage first: its commit stands",
                    extra={**extra, "outcome": "ack"},
                )
                return Verdict(Outcome.ACK, duplicate=True)
            self._publish(ref, emitted, fanned_out)
            hold.release("succeeded")
            log.info("stage succeeded", extra={**extra, "outcome": "ack"})
            if isinstance(result.event, DatasetsPublished):
                # The run's last stage: its datasets are out, counted from the run's first record.
                elapsed = (ledger.clock() - started.created_at).total_seconds()
                self.metrics.run_duration.record(max(elapsed, 0.0))
            return Verdict(Outcome.ACK, emitted=envelope)
        ledger.stage_finished(
            ref.run_id, ref.scene_id, stage, result.state, counts=result.counts, note=result.note
        )
        hold.release(result.state.value)
        log.info(
            "stage finished: %s (%s)",
            result.state.value,
            result.note,
            extra={**extra, "outcome": "ack"},
        )
        return Verdict(Outcome.ACK)

    def _still_holding(self, hold: Hold, ref: RunRef, extra: dict[str, object]) -> bool:
        """Whether this delivery may record its result: it holds the lease, or takes it back
        from nobody (it lapsed and no successor came). A successor records its own result."""
        try:
            hold.check()
            return True
        except LeaseLost:
            pass
        again = self.ports.ledger.leases.acquire(
            ref.run_id,
            ref.scene_id,
            self._unit(ref),
            hold.lease.holder,
            self.limits.lease_ttl_s,
        )
        if isinstance(again, Lease):
            hold.lease = again
            return True
        log.warning(
            "lease went to %s while this delivery worked: it records the result",
            again.holder,
            extra={**extra, "outcome": "ack"},
        )
        return False

    def _publish(
        self, ref: RunRef, emitted: EmittedEvent, fanned_out: list[EmittedEvent]
    ) -> Envelope:
        envelope = Envelope(emitted.topic, emitted.data.encode(), emitted.attributes)
        self.ports.publisher.publish(envelope)
        for more in fanned_out:
            self.ports.publisher.publish(Envelope(more.topic, more.data.encode(), more.attributes))
        self.ports.ledger.mark_published(ref.run_id, ref.scene_id, self._unit(ref))
        return envelope

    def _record_unparsed(self, message: Message, error: PermanentError) -> None:
        """Record an invalid message against its run when its attributes name one safely."""
        try:
            raw = {k: message.attributes.get(k, "") for k in _ID_ATTRS}
            Event.model_validate(
                {"scene_id": raw["scene_id"], "run_id": raw["run_id"], "bucket": "-"}
            )
        except Exception:
            return
        try:
            self.ports.ledger.stage_failed(
                raw["run_id"], raw["scene_id"], self.stage.name, error, final=True
            )
        except Exception:  # the message still reaches the dead-letter queue with its error
            log.exception("could not record the invalid message in the ledger")
