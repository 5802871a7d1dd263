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
from bp_common.contracts.events import DatasetsPublished, Event
from bp_common.errors import PermanentError, PipelineError, TransientError
from bp_common.ledger import StageState
from bp_common.ledger.model import EmittedEvent
from bp_common.metrics import DEAD_LETTER_REASONS, OUTCOMES, PipelineMetrics, pipeline_metrics
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
        return "duplicate" if self.duplicate else "ignored" if self.ignored else "succeeded"


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
    ) -> None:
        self.stage = stage
        self.ports = ports
        self.settings = settings
        self.adapters = adapters
        self.metrics = PipelineMetrics(meter) if meter is not None else pipeline_metrics()
        name, subscription = stage.name, stage.route.dead_letter_subscription
        # Every series this stage can emit starts at 0: a dashboard shows 0, not "no data".
        self.metrics.stage_messages.zero({"stage": name, "outcome": o} for o in OUTCOMES)
        self.metrics.dead_letters.zero(
            {"stage": name, "subscription": subscription, "reason": r} for r in DEAD_LETTER_REASONS
        )
        self.metrics.stage_in_flight.add(0, stage=name)

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
            metrics=self.metrics,
        )
        try:
            result = self.stage.handle(ctx, event)
        except PermanentError as exc:
            ledger.stage_failed(ref.run_id, ref.scene_id, name, exc, final=True)
            log.error(
                "permanent failure, dead-lettering: %s",
                exc,
                extra={**extra, "outcome": "dead_letter", **error_log_fields(exc)},
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
                extra={**extra, "outcome": "retry", **error_log_fields(error)},
                exc_info=not isinstance(exc, PipelineError),
            )
            return Verdict(Outcome.RETRY, error, final=final)

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
            if isinstance(result.event, DatasetsPublished):
                # The run's last stage: its datasets are out, counted from the run's first record.
                elapsed = (ledger.clock() - started.created_at).total_seconds()
                self.metrics.run_duration.record(max(elapsed, 0.0))
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
