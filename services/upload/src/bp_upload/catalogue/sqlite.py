"""The dataset catalogue in one SQLite file, for the embedded default and offline `bp upload`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from bp_common.sqlite_files import ThreadLocalSqlite

from bp_upload.catalogue.port import CatalogueEntry, DatasetCatalogue, entry_id


class SqliteCatalogue(DatasetCatalogue):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = ThreadLocalSqlite(self.path)
        self._conn().execute(
            "CREATE TABLE IF NOT EXISTS datasets (entry_id TEXT PRIMARY KEY,"
            " scene_id TEXT NOT NULL, robot TEXT NOT NULL, published_at TEXT NOT NULL,"
            " doc TEXT NOT NULL)"
        )

    def __repr__(self) -> str:
        return f"SqliteCatalogue(path={str(self.path)!r})"

    def _conn(self) -> sqlite3.Connection:
        return self._db.connection()

    def record(self, entry: CatalogueEntry) -> None:
        self._conn().execute(
            "INSERT INTO datasets (entry_id, scene_id, robot, published_at, doc)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(entry_id) DO UPDATE SET"
            " published_at = excluded.published_at, doc = excluded.doc",
            (
                entry.entry_id,
                entry.scene_id,
                entry.robot,
                entry.published_at,
                json.dumps(entry.to_document(), sort_keys=True),
            ),
        )

    def get(self, scene_id: str, robot: str, run_id: str) -> CatalogueEntry | None:
        row = (
            self._conn()
            .execute(
                "SELECT doc FROM datasets WHERE entry_id = ?", (entry_id(scene_id, robot, run_id),)
            )
            .fetchone()
        )
        return None if row is None else CatalogueEntry.from_document(json.loads(row[0]))

    def list(
        self, *, scene_id: str | None = None, robot: str | None = None, limit: int = 50
    ) -> list[CatalogueEntry]:
        where, args = [], []
        if scene_id:
            where.append("scene_id = ?")
            args.append(scene_id)
        if robot:
            where.append("robot = ?")
            args.append(robot)
        query = "SELECT doc FROM datasets"
        if where:
            query += " WHERE " + " AND ".join(where)
        rows = self._conn().execute(query + " ORDER BY published_at DESC LIMIT ?", (*args, limit))
        return [CatalogueEntry.from_document(json.loads(r[0])) for r in rows]
