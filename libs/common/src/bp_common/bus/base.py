"""The bus interface: what a stage publishes, what a transport delivers, what ops replay."""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime

from bp_common.contracts.envelope import Envelope

# Attributes the pipeline sets on dead-lettered and replayed messages.
ATTR_SOURCE_TOPIC = "bp_source_topic"
ATTR_ERROR_TYPE = "bp_error_type"
ATTR_ERROR = "bp_error"
ATTR_REPLAY_COUNT = "bp_replay_count"
# A copy handed back by a duplicate that waited for the lease holder: how many times so far.
ATTR_DEFERRALS = "bp_deferrals"
# What Pub/Sub itself sets when its dead-letter policy forwards a message.
ATTR_PUBSUB_DL_SUBSCRIPTION = "CloudPubSubDeadLetterSourceSubscription"
ATTR_PUBSUB_DL_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"


@dataclass(frozen=True)
class Message:
    """One delivery of a message to a subscriber."""

    id: str
    topic: str
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    delivery_attempt: int = 1
    publish_time: datetime | None = None

    @property
    def deferrals(self) -> int:
        """How often this message was handed back while another delivery held its unit."""
        try:
            return max(0, int(self.attributes.get(ATTR_DEFERRALS, "0")))
        except ValueError:
            return 0

    def handed_back(self) -> dict[str, str]:
        """The attributes of the copy that hands this message back once more."""
        return {**self.attributes, ATTR_DEFERRALS: str(self.deferrals + 1)}


class Publisher(abc.ABC):
    @abc.abstractmethod
    def publish(self, envelope: Envelope) -> str:
        """Publish and wait until the bus has it; returns the message id."""


@dataclass(frozen=True)
class DeadLetter:
    """A dead-lettered message as ops see it."""

    id: str
    stage: str
    source_topic: str | None
    data: bytes
    attributes: dict[str, str]
    publish_time: datetime | None

    @property
    def scene_id(self) -> str | None:
        return self.attributes.get("scene_id") or _scene_from_object(self.attributes)

    @property
    def replay_count(self) -> int:
        try:
            return int(self.attributes.get(ATTR_REPLAY_COUNT, "0"))
        except ValueError:
            return 0

    @property
    def error(self) -> str | None:
        return self.attributes.get(ATTR_ERROR)


def _scene_from_object(attributes: dict[str, str]) -> str | None:
    parts = attributes.get("objectId", "").split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "scenes" else None


class DeadLetterQueue(abc.ABC):
    """The dead letters of every stage. Claims hold messages until settled or released."""

    @abc.abstractmethod
    def stages(self) -> list[str]:
        """Stages that have a dead-letter queue."""

    @abc.abstractmethod
    def claim(self, stage: str, max_messages: int) -> AbstractContextManager[list[DeadLetter]]:
        """Lease up to max messages; on exit every message not `settle`d returns to the queue."""

    @abc.abstractmethod
    def settle(self, stage: str, letter: DeadLetter) -> None:
        """Remove a claimed message for good (after a replay or a purge)."""

    @abc.abstractmethod
    def source_topic(self, stage: str, letter: DeadLetter) -> str:
        """The topic the message was first published on."""

    def peek(self, stage: str, max_messages: int) -> list[DeadLetter]:
        with self.claim(stage, max_messages) as letters:
            return list(letters)
