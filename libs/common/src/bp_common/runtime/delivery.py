"""One delivery of one message: validate, skip duplicates, run the stage, classify failures."""

from __future__ import annotations

import logging
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
from bp_common.contracts.events import Event
from bp_common.errors import PermanentError, PipelineError, TransientError
from bp_common.ledger import StageState
from bp_common.ledger.model import EmittedEvent
from bp_common.runtime.stage import Ports, RunRef, Skip, Stage, StageContext, StageOutput

log = logging.getLogger("bp.delivery")
_ID_ATTRS = ("scene_id", "run_id")


class Outcome(StrEnum):
    ACK = "ack"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    error: PipelineError | None = None
    emitted: Envelope | None = None
    duplicate: bool = False


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
    ) -> None:
        self.stage = stage
        self.ports = ports
        self.settings = settings
        self.adapters = adapters
        m = meter or telemetry.meter()
        self._handled = m.create_counter("bp.messages.handled", description="messages by outcome")
        self._failed = m.create_counter("bp.messages.failed", description="failed deliveries")
        self._latency = m.create_histogram("bp.stage.duration", unit="s", description="stage time")

    def deliver(self, message: Message) -> Verdict:
        started = time.monotonic()
        ctx = telemetry.extract_trace(message.attributes)
        with telemetry.tracer().start_as_current_span(
            f"{self.stage.name} {message.topic}", context=ctx, kind=SpanKind.CONSUMER
        ) as span:
            span.set_attribute("bp.stage", self.stage.name)
            span.set_attribute("messaging.message.id", message.id)
            span.set_attribute("bp.delivery_attempt", message.delivery_attempt)
            verdict = self._deliver(message, span)
            span.set_attribute("bp.outcome", verdict.outcome.value)
            if verdict.error is not None:
                span.set_status(Status(StatusCode.ERROR, verdict.error.message))
        attrs = {"stage": self.stage.name, "outcome": verdict.outcome.value}
        self._handled.add(1, attrs)
        if verdict.outcome is not Outcome.ACK:
            self._failed.add(1, attrs)
        self._latency.record(time.monotonic() - started, {"stage": self.stage.name})
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
                "dead-lettering invalid message: %s", exc, extra={**extra, "outcome": "dead_letter"}
            )
            return Verdict(Outcome.DEAD_LETTER, exc)
        if isinstance(ref, Skip):
            log.info("skipped: %s", ref.reason, extra={**extra, "outcome": "ack"})
            return Verdict(Outcome.ACK)
        extra.update(scene_id=ref.scene_id, run_id=ref.run_id)
        span.set_attribute("bp.run_id", ref.run_id)
        try:
            return self._run(message, event, ref, extra)
        except PipelineError as exc:
            log.warning("ledger or bus failure, will retry: %s", exc, extra=extra)
            return Verdict(Outcome.RETRY, exc)
        except Exception as exc:  # an unforeseen failure is retried, then dead-lettered by policy
            log.exception("unexpected failure, will retry", extra=extra)
            return Verdict(Outcome.RETRY, TransientError(f"{type(exc).__name__}: {exc}"))

    def _run(
        self, message: Message, event: object, ref: RunRef, extra: dict[str, object]
    ) -> Verdict:
        ledger, name = self.ports.ledger, self.stage.name
        run = ledger.get(ref.run_id)
        done = run.stages.get(name) if run else None
        if done is not None and done.state is StageState.SUCCEEDED and done.emitted is not None:
            envelope = Envelope(
                done.emitted.topic, done.emitted.data.encode(), done.emitted.attributes
            )
            self.ports.publisher.publish(envelope)
            log.info(
                "duplicate of a committed stage: re-emitted", extra={**extra, "outcome": "ack"}
            )
            return Verdict(Outcome.ACK, emitted=envelope, duplicate=True)
        if done is not None and done.state in (StageState.SKIPPED, StageState.QUALITY_FAILED):
            log.info(
                "duplicate of a finished stage: nothing to emit", extra={**extra, "outcome": "ack"}
            )
            return Verdict(Outcome.ACK, duplicate=True)

        started = ledger.stage_started(
            ref.run_id, ref.scene_id, name, message.delivery_attempt, ref.source
        )
        # Push from the emulator omits deliveryAttempt; the ledger counts attempts either way.
        attempt = started.stages[name].attempts
        ctx = StageContext(
            settings=self.settings,
            ports=self.ports,
            scene_id=ref.scene_id,
            run_id=ref.run_id,
            stage=name,
            attempt=attempt,
            log=logging.LoggerAdapter(logging.getLogger(f"bp.{name}"), extra),
            adapters=self.adapters,
        )
        try:
            result = self.stage.handle(ctx, event)
        except PermanentError as exc:
            ledger.stage_failed(ref.run_id, ref.scene_id, name, exc, final=True)
            log.error(
                "permanent failure, dead-lettering: %s",
                exc,
                extra={**extra, "outcome": "dead_letter"},
            )
            return Verdict(Outcome.DEAD_LETTER, exc)
        except Exception as exc:
            error = (
                exc
                if isinstance(exc, PipelineError)
                else TransientError(f"{type(exc).__name__}: {exc}", stage=name)
            )
            final = attempt >= self.settings.max_delivery_attempts
            ledger.stage_failed(ref.run_id, ref.scene_id, name, error, final=final)
            log.warning(
                "transient failure (attempt %d): %s",
                attempt,
                error,
                extra={**extra, "outcome": "retry"},
                exc_info=not isinstance(exc, PipelineError),
            )
            return Verdict(Outcome.RETRY, error)

        if isinstance(result, StageOutput):
            envelope = encode(result.event, telemetry.inject_trace())
            emitted = EmittedEvent(
                topic=envelope.topic, data=envelope.data.decode(), attributes=envelope.attributes
            )
            ledger.stage_finished(
                ref.run_id,
                ref.scene_id,
                name,
                StageState.SUCCEEDED,
                counts=result.counts,
                emitted=emitted,
                note=result.note,
            )
            self.ports.publisher.publish(envelope)
            log.info("stage succeeded", extra={**extra, "outcome": "ack"})
            return Verdict(Outcome.ACK, emitted=envelope)
        ledger.stage_finished(
            ref.run_id, ref.scene_id, name, result.state, counts=result.counts, note=result.note
        )
        log.info(
            "stage finished: %s (%s)",
            result.state.value,
            result.note,
            extra={**extra, "outcome": "ack"},
        )
        return Verdict(Outcome.ACK)

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
