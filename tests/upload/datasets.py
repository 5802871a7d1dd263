"""Small LeRobot-shaped dataset folders with an import manifest, as the import stage leaves them."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from bp_common.blobstore import BlobStore


@dataclass(frozen=True)
class Dataset:
    root: Path
    files: dict[str, bytes]  # relative path -> bytes, the import manifest included

    @property
    def manifest(self) -> bytes:
        return self.files["import_manifest.json"]

    @property
    def data_files(self) -> dict[str, bytes]:
        return {k: v for k, v in self.files.items() if k != "import_manifest.json"}


def make_dataset(
    root: Path, *, episodes: int = 6, episode_bytes: int = 48 * 1024, seed: int = 7
) -> Dataset:
    """meta/, data/ and videos/ files of random bytes, then import_manifest.json last."""
    rng = random.Random(seed)
    files: dict[str, bytes] = {
        "meta/info.json": json.dumps(
            {"codebase_version": "v2.1", "total_episodes": episodes, "total_frames": 30 * episodes}
        ).encode(),
        "meta/tasks.jsonl": b'{"task_index": 0, "task": "put the cube in the bin"}\n',
        "meta/episodes_stats.jsonl": b"",  # an empty file travels too
    }
    for i in range(episodes):
        files[f"data/chunk-000/episode_{i:06d}.parquet"] = rng.randbytes(episode_bytes)
        files[f"videos/chunk-000/observation.images.wrist/episode_{i:06d}.mp4"] = rng.randbytes(
            episode_bytes // 2 + i
        )
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    inventory = {
        relative: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for relative, data in sorted(files.items())
    }
    # The import stage's shape (bp_import.import_manifest); the upload relies on `files`.
    document = {
        "format_version": 1,
        "robot": root.name,
        "codebase_version": "v2.1",
        "files": inventory,
        "counts": {"dataset_episodes": episodes, "frames": 30 * episodes},
        "quality": {"pass_rate": 0.9},
    }
    manifest = json.dumps(document, indent=2, sort_keys=True).encode()
    (root / "import_manifest.json").write_bytes(manifest)
    files["import_manifest.json"] = manifest
    return Dataset(root, files)


def put_dataset(store: BlobStore, prefix: str, dataset: Dataset) -> None:
    """Copy a dataset into a pipeline bucket under prefix (the import stage's run prefix)."""
    for relative, data in dataset.files.items():
        store.write_bytes(prefix + relative, data)
