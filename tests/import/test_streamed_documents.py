"""Documents written with streamed parts are the bytes `json.dump` writes for the same values,
and spooled rows come back as they went in, as often as they are read.

The import writes its per-episode parts (report rows, analytics rows, the ground-truth index's
entries, the manifest's file list) this way so that its memory does not grow with the episodes
(decision 0100); the files must not change because of it.
"""

from __future__ import annotations

import json
from pathlib import Path

from bp_import.import_manifest import IMPORT_MANIFEST, file_inventory
from bp_import.row_spool import RowSpool, SpoolView, json_rows
from bp_import.streamed_json import StreamedList, StreamedObject, write_json


def test_streamed_parts_are_written_as_json_dump_writes_them(tmp_path: Path) -> None:
    rows = [{"b": [1, {"c": None}], "a": "x\ny"}, [], {}, 0.1 + 0.2, "é"]
    files = {"a.b": {"size": 0, "sha256": "e"}, "a/b": {"size": 2, "sha256": "f"}}
    held = {"z": 1, "rows": rows, "nested": [{"rows": rows, "none": []}], "files": files}
    streamed = {
        "z": 1,
        "rows": StreamedList(lambda: iter(rows)),
        "nested": [{"rows": StreamedList(lambda: rows), "none": StreamedList(list)}],
        "files": StreamedObject(files.items),
    }
    for sort_keys in (False, True):
        write_json(tmp_path / "doc.json", streamed, sort_keys=sort_keys)
        expected = json.dumps(held, indent=2, sort_keys=sort_keys) + "\n"
        assert (tmp_path / "doc.json").read_text() == expected


def test_the_file_inventory_comes_in_the_order_of_the_manifests_sorted_keys(
    tmp_path: Path,
) -> None:
    for name in ("data/x.parquet", "data.json", "data-1/y", "meta/info.json", "README.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / IMPORT_MANIFEST).write_text("{}")
    names = [name for name, _ in file_inventory(tmp_path)]
    assert (
        names
        == sorted(names)
        == ["README.md", "data-1/y", "data.json", "data/x.parquet", "meta/info.json"]
    )
    assert dict(file_inventory(tmp_path))["data.json"]["size"] == len("data.json")


def test_spooled_rows_come_back_exactly_on_every_pass(tmp_path: Path) -> None:
    spool = json_rows(tmp_path / "rows.jsonl")
    made = [{"episode": f"e{k}", "jerk": 1 / 3 + k, "grasp": None} for k in range(5)]
    for row in made:
        spool.append(row)
    assert len(spool) == 5 and list(spool) == made and list(spool) == made
    jerks = SpoolView(spool, lambda row: row["jerk"])
    assert list(jerks) == [row["jerk"] for row in made] and 1 / 3 in jerks
    pairs = RowSpool(tmp_path / "pairs.jsonl", list, tuple)
    pairs.append(("a", 1))
    assert list(pairs) == [("a", 1)]
