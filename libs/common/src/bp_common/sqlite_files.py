"""SQLite files shared by threads: one connection per thread, WAL, explicit transactions."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class ThreadLocalSqlite:
    """Connections in autocommit mode (callers open `BEGIN IMMEDIATE` where they need one)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            self._local.conn = conn
        return conn
