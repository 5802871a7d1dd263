"""SQLite files shared by threads: one connection per thread, WAL, explicit transactions."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

TIMEOUT_S = 30.0


class ThreadLocalSqlite:
    """Connections in autocommit mode (callers open `BEGIN IMMEDIATE` where they need one)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=TIMEOUT_S, isolation_level=None)
            _write_ahead_log(conn)
            self._local.conn = conn
        return conn


def _write_ahead_log(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode (once: the mode is kept in the file). Switching needs the file
    to itself, and SQLite answers "database is locked" at once, without waiting out its busy
    timeout, when another connection opens it at that moment; so wait and ask again."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
