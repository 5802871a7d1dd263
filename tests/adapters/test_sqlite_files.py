"""SQLite files shared by threads and processes: every connection gets the file in WAL mode."""

from __future__ import annotations

import threading
from pathlib import Path

from bp_common.sqlite_files import ThreadLocalSqlite


def test_connections_opening_a_new_file_at_once_all_get_it_in_wal_mode(tmp_path: Path) -> None:
    # Switching a file to WAL needs it to itself; SQLite refuses at once ("database is
    # locked", its busy timeout not consulted) while another connection opens it. The race is
    # narrow, so it is run many times over.
    modes: list[str] = []
    errors: list[BaseException] = []

    def open_and_read(path: Path, start: threading.Barrier) -> None:
        start.wait()
        try:
            conn = ThreadLocalSqlite(path).connection()
            modes.append(conn.execute("PRAGMA journal_mode").fetchone()[0])
        except BaseException as exc:
            errors.append(exc)

    for trial in range(100):
        path, start = tmp_path / f"{trial}.sqlite", threading.Barrier(4)
        threads = [threading.Thread(target=open_and_read, args=(path, start)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert errors == []
    assert modes == ["wal"] * 400
