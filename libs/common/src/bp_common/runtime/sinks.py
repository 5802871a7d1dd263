"""Where a permanently failed message goes at once, so it never waits out a retry storm."""

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
