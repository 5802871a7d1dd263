"""The run ledger in one SQLite file, for the embedded default and tests."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from bp_common.ledger.migrations import Document
from bp_common.ledger.store import LedgerStore
from bp_common.sqlite_files import ThreadLocalSqlite

_TABLE = re.compile(r"^[a-z][a-z_]{0,62}$")


class SqliteLedgerStore(LedgerStore):
    """One table of documents in a SQLite file; its siblings are tables in the same file."""

    def __init__(self, path: Path, table: str = "runs") -> None:
        if not _TABLE.fullmatch(table):
            raise ValueError(f"not a table name: {table!r}")
        self.path = Path(path)
        self.table = table
        self._db = ThreadLocalSqlite(self.path)
        with self._conn() as conn:
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (run_id TEXT PRIMARY KEY,"
                " scene_id TEXT NOT NULL, updated_at TEXT NOT NULL, doc TEXT NOT NULL)"
            )

    def __repr__(self) -> str:
        return f"SqliteLedgerStore(path={str(self.path)!r}, table={self.table!r})"

    def sibling(self, kind: str) -> SqliteLedgerStore:
        return SqliteLedgerStore(self.path, f"{self.table}_{kind}")

    def _conn(self) -> sqlite3.Connection:
        return self._db.connection()

    def read(self, run_id: str) -> Document | None:
        query = f"SELECT doc FROM {self.table} WHERE run_id = ?"
        row = self._conn().execute(query, (run_id,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def delete(self, run_id: str) -> bool:
        conn = self._conn()
        removed = conn.execute(f"DELETE FROM {self.table} WHERE run_id = ?", (run_id,)).rowcount
        conn.commit()
        return bool(removed)

    def transact(self, run_id: str, change: Callable[[Document | None], Document]) -> Document:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            query = f"SELECT doc FROM {self.table} WHERE run_id = ?"
            row = conn.execute(query, (run_id,)).fetchone()
            doc = change(None if row is None else json.loads(row[0]))
            conn.execute(
                f"INSERT INTO {self.table} (run_id, scene_id, updated_at, doc) VALUES (?, ?, ?, ?)"
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
        query = f"SELECT doc FROM {self.table}"
        args: tuple[object, ...] = ()
        if scene_id:
            query += " WHERE scene_id = ?"
            args = (scene_id,)
        rows = self._conn().execute(query + " ORDER BY updated_at DESC LIMIT ?", (*args, limit))
        return [dict(json.loads(r[0])) for r in rows]

    def all_ids(self) -> list[str]:
        rows = self._conn().execute(f"SELECT run_id FROM {self.table} ORDER BY run_id")
        return [r[0] for r in rows]
