"""The collector's jobs in SQLite: a job per key, its planned episodes, and its event log.

A restarted collector reads its jobs back from here: unfinished jobs carry on from their
pending episodes, and every watcher can replay the event log from any sequence number.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bp_collector_api import collector_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  job_id TEXT PRIMARY KEY,
  job_key TEXT NOT NULL UNIQUE,
  request_sha256 TEXT NOT NULL,
  request BLOB NOT NULL,
  state INTEGER NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  last_sequence INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS episodes (
  job_id TEXT NOT NULL,
  ordinal INTEGER NOT NULL,
  episode_id TEXT NOT NULL,
  task_id TEXT NOT NULL,
  seed INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending',
  attempts INTEGER NOT NULL DEFAULT 0,
  result BLOB,
  success INTEGER,
  collision_free INTEGER,
  error TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (job_id, ordinal),
  UNIQUE (job_id, episode_id)
);
CREATE TABLE IF NOT EXISTS events (
  job_id TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  payload BLOB NOT NULL,
  PRIMARY KEY (job_id, sequence)
);
"""

TERMINAL = frozenset({pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED})
PENDING, RUNNING, RECORDED = "pending", "running", "recorded"


def job_id_for(job_key: str) -> str:
    """Jobs are named by their key, so a key can only ever name one job."""
    return "job-" + hashlib.sha256(job_key.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class PlannedEpisode:
    ordinal: int
    episode_id: str
    task_id: str
    seed: int


@dataclass(frozen=True)
class EpisodeTicket:
    """An episode handed to a simulation worker."""

    job_id: str
    ordinal: int
    episode_id: str
    task_id: str
    seed: int
    attempt: int


class KeyConflict(Exception):
    """The job key already names a job started with a different request."""


def _timestamp(seconds: float) -> Timestamp:
    stamp = Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


class JobStore:
    """Thread-safe; `changed` is notified on every new event, for watchers and the scheduler."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._lock = threading.RLock()
        self.changed = threading.Condition(self._lock)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self.changed.notify_all()

    def _append(self, conn: sqlite3.Connection, job_id: str, update: pb.JobUpdate) -> int:
        (sequence,) = conn.execute(
            "UPDATE jobs SET last_sequence = last_sequence + 1, updated_at = ? WHERE job_id = ?"
            " RETURNING last_sequence",
            (time.time(), job_id),
        ).fetchone()
        update.sequence = sequence
        conn.execute(
            "INSERT INTO events (job_id, sequence, payload) VALUES (?, ?, ?)",
            (job_id, sequence, update.SerializeToString()),
        )
        return int(sequence)

    def _set_state(
        self, conn: sqlite3.Connection, job_id: str, state: int, error: str = ""
    ) -> None:
        conn.execute(
            "UPDATE jobs SET state = ?, error = ? WHERE job_id = ?", (state, error, job_id)
        )
        self._append(conn, job_id, pb.JobUpdate(state=state))  # type: ignore[arg-type]

    def create(
        self,
        request: pb.StartCollectionRequest,
        request_sha256: str,
        plan: list[PlannedEpisode],
    ) -> tuple[pb.Job, bool]:
        """The job for request.job_key: the existing one, or a new one with this plan."""
        job_id = job_id_for(request.job_key)
        now = time.time()
        with self._tx() as conn:
            row = conn.execute(
                "SELECT request_sha256 FROM jobs WHERE job_key = ?", (request.job_key,)
            ).fetchone()
            if row is not None:
                if row[0] != request_sha256:
                    raise KeyConflict(request.job_key)
                created = False
            else:
                conn.execute(
                    "INSERT INTO jobs (job_id, job_key, request_sha256, request, state,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        job_id,
                        request.job_key,
                        request_sha256,
                        request.SerializeToString(deterministic=True),
                        pb.JOB_STATE_QUEUED,
                        now,
                        now,
                    ),
                )
                conn.executemany(
                    "INSERT INTO episodes (job_id, ordinal, episode_id, task_id, seed)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [(job_id, e.ordinal, e.episode_id, e.task_id, e.seed) for e in plan],
                )
                self._append(conn, job_id, pb.JobUpdate(state=pb.JOB_STATE_QUEUED))
                created = True
        job = self.job(job_id)
        assert job is not None
        return job, created

    def request(self, job_id: str) -> pb.StartCollectionRequest | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT request FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return None if row is None else pb.StartCollectionRequest.FromString(row[0])

    def job(self, job_id: str) -> pb.Job | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT job_key, request_sha256, request, state, error, created_at, updated_at"
                " FROM jobs WHERE job_id = ?",
                (job_id,),
            ).fetchone()
            if row is None:
                return None
            counts = self._conn.execute(
                "SELECT COUNT(*), SUM(state = 'recorded'), SUM(state = 'running'),"
                " SUM(state = 'recorded' AND success), SUM(state = 'recorded' AND collision_free)"
                " FROM episodes WHERE job_id = ?",
                (job_id,),
            ).fetchone()
        key, digest, raw, state, error, created, updated = row
        request = pb.StartCollectionRequest.FromString(raw)
        return pb.Job(
            job_id=job_id,
            job_key=key,
            state=state,
            scene_id=request.scene_id,
            robot=request.robot,
            progress=pb.JobProgress(
                episodes_total=counts[0] or 0,
                episodes_recorded=counts[1] or 0,
                episodes_succeeded=counts[3] or 0,
                episodes_collision_free=counts[4] or 0,
                episodes_running=counts[2] or 0,
            ),
            error=error,
            created_at=_timestamp(created),
            updated_at=_timestamp(updated),
            labels=dict(request.labels),
            request_sha256=digest,
        )

    def events_after(self, job_id: str, after: int) -> list[pb.JobUpdate]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT payload FROM events WHERE job_id = ? AND sequence > ? ORDER BY sequence",
                (job_id, after),
            ).fetchall()
        return [pb.JobUpdate.FromString(r[0]) for r in rows]

    def last_sequence(self, job_id: str) -> int:
        with self._lock:
            row = self._conn.execute(
                "SELECT last_sequence FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
        return 0 if row is None else int(row[0])

    def episode_result(self, job_id: str, episode_id: str) -> pb.EpisodeResult | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT result FROM episodes WHERE job_id = ? AND episode_id = ?"
                " AND state = 'recorded'",
                (job_id, episode_id),
            ).fetchone()
        return None if row is None else pb.EpisodeResult.FromString(row[0])

    def recover(self) -> int:
        """After a restart nothing is running: put interrupted episodes back in the queue."""
        with self._tx() as conn:
            cur = conn.execute("UPDATE episodes SET state = 'pending' WHERE state = 'running'")
            return cur.rowcount

    def next_episode(self, max_running_jobs: int) -> EpisodeTicket | None:
        """Admit queued jobs while there is room, then lease the next episode of a running job.

        Jobs take turns: the running job with the fewest episodes in flight goes first, so
        several robots' jobs progress side by side.
        """
        with self._tx() as conn:
            (running,) = conn.execute(
                "SELECT COUNT(*) FROM jobs WHERE state = ?", (pb.JOB_STATE_RUNNING,)
            ).fetchone()
            if running < max_running_jobs:
                queued = conn.execute(
                    "SELECT job_id FROM jobs WHERE state = ? ORDER BY created_at LIMIT ?",
                    (pb.JOB_STATE_QUEUED, max_running_jobs - running),
                ).fetchall()
                for (job_id,) in queued:
                    self._set_state(conn, job_id, pb.JOB_STATE_RUNNING)
            row = conn.execute(
                "SELECT e.job_id, e.ordinal, e.episode_id, e.task_id, e.seed, e.attempts"
                " FROM episodes e JOIN jobs j ON j.job_id = e.job_id"
                " WHERE j.state = ? AND e.state = 'pending'"
                " ORDER BY (SELECT COUNT(*) FROM episodes r WHERE r.job_id = e.job_id"
                "           AND r.state = 'running'), j.created_at, e.ordinal LIMIT 1",
                (pb.JOB_STATE_RUNNING,),
            ).fetchone()
            if row is None:
                return None
            job_id, ordinal, episode_id, task_id, seed, attempts = row
            conn.execute(
                "UPDATE episodes SET state = 'running', attempts = attempts + 1"
                " WHERE job_id = ? AND ordinal = ?",
                (job_id, ordinal),
            )
        return EpisodeTicket(job_id, ordinal, episode_id, task_id, seed, attempts + 1)

    def record(self, ticket: EpisodeTicket, result: pb.EpisodeResult) -> None:
        """The episode is on disk and committed; a job whose episodes are all recorded succeeds."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE episodes SET state = 'recorded', result = ?, success = ?,"
                " collision_free = ?, error = '' WHERE job_id = ? AND ordinal = ?",
                (
                    result.SerializeToString(),
                    int(result.success),
                    int(result.collision_count == 0),
                    ticket.job_id,
                    ticket.ordinal,
                ),
            )
            self._append(conn, ticket.job_id, pb.JobUpdate(episode=result))
            (left,) = conn.execute(
                "SELECT COUNT(*) FROM episodes WHERE job_id = ? AND state != 'recorded'",
                (ticket.job_id,),
            ).fetchone()
            (state,) = conn.execute(
                "SELECT state FROM jobs WHERE job_id = ?", (ticket.job_id,)
            ).fetchone()
            if left == 0 and state == pb.JOB_STATE_RUNNING:
                self._set_state(conn, ticket.job_id, pb.JOB_STATE_SUCCEEDED)

    def release(self, ticket: EpisodeTicket, error: str, max_attempts: int) -> bool:
        """A failed or interrupted attempt: back in the queue, or the job fails when the
        episode has used its attempts. Returns True when the job failed."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE episodes SET state = 'pending', error = ? WHERE job_id = ? AND ordinal = ?",
                (error, ticket.job_id, ticket.ordinal),
            )
            if ticket.attempt < max_attempts:
                return False
            (state,) = conn.execute(
                "SELECT state FROM jobs WHERE job_id = ?", (ticket.job_id,)
            ).fetchone()
            if state in TERMINAL:
                return False
            self._set_state(
                conn,
                ticket.job_id,
                pb.JOB_STATE_FAILED,
                f"episode {ticket.episode_id} could not be recorded in {ticket.attempt}"
                f" attempts: {error}",
            )
            return True

    def requeue(self, ticket: EpisodeTicket) -> None:
        """An attempt cut short by a shutdown: it does not count against the episode."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE episodes SET state = 'pending', attempts = MAX(0, attempts - 1)"
                " WHERE job_id = ? AND ordinal = ? AND state = 'running'",
                (ticket.job_id, ticket.ordinal),
            )

    def cancel(self, job_id: str, reason: str) -> pb.Job | None:
        with self._tx() as conn:
            row = conn.execute("SELECT state FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
            if row is not None and row[0] not in TERMINAL:
                self._set_state(conn, job_id, pb.JOB_STATE_CANCELLED, reason or "cancelled")
        return self.job(job_id)

    def unfinished_jobs(self) -> list[str]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT job_id FROM jobs WHERE state IN (?, ?) ORDER BY created_at",
                (pb.JOB_STATE_QUEUED, pb.JOB_STATE_RUNNING),
            ).fetchall()
        return [r[0] for r in rows]

    def wait_for_change(self, timeout: float) -> None:
        with self.changed:
            self.changed.wait(timeout)
