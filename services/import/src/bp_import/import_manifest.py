"""`import_manifest.json`: the commit record of one robot's dataset, written last, create-only.

    {"format_version": 1, "scene_id", "run_id", "robot", "codebase_version",
     "files": {relative_path: {"sha256", "size"}},   every other file under the robot's folder:
                                                     dataset, ground truth, quality report
     "counts": {...}, "quality": {...}, "provenance": {...}}

The upload stage uploads and verifies exactly the files listed. A folder without this file is
not a committed dataset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bp_episode_format import sha256_file

IMPORT_MANIFEST = "import_manifest.json"
FORMAT_VERSION = 1


def file_inventory(root: Path) -> dict[str, dict[str, Any]]:
    """sha256 and size of every file under `root` but the manifest, by relative posix path."""
    inventory: dict[str, dict[str, Any]] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and relative != IMPORT_MANIFEST:
            inventory[relative] = {"sha256": sha256_file(path), "size": path.stat().st_size}
    return inventory


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
    return {
        "format_version": FORMAT_VERSION,
        "scene_id": scene_id,
        "run_id": run_id,
        "robot": robot,
        "codebase_version": codebase_version,
        "files": file_inventory(root),
        "counts": dict(counts),
        "quality": dict(quality),
        "provenance": dict(provenance),
    }


def manifest_bytes(document: Mapping[str, Any]) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def commit_import_manifest(root: Path, document: Mapping[str, Any]) -> Path:
    """Write the manifest create-only; raises FileExistsError if the folder is committed."""
    path = root / IMPORT_MANIFEST
    with path.open("xb") as out:
        out.write(manifest_bytes(document))
    return path
