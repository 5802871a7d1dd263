"""Pub/Sub adapters: publisher, streaming-pull worker, dead-letter queues and provisioning."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager, suppress
from datetime import timedelta

from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.subscriber.scheduler import ThreadScheduler
from google.protobuf import duration_pb2

from bp_common.bus.base import (
    ATTR_PUBSUB_DL_SUBSCRIPTION,
    ATTR_SOURCE_TOPIC,
    DeadLetter,
    DeadLetterQueue,
    Message,
    Publisher,
)
from bp_common.contracts.envelope import Envelope
from bp_common.contracts.events import TOPICS
from bp_common.errors import NotFound, Unavailable
from bp_common.runtime.delivery import Deliverer, Outcome
from bp_common.runtime.sinks import DeadLetterSink, Redelivery
from bp_common.topology import ROUTE_BY_STAGE, ROUTES

log = logging.getLogger("bp.pubsub")
# A stream that has brought nothing for this long, while no message is in hand, is opened again:
# the Pub/Sub emulator can keep a stream open that no longer delivers (after a restart), and a
# fresh stream costs one request.
STREAM_IDLE_REOPEN_S = 120.0
_TRANSIENT = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.TooManyRequests,
    gexc.Aborted,
    FutureTimeout,
)


class PubSubPublisher(Publisher):
    def __init__(
        self, client: pubsub_v1.PublisherClient, project: str, timeout_s: float = 30.0
    ) -> None:
        self.client = client
        self.project = project
        self.timeout_s = timeout_s

    def publish(self, envelope: Envelope) -> str:
        path = self.client.topic_path(self.project, envelope.topic)
        try:
            return str(
                self.client.publish(path, envelope.data, **envelope.attributes).result(
                    self.timeout_s
                )
            )
        except gexc.NotFound as exc:
            raise NotFound("topic does not exist", topic=envelope.topic) from exc
        except _TRANSIENT as exc:
            raise Unavailable(f"publish failed: {exc}", topic=envelope.topic) from exc


class PullWorker:
    """Streaming pull around the same Deliverer the push endpoint uses; the client library
    extends leases while a message is being handled (or waits for its unit's holder), up to
    `max_lease_s`.

    Flow control admits the deliverer's admission count of messages, each on a thread of its
    own, so duplicates waiting for a holder never keep work from starting; the deliverer's work
    slots bound how many of them run the stage at once.
    """

    def __init__(
        self,
        subscriber: pubsub_v1.SubscriberClient,
        project: str,
        subscription: str,
        deliverer: Deliverer,
        dead_letters: DeadLetterSink,
        redelivery: Redelivery,
        *,
        max_lease_s: int = 3600,
        lease_extension_s: int = 60,
        idle_reopen_s: float = STREAM_IDLE_REOPEN_S,
    ) -> None:
        self.subscriber = subscriber
        self.path = subscriber.subscription_path(project, subscription)
        self.deliverer = deliverer
        self.dead_letters = dead_letters
        self.redelivery = redelivery
        admission = deliverer.limits.admission
        # Each lease extension asks for at most lease_extension_s: a crashed worker's messages
        # come back that soon, at the cost of more frequent extensions while one is handled.
        self.flow_control = pubsub_v1.types.FlowControl(
            max_messages=admission,
            max_lease_duration=max_lease_s,
            max_duration_per_lease_extension=lease_extension_s,
        )
        self.admission = admission
        self.idle_reopen_s = idle_reopen_s
        self.streams = 0
        """How many streams this worker has opened."""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._in_hand = 0
        self._last_seen = time.monotonic()

    def _callback(self, received: pubsub_v1.subscriber.message.Message) -> None:
        with self._lock:
            self._in_hand += 1
            self._last_seen = time.monotonic()
        try:
            self._handle(received)
        finally:
            with self._lock:
                self._in_hand -= 1
                self._last_seen = time.monotonic()

    def _idle_s(self) -> float:
        """How long the stream has brought nothing while nothing was in hand (0 when busy)."""
        with self._lock:
            return 0.0 if self._in_hand else time.monotonic() - self._last_seen

    def _handle(self, received: pubsub_v1.subscriber.message.Message) -> None:
        message = Message(
            id=received.message_id,
            topic=self.deliverer.stage.route.consumes,
            data=received.data,
            attributes=dict(received.attributes),
            delivery_attempt=received.delivery_attempt or 1,
            publish_time=received.publish_time,
        )
        verdict = self.deliverer.deliver(message)
        try:
            if verdict.outcome is Outcome.DEAD_LETTER and verdict.error is not None:
                self.dead_letters.send(message, verdict.error)
            elif verdict.outcome is Outcome.DEFER:
                self.redelivery.send(message)
        except Exception:
            log.exception("could not dead-letter or hand back; leaving it to redelivery")
            received.nack()
            return
        if verdict.outcome is Outcome.RETRY:
            received.nack()
        else:
            received.ack()

    def _silent(self) -> bool:
        """Whether a message waits that the idle stream did not bring: one unary pull finds it
        (and hands it straight back). Only a silent stream is opened again, never a merely idle
        one: the Pub/Sub emulator never closes a stream its client ended and goes on
        dispatching messages to it (decision 0081)."""
        try:
            answer = self.subscriber.pull(
                request={"subscription": self.path, "max_messages": 1, "return_immediately": True},
                timeout=10,
            )
        except Exception as exc:  # no answer from the subscription: try a new stream
            log.info("probing %s failed (%s)", self.path, exc)
            return True
        ack_ids = [m.ack_id for m in answer.received_messages]
        if ack_ids:
            self.subscriber.modify_ack_deadline(
                request={"subscription": self.path, "ack_ids": ack_ids, "ack_deadline_seconds": 0}
            )
        return bool(ack_ids)

    def run(self) -> None:
        """Pull until stop() is called; a failed stream is reopened after a pause, a silent one
        (nothing pulled for `idle_reopen_s` and nothing in hand while a message waits) at
        once."""
        while not self._stop.is_set():
            # The library's default scheduler runs callbacks on ten threads: one per admitted
            # message instead, since a waiting duplicate sleeps on its thread.
            executor = ThreadPoolExecutor(
                max_workers=self.admission, thread_name_prefix=f"bp-{self.deliverer.stage.name}"
            )
            future = self.subscriber.subscribe(
                self.path,
                self._callback,
                flow_control=self.flow_control,
                scheduler=ThreadScheduler(executor=executor),
            )
            self.streams += 1
            with self._lock:
                self._last_seen = time.monotonic()
            log.info("pulling from %s", self.path)
            try:
                while not self._stop.wait(0.5):
                    if future.done():
                        future.result()
                    idle = self._idle_s()
                    if idle >= self.idle_reopen_s:
                        if not self._silent():
                            with self._lock:  # idle, not silent: the stream stays
                                self._last_seen = time.monotonic()
                            continue
                        log.info(
                            "nothing pulled for %.0f s while a message waits: opening the stream"
                            " again",
                            idle,
                        )
                        break
                future.cancel()
                future.result(timeout=30)
            except Exception as exc:
                if self._stop.is_set():
                    break
                log.warning("streaming pull stopped (%s); reconnecting", exc)
                self._stop.wait(2.0)

    def stop(self) -> None:
        self._stop.set()


class PubSubDeadLetterQueue(DeadLetterQueue):
    def __init__(self, subscriber: pubsub_v1.SubscriberClient, project: str) -> None:
        self.subscriber = subscriber
        self.project = project
        self._ack_ids: dict[tuple[str, str], str] = {}

    def stages(self) -> list[str]:
        return [r.stage for r in ROUTES]

    def _path(self, stage: str) -> str:
        name = ROUTE_BY_STAGE[stage].dead_letter_subscription
        return str(self.subscriber.subscription_path(self.project, name))

    @contextmanager
    def claim(self, stage: str, max_messages: int) -> Iterator[list[DeadLetter]]:
        path = self._path(stage)
        received: list[pubsub_v1.types.ReceivedMessage] = []
        try:
            # Pub/Sub may return fewer messages than are waiting: pull until none come back.
            while len(received) < max_messages:
                # Ops listing must not block on an empty queue, hence return_immediately
                # (deprecated for high-throughput consumers, which this is not).
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    response = self.subscriber.pull(
                        request={
                            "subscription": path,
                            "return_immediately": True,
                            "max_messages": max_messages - len(received),
                        },
                        timeout=10,
                    )
                if not response.received_messages:
                    break
                received.extend(response.received_messages)
        except gexc.NotFound as exc:
            raise NotFound("dead-letter subscription does not exist", subscription=path) from exc
        except (gexc.DeadlineExceeded, gexc.RetryError):
            pass
        letters = []
        for item in received:
            m = item.message
            letter = DeadLetter(
                id=m.message_id,
                stage=stage,
                source_topic=m.attributes.get(ATTR_SOURCE_TOPIC),
                data=bytes(m.data),
                attributes=dict(m.attributes),
                publish_time=m.publish_time,
            )
            self._ack_ids[(stage, letter.id)] = item.ack_id
            letters.append(letter)
        try:
            yield letters
        finally:
            pending = [
                self._ack_ids.pop((stage, x.id)) for x in letters if (stage, x.id) in self._ack_ids
            ]
            if pending:
                self.subscriber.modify_ack_deadline(
                    request={"subscription": path, "ack_ids": pending, "ack_deadline_seconds": 0}
                )

    def settle(self, stage: str, letter: DeadLetter) -> None:
        ack_id = self._ack_ids.pop((stage, letter.id), None)
        if ack_id is None:
            raise NotFound("dead letter is not claimed", stage=stage, message_id=letter.id)
        self.subscriber.acknowledge(
            request={"subscription": self._path(stage), "ack_ids": [ack_id]}
        )

    def source_topic(self, stage: str, letter: DeadLetter) -> str:
        if letter.source_topic:
            return letter.source_topic
        source = letter.attributes.get(ATTR_PUBSUB_DL_SUBSCRIPTION)
        if source:
            if "/" not in source:  # the emulator sends the short name
                source = self.subscriber.subscription_path(self.project, source)
            sub = self.subscriber.get_subscription(request={"subscription": source})
            return str(sub.topic).rsplit("/", 1)[-1]
        return ROUTE_BY_STAGE[stage].consumes


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromTimedelta(timedelta(seconds=seconds))
    return d


def ensure_topology(
    publisher: pubsub_v1.PublisherClient,
    subscriber: pubsub_v1.SubscriberClient,
    project: str,
    *,
    push_endpoints: dict[str, str] | None = None,
    max_delivery_attempts: int = 5,
    min_backoff_s: float = 10.0,
    max_backoff_s: float = 600.0,
    ack_deadline_s: int = 60,
) -> None:
    """Create (idempotently) every topic, stage subscription and dead-letter queue.
    Production gets the same shape from Terraform; this serves emulators and `bp up`."""
    push_endpoints = push_endpoints or {}
    topics = list(TOPICS) + [r.dead_letter_topic for r in ROUTES]
    for topic in topics:
        with suppress(gexc.AlreadyExists):
            publisher.create_topic(request={"name": publisher.topic_path(project, topic)})
    for route in ROUTES:
        subs = [
            {
                "name": subscriber.subscription_path(project, route.subscription),
                "topic": publisher.topic_path(project, route.consumes),
                "ack_deadline_seconds": ack_deadline_s,
                "dead_letter_policy": {
                    "dead_letter_topic": publisher.topic_path(project, route.dead_letter_topic),
                    "max_delivery_attempts": max_delivery_attempts,
                },
                "retry_policy": {
                    "minimum_backoff": _duration(min_backoff_s),
                    "maximum_backoff": _duration(max_backoff_s),
                },
                **(
                    {"push_config": {"push_endpoint": push_endpoints[route.stage]}}
                    if route.stage in push_endpoints
                    else {}
                ),
            },
            {
                "name": subscriber.subscription_path(project, route.dead_letter_subscription),
                "topic": publisher.topic_path(project, route.dead_letter_topic),
                "ack_deadline_seconds": 60,
            },
        ]
        for request in subs:
            with suppress(gexc.AlreadyExists):
                subscriber.create_subscription(request=request)
