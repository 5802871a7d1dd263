"""`import_manifest.json`: the commit record of one robot's dataset, written last, create-only.

    {"format_version": 1, "scene_id", "run_id", "robot", "codebase_version",
     "files": {relative_path: {"sha256", "size"}},   every other file under the robot's folder:
                                                     dataset, ground truth, quality report
     "counts": {...}, "quality": {...}, "provenance": {...}}

The upload stage uploads and verifies exactly the files listed. A folder without this file is
not a committed dataset. The file list grows with the episodes (7 files per episode with ground
truth), so it is hashed and written one file at a time into a scratch file, which is then
linked into place: the manifest appears whole or not at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from bp_episode_format import sha256_file

from bp_import.streamed_json import StreamedObject, write_json

IMPORT_MANIFEST = "import_manifest.json"
FORMAT_VERSION = 1


def file_inventory(root: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """sha256 and size of every file under `root` but the manifest, by relative posix path,
    in the order of those paths as strings (the manifest's sorted keys).

    A folder's entries are sorted by the text their paths start with (a subfolder's is its
    name and a slash), so the walk meets the paths in string order while holding one
    listing per level, not the whole tree.
    """

    def walk(folder: Path, prefix: str) -> Iterator[tuple[str, dict[str, Any]]]:
        entries = sorted(
            (entry.name + "/" if entry.is_dir() else entry.name, entry)
            for entry in os.scandir(folder)
        )
        for name, entry in entries:
            path = Path(entry.path)
            if name.endswith("/"):
                yield from walk(path, prefix + name)
            elif entry.is_file() and prefix + name != IMPORT_MANIFEST:
                yield prefix + name, {"sha256": sha256_file(path), "size": path.stat().st_size}

    return walk(root, "")


def import_manifest(
    root: Path,
    *,
    scene_id: str,
    run_id: str,
    robot: str,
    codebase_version: str,
    counts: Mapping[str, Any],
    quality: Mapping[str, Any],
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """The document; its file list is listed and hashed only as it is written."""
    return {
        "format_version": FORMAT_VERSION,
        "scene_id": scene_id,
        "run_id": run_id,
        "robot": robot,
        "codebase_version": codebase_version,
        "files": StreamedObject(lambda: file_inventory(root)),
        "counts": dict(counts),
        "quality": dict(quality),
        "provenance": dict(provenance),
    }


def commit_import_manifest(root: Path, document: Mapping[str, Any], scratch: Path) -> Path:
    """Write the manifest create-only, through `scratch` (a file outside `root`); raises
    FileExistsError if the folder is committed."""
    path = root / IMPORT_MANIFEST
    if path.exists():
        raise FileExistsError(path)
    write_json(scratch, document, sort_keys=True)
    try:
        os.link(scratch, path)  # fails if another writer committed meanwhile
    finally:
        scratch.unlink()
    return path


def read_import_manifest(root: Path) -> dict[str, Any]:
    """The committed manifest under `root`."""
    document: dict[str, Any] = json.loads((root / IMPORT_MANIFEST).read_text())
    return document
