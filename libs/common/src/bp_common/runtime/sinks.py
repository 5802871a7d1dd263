"""Where a message goes instead of a retry: a permanent failure to its dead-letter topic at once
(no retry storm), and a duplicate that waited for its unit's holder back to its own topic (no
delivery attempt used)."""

from __future__ import annotations

from typing import Protocol

from bp_common.bus import Message
from bp_common.bus.base import ATTR_ERROR, ATTR_ERROR_TYPE, ATTR_SOURCE_TOPIC, Publisher
from bp_common.contracts.envelope import Envelope
from bp_common.errors import PipelineError


class DeadLetterSink(Protocol):
    def send(self, message: Message, error: PipelineError) -> None: ...


class TopicDeadLetterSink:
    """Publishes the message, its error and its source topic to the stage's dead-letter topic."""

    def __init__(self, publisher: Publisher, topic: str) -> None:
        self.publisher = publisher
        self.topic = topic

    def send(self, message: Message, error: PipelineError) -> None:
        attributes = {
            **message.attributes,
            ATTR_SOURCE_TOPIC: message.topic,
            ATTR_ERROR_TYPE: error.kind,
            ATTR_ERROR: str(error)[:1000],
        }
        self.publisher.publish(Envelope(self.topic, message.data, attributes))


class Redelivery(Protocol):
    def send(self, message: Message) -> None: ...


class TopicRedelivery:
    """Hands a message back as a fresh copy on its own topic, counted in `bp_deferrals`.

    Pub/Sub counts every nack towards the dead-letter policy; a copy published before the
    original is acked starts over at attempt 1, so waiting for a busy holder never dead-letters
    a message. Every subscriber of the topic sees the copy; each stage treats it as the
    duplicate it is.
    """

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher

    def send(self, message: Message) -> None:
        self.publisher.publish(Envelope(message.topic, message.data, message.handed_back()))
