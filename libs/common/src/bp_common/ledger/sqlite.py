"""The run ledger in one SQLite file, for the embedded default and tests."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from bp_common.ledger.migrations import Document
from bp_common.ledger.service import LedgerStore
from bp_common.sqlite_files import ThreadLocalSqlite


class SqliteLedgerStore(LedgerStore):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = ThreadLocalSqlite(self.path)
        with self._conn() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, scene_id TEXT NOT NULL,"
                " updated_at TEXT NOT NULL, doc TEXT NOT NULL)"
            )

    def _conn(self) -> sqlite3.Connection:
        return self._db.connection()

    def read(self, run_id: str) -> Document | None:
        row = self._conn().execute("SELECT doc FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def transact(self, run_id: str, change: Callable[[Document | None], Document]) -> Document:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT doc FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            doc = change(None if row is None else json.loads(row[0]))
            conn.execute(
                "INSERT INTO runs (run_id, scene_id, updated_at, doc) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(run_id) DO UPDATE SET scene_id = excluded.scene_id,"
                " updated_at = excluded.updated_at, doc = excluded.doc",
                (
                    run_id,
                    doc.get("scene_id", ""),
                    str(doc.get("updated_at", "")),
                    json.dumps(doc, default=str),
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return doc

    def scan(self, limit: int, scene_id: str | None = None) -> list[Document]:
        query = "SELECT doc FROM runs"
        args: tuple[object, ...] = ()
        if scene_id:
            query += " WHERE scene_id = ?"
            args = (scene_id,)
        rows = self._conn().execute(query + " ORDER BY updated_at DESC LIMIT ?", (*args, limit))
        return [dict(json.loads(r[0])) for r in rows]

    def all_ids(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT run_id FROM runs ORDER BY run_id")]
