"""Dead-letter operations shared by `bp dlq` and the status page: list, replay, purge."""

from __future__ import annotations

from dataclasses import dataclass, field

from bp_common.bus.base import (
    ATTR_ERROR,
    ATTR_ERROR_TYPE,
    ATTR_REPLAY_COUNT,
    ATTR_SOURCE_TOPIC,
    DeadLetter,
    DeadLetterQueue,
    Publisher,
)
from bp_common.contracts.envelope import Envelope

DEFAULT_MAX_REPLAYS = 3
_DROPPED_ON_REPLAY = (ATTR_ERROR, ATTR_ERROR_TYPE, ATTR_SOURCE_TOPIC)


@dataclass
class ReplayReport:
    replayed: list[DeadLetter] = field(default_factory=list)
    refused: list[DeadLetter] = field(default_factory=list)
    dry_run: bool = False


def _matches(letter: DeadLetter, scene: str | None) -> bool:
    return scene is None or letter.scene_id == scene


def replay(
    queue: DeadLetterQueue,
    publisher: Publisher,
    *,
    stage: str | None = None,
    scene: str | None = None,
    max_messages: int = 100,
    dry_run: bool = False,
    max_replays: int = DEFAULT_MAX_REPLAYS,
) -> ReplayReport:
    """Re-publish dead letters to their source topic, counting replays; refuse past the limit."""
    report = ReplayReport(dry_run=dry_run)
    for name in [stage] if stage else queue.stages():
        budget = max_messages - len(report.replayed) - len(report.refused)
        if budget <= 0:
            break
        with queue.claim(name, budget) as letters:
            for letter in letters:
                if not _matches(letter, scene):
                    continue
                if letter.replay_count >= max_replays:
                    report.refused.append(letter)
                    continue
                report.replayed.append(letter)
                if dry_run:
                    continue
                attributes = {
                    k: v
                    for k, v in letter.attributes.items()
                    if k not in _DROPPED_ON_REPLAY and not k.startswith("CloudPubSubDeadLetter")
                }
                attributes[ATTR_REPLAY_COUNT] = str(letter.replay_count + 1)
                publisher.publish(
                    Envelope(queue.source_topic(name, letter), letter.data, attributes)
                )
                queue.settle(name, letter)
    return report


def purge(
    queue: DeadLetterQueue,
    *,
    stage: str | None = None,
    scene: str | None = None,
    max_messages: int = 1000,
) -> list[DeadLetter]:
    purged: list[DeadLetter] = []
    for name in [stage] if stage else queue.stages():
        with queue.claim(name, max_messages - len(purged)) as letters:
            for letter in letters:
                if _matches(letter, scene):
                    queue.settle(name, letter)
                    purged.append(letter)
    return purged
