"""The in-process bus of the embedded default: SQLite-backed, so a killed run resumes."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bp_common.bus.base import (
    ATTR_ERROR,
    ATTR_ERROR_TYPE,
    ATTR_PUBSUB_DL_COUNT,
    ATTR_SOURCE_TOPIC,
    DeadLetter,
    DeadLetterQueue,
    Message,
    Publisher,
)
from bp_common.contracts.envelope import Envelope
from bp_common.errors import NotFound, PipelineError
from bp_common.sqlite_files import ThreadLocalSqlite
from bp_common.topology import ROUTE_BY_STAGE, ROUTES, routes_consuming

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
  id TEXT PRIMARY KEY, stage TEXT NOT NULL, topic TEXT NOT NULL, data BLOB NOT NULL,
  attributes TEXT NOT NULL, published REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  available_at REAL NOT NULL, state TEXT NOT NULL DEFAULT 'ready');
CREATE INDEX IF NOT EXISTS messages_ready ON messages (stage, state, available_at);
CREATE TABLE IF NOT EXISTS published (
  id TEXT PRIMARY KEY, topic TEXT NOT NULL, data BLOB NOT NULL, attributes TEXT NOT NULL,
  published REAL NOT NULL);
"""


class LocalBus(Publisher):
    """Fan-out to each stage subscribed to a topic; leases, retries and dead letters in SQLite."""

    def __init__(
        self,
        path: Path,
        *,
        max_delivery_attempts: int = 5,
        ack_deadline_s: float = 600.0,
        min_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_delivery_attempts = max_delivery_attempts
        self.ack_deadline_s = ack_deadline_s
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self._db = ThreadLocalSqlite(self.path)
        self._conn().executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._db.connection()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def publish(self, envelope: Envelope) -> str:
        message_id = uuid.uuid4().hex
        now = time.time()
        attrs = json.dumps(envelope.attributes)
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO published VALUES (?, ?, ?, ?, ?)",
                (message_id, envelope.topic, envelope.data, attrs, now),
            )
            for route in ROUTES:  # a dead-letter topic feeds that stage's dead-letter queue
                if envelope.topic == route.dead_letter_topic:
                    source = envelope.attributes.get(ATTR_SOURCE_TOPIC, route.consumes)
                    conn.execute(
                        "INSERT INTO messages (id, stage, topic, data, attributes, published,"
                        " available_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'dead')",
                        (
                            f"{message_id}.{route.stage}",
                            route.stage,
                            source,
                            envelope.data,
                            attrs,
                            now,
                            now,
                        ),
                    )
            for route in routes_consuming(envelope.topic):
                conn.execute(
                    "INSERT INTO messages"
                    " (id, stage, topic, data, attributes, published, available_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        f"{message_id}.{route.stage}",
                        route.stage,
                        envelope.topic,
                        envelope.data,
                        attrs,
                        now,
                        now,
                    ),
                )
        return message_id

    def published(self, topic: str) -> list[Envelope]:
        rows = self._conn().execute(
            "SELECT topic, data, attributes FROM published WHERE topic = ? ORDER BY published",
            (topic,),
        )
        return [Envelope(t, bytes(d), json.loads(a)) for t, d, a in rows]

    def receive(self, stages: list[str]) -> Message | None:
        """Lease the oldest deliverable message for any of the stages, or None."""
        now = time.time()
        marks = ",".join("?" * len(stages))
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT id, topic, data, attributes, attempts, published FROM messages"
                f" WHERE stage IN ({marks}) AND state = 'ready' AND available_at <= ?"
                " ORDER BY available_at LIMIT 1",
                (*stages, now),
            ).fetchone()
            if row is None:
                return None
            message_id, topic, data, attrs, attempts, published = row
            conn.execute(
                "UPDATE messages SET attempts = ?, available_at = ? WHERE id = ?",
                (attempts + 1, now + self.ack_deadline_s, message_id),
            )
        return Message(
            id=message_id,
            topic=topic,
            data=bytes(data),
            attributes=json.loads(attrs),
            delivery_attempt=attempts + 1,
            publish_time=datetime.fromtimestamp(published, UTC),
        )

    def reclaim(self) -> int:
        """Make every waiting message deliverable now: leases held by a killed run end here."""
        cur = self._conn().execute(
            "UPDATE messages SET available_at = ? WHERE state = 'ready'", (time.time(),)
        )
        return cur.rowcount

    def next_due(self, stages: list[str]) -> float | None:
        """Seconds until the next message of these stages becomes deliverable; None if none wait."""
        marks = ",".join("?" * len(stages))
        row = (
            self._conn()
            .execute(
                f"SELECT MIN(available_at) FROM messages"
                f" WHERE stage IN ({marks}) AND state = 'ready'",
                stages,
            )
            .fetchone()
        )
        return None if row[0] is None else max(0.0, row[0] - time.time())

    def ack(self, message: Message) -> None:
        self._conn().execute("UPDATE messages SET state = 'done' WHERE id = ?", (message.id,))

    def nack(self, message: Message) -> bool:
        """Back off exponentially; past the maximum attempts the message is dead-lettered.
        Returns True when it was dead-lettered."""
        if message.delivery_attempt >= self.max_delivery_attempts:
            self._dead(message, {ATTR_PUBSUB_DL_COUNT: str(message.delivery_attempt)})
            return True
        delay = min(self.max_backoff_s, self.min_backoff_s * 2 ** (message.delivery_attempt - 1))
        self._conn().execute(
            "UPDATE messages SET available_at = ? WHERE id = ?", (time.time() + delay, message.id)
        )
        return False

    def extend(self, message: Message, seconds: float) -> None:
        """Keep a message that is still being worked from being delivered again (its lease)."""
        self._conn().execute(
            "UPDATE messages SET available_at = ? WHERE id = ? AND state = 'ready'",
            (time.time() + seconds, message.id),
        )

    def defer(self, message: Message, delay_s: float = 0.5) -> None:
        """Hand the message back without using a delivery attempt (its unit's holder works)."""
        self._conn().execute(
            "UPDATE messages SET attempts = MAX(0, attempts - 1), attributes = ?,"
            " available_at = ? WHERE id = ?",
            (json.dumps(message.handed_back()), time.time() + delay_s, message.id),
        )

    def dead_letter(self, message: Message, error: PipelineError) -> None:
        self._dead(message, {ATTR_ERROR_TYPE: error.kind, ATTR_ERROR: str(error)[:1000]})

    def _dead(self, message: Message, extra: dict[str, str]) -> None:
        attrs = {**message.attributes, ATTR_SOURCE_TOPIC: message.topic, **extra}
        self._conn().execute(
            "UPDATE messages SET state = 'dead', attributes = ? WHERE id = ?",
            (json.dumps(attrs), message.id),
        )

    def pending(self, stages: list[str]) -> int:
        marks = ",".join("?" * len(stages))
        row = (
            self._conn()
            .execute(
                f"SELECT COUNT(*) FROM messages WHERE stage IN ({marks}) AND state = 'ready'",
                stages,
            )
            .fetchone()
        )
        return int(row[0])


class LocalDeadLetterQueue(DeadLetterQueue):
    def __init__(self, bus: LocalBus) -> None:
        self.bus = bus

    def stages(self) -> list[str]:
        return list(ROUTE_BY_STAGE)

    @contextmanager
    def claim(self, stage: str, max_messages: int) -> Iterator[list[DeadLetter]]:
        with self.bus._tx() as conn:
            rows = conn.execute(
                "SELECT id, topic, data, attributes, published FROM messages"
                " WHERE stage = ? AND state = 'dead' ORDER BY published LIMIT ?",
                (stage, max_messages),
            ).fetchall()
            conn.executemany(
                "UPDATE messages SET state = 'claimed' WHERE id = ?", [(r[0],) for r in rows]
            )
        letters = [
            DeadLetter(
                id=r[0],
                stage=stage,
                source_topic=r[1],
                data=bytes(r[2]),
                attributes=json.loads(r[3]),
                publish_time=datetime.fromtimestamp(r[4], UTC),
            )
            for r in rows
        ]
        try:
            yield letters
        finally:
            self.bus._conn().executemany(
                "UPDATE messages SET state = 'dead' WHERE id = ? AND state = 'claimed'",
                [(letter.id,) for letter in letters],
            )

    def settle(self, stage: str, letter: DeadLetter) -> None:
        cur = self.bus._conn().execute(
            "UPDATE messages SET state = 'settled' WHERE id = ? AND state = 'claimed'", (letter.id,)
        )
        if cur.rowcount != 1:
            raise NotFound("dead letter is not claimed", stage=stage, message_id=letter.id)

    def source_topic(self, stage: str, letter: DeadLetter) -> str:
        return letter.source_topic or ROUTE_BY_STAGE[stage].consumes
