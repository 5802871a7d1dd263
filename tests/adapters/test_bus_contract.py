"""One contract for the bus over Pub/Sub (emulator) and the in-process bus: publishing, the
dead-letter queues, replay to the source topic with a count, and purge."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from bp_common.bus import DeadLetterQueue, Message, Publisher
from bp_common.bus.local import LocalBus, LocalDeadLetterQueue
from bp_common.contracts.envelope import Envelope
from bp_common.errors import InvalidInput
from bp_common.runtime.sinks import TopicDeadLetterSink
from bp_ops import dlq
from bp_ops.emulators import EmulatorStack


@dataclass
class Bus:
    publisher: Publisher
    queue: DeadLetterQueue
    receive: Callable[[str], list[Message]]  # what the stage's subscription holds now


def local_bus(tmp_path: Path) -> Iterator[Bus]:
    bus = LocalBus(tmp_path / "bus.sqlite")

    def receive(stage: str) -> list[Message]:
        got = []
        while (message := bus.receive([stage])) is not None:
            bus.ack(message)
            got.append(message)
        return got

    yield Bus(bus, LocalDeadLetterQueue(bus), receive)


def pubsub_bus(emulators: EmulatorStack) -> Iterator[Bus]:
    from bp_common.bus.pubsub import PubSubDeadLetterQueue, PubSubPublisher, ensure_topology
    from google.cloud import pubsub_v1

    project = f"bus-{uuid.uuid4().hex[:8]}"
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    ensure_topology(publisher, subscriber, project)

    def receive(stage: str) -> list[Message]:
        path = subscriber.subscription_path(project, f"bp-{stage}")
        got: list[Message] = []
        while True:
            response = subscriber.pull(
                request={"subscription": path, "max_messages": 10, "return_immediately": True},
                timeout=10,
            )
            if not response.received_messages:
                return got
            subscriber.acknowledge(
                request={
                    "subscription": path,
                    "ack_ids": [m.ack_id for m in response.received_messages],
                }
            )
            got += [
                Message(
                    id=m.message.message_id,
                    topic="",
                    data=m.message.data,
                    attributes=dict(m.message.attributes),
                )
                for m in response.received_messages
            ]

    yield Bus(
        PubSubPublisher(publisher, project), PubSubDeadLetterQueue(subscriber, project), receive
    )


@pytest.fixture(params=["local", pytest.param("pubsub", marks=pytest.mark.emulators)])
def bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bus]:
    if request.param == "local":
        yield from local_bus(tmp_path)
    else:
        yield from pubsub_bus(request.getfixturevalue("emulators"))


def dead_letter(bus: Bus, scene: str, body: bytes = b"{}") -> None:
    message = Message(
        id=uuid.uuid4().hex,
        topic="scenes-exported",
        data=body,
        attributes={"scene_id": scene, "run_id": "run-" + "0" * 20},
    )
    TopicDeadLetterSink(bus.publisher, "bp-submit-dead-letter").send(
        message, InvalidInput("bad input", scene_id=scene)
    )


def test_published_events_reach_the_consuming_stage(bus: Bus) -> None:
    bus.publisher.publish(Envelope("scenes-exported", b'{"x": 1}', {"scene_id": "a"}))
    [message] = bus.receive("submit")
    assert message.data == b'{"x": 1}' and message.attributes["scene_id"] == "a"
    assert bus.receive("import") == []


def test_dead_letters_are_listed_with_their_error_and_peeking_keeps_them(bus: Bus) -> None:
    dead_letter(bus, "a")
    dead_letter(bus, "b")
    for _ in range(2):
        letters = bus.queue.peek("submit", 10)
        assert sorted(x.scene_id or "" for x in letters) == ["a", "b"]
    assert all("bad input" in (x.error or "") for x in letters)
    assert bus.queue.peek("export", 10) == []


def test_replay_goes_to_the_source_topic_with_a_count_and_refuses_past_the_maximum(
    bus: Bus,
) -> None:
    dead_letter(bus, "a", b'{"scene": "a"}')
    dead_letter(bus, "b")
    dry = dlq.replay(bus.queue, bus.publisher, scene="a", dry_run=True)
    assert len(dry.replayed) == 1 and bus.receive("submit") == []
    report = dlq.replay(bus.queue, bus.publisher, scene="a", max_replays=1)
    assert [x.scene_id for x in report.replayed] == ["a"]
    [back] = bus.receive("submit")
    assert back.data == b'{"scene": "a"}' and back.attributes["bp_replay_count"] == "1"
    assert "bp_error" not in back.attributes
    assert [x.scene_id for x in bus.queue.peek("submit", 10)] == ["b"]

    TopicDeadLetterSink(bus.publisher, "bp-submit-dead-letter").send(
        Message(id="again", topic="scenes-exported", data=back.data, attributes=back.attributes),
        InvalidInput("still bad"),
    )
    refused = dlq.replay(bus.queue, bus.publisher, scene="a", max_replays=1)
    assert refused.replayed == [] and len(refused.refused) == 1
    assert len(bus.queue.peek("submit", 10)) == 2


def test_purge_removes_only_what_matches(bus: Bus) -> None:
    dead_letter(bus, "a")
    dead_letter(bus, "b")
    assert [x.scene_id for x in dlq.purge(bus.queue, scene="b")] == ["b"]
    assert [x.scene_id for x in bus.queue.peek("submit", 10)] == ["a"]
    assert len(dlq.purge(bus.queue)) == 1
    assert bus.queue.peek("submit", 10) == []
