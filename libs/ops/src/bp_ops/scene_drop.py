"""A scene dropped into a Cloud Storage bucket: which files go where, in what order, the upload.

The scene file goes last: its finalize notification starts the run, and by then the manifest and
assets it refers to are in place. It is stamped with their key (`bp-drop`, decision 0076), so
that export reads exactly these companions or refuses a mixed drop.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path

from bp_common.blobstore.gcs import GcsBlobStore, storage_errors
from bp_common.errors import AlreadyExists, InvalidInput
from bp_common.ids import SCENE_FILE_NAMES, run_id_for, validate_object_name, validate_scene_id
from bp_common.runtime.uploads import DROP_METADATA, NEW_RUN_METADATA, drop_stamp
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

# Files beside the scene that travel with it (as in the embedded default).
COMPANION_FILES = ("scene_manifest.json",)
ASSETS_DIR = "assets"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_USD_CONTENT_TYPES = {".usda": "text/plain; charset=utf-8", ".usdz": "model/vnd.usdz+zip"}


def _content_type(path: Path) -> str:
    known = _USD_CONTENT_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
    return known or "application/octet-stream"


@dataclass(frozen=True)
class SceneFile:
    path: Path
    key: str
    sha256: str


@dataclass(frozen=True)
class SceneDrop:
    """What one drop uploads: companions (manifest, assets) first, then the scene file."""

    scene_id: str
    scene: SceneFile
    companions: list[SceneFile] = field(default_factory=list)


def plan_drop(scene_path: Path, scene_id: str | None = None) -> SceneDrop:
    """Resolve a scene file (or its folder) into objects under `scenes/{scene_id}/`.

    The scene id defaults to the folder's name, lowercased; it must be a valid scene id either way.
    """
    scene_path = Path(scene_path)
    if scene_path.is_dir():
        found = [scene_path / n for n in SCENE_FILE_NAMES if (scene_path / n).is_file()]
        if not found:
            raise InvalidInput(
                "no scene.usda, .usd, .usdc or .usdz in folder", path=str(scene_path)
            )
        scene_path = found[0]
    if not scene_path.is_file():
        raise InvalidInput("scene file does not exist", path=str(scene_path))
    if scene_path.name not in SCENE_FILE_NAMES:
        raise InvalidInput(
            "scene file must be named scene.usda, .usd, .usdc or .usdz", path=str(scene_path)
        )
    folder = scene_path.parent.resolve()
    scene_id = validate_scene_id(scene_id or folder.name.lower().replace(" ", "_"))
    prefix = f"scenes/{scene_id}/"

    def entry(path: Path, relative: str) -> SceneFile:
        return SceneFile(path, validate_object_name(prefix + relative), _sha256(path))

    companions = [
        entry(folder / name, name) for name in COMPANION_FILES if (folder / name).is_file()
    ]
    assets = folder / ASSETS_DIR
    if assets.is_dir():
        companions += [
            entry(path, f"{ASSETS_DIR}/{path.relative_to(assets).as_posix()}")
            for path in sorted(p for p in assets.rglob("*") if p.is_file())
        ]
    return SceneDrop(scene_id, entry(scene_path, scene_path.name), companions)


@dataclass(frozen=True)
class DropResult:
    bucket: str
    key: str
    generation: int
    run_id: str
    uploaded: list[str]
    unchanged: list[str]

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.key}"


def _upload(
    bucket: storage.Bucket,
    item: SceneFile,
    if_generation_match: int,
    *,
    new_run: bool = False,
    stamp: dict[str, str] | None = None,
) -> int:
    blob = bucket.blob(item.key)
    blob.metadata = {
        "sha256": item.sha256,
        **(stamp or {}),
        **({NEW_RUN_METADATA: "true"} if new_run else {}),
    }
    # The precondition makes a retried request safe: it cannot add a second generation.
    blob.upload_from_filename(
        str(item.path),
        content_type=_content_type(item.path),
        if_generation_match=if_generation_match,
        retry=DEFAULT_RETRY,
    )
    return int(blob.generation or 0)


def upload_drop(
    client: storage.Client, bucket_name: str, drop: SceneDrop, *, new_run: bool = False
) -> DropResult:
    """Upload companions not already there with the same content, then the scene file, stamped
    with the companions' key as the bucket reports them.

    A scene file already there with the same content and stamp is not uploaded again (no new
    generation, so no new run), unless `new_run` asks for one: its new generation then carries the
    `bp-new-run` metadata, so the pipeline does not map it onto the run of identical content.
    Cloud Storage failures arrive as the pipeline's errors (bp_common.blobstore.gcs): NotFound,
    AlreadyExists, Unavailable for what may pass.
    """
    bucket = client.bucket(bucket_name)
    uploaded: list[str] = []
    unchanged: list[str] = []
    with storage_errors(bucket=bucket_name):
        for item in drop.companions:
            existing = bucket.get_blob(item.key, retry=DEFAULT_RETRY)
            if existing is not None and (existing.metadata or {}).get("sha256") == item.sha256:
                unchanged.append(item.key)
                continue
            _upload(bucket, item, int(existing.generation) if existing is not None else 0)
            uploaded.append(item.key)
        existing = bucket.get_blob(drop.scene.key, retry=DEFAULT_RETRY)
        stamp = drop_stamp(GcsBlobStore(client, bucket_name), drop.scene_id)
    found = (existing.metadata or {}) if existing is not None else {}
    same = (
        found.get("sha256") == drop.scene.sha256
        and found.get(DROP_METADATA) == stamp[DROP_METADATA]
    )
    if same and not new_run and not uploaded:
        assert existing is not None
        generation = int(existing.generation)
        return DropResult(
            bucket=bucket_name,
            key=drop.scene.key,
            generation=generation,
            run_id=run_id_for(bucket_name, drop.scene.key, generation),
            uploaded=[],
            unchanged=[*unchanged, drop.scene.key],
        )
    expected = int(existing.generation) if existing is not None else 0
    try:
        with storage_errors(bucket=bucket_name, object=drop.scene.key):
            generation = _upload(bucket, drop.scene, expected, new_run=new_run, stamp=stamp)
    except AlreadyExists as exc:
        # Either a retry of this very upload whose first attempt landed, or another writer.
        with storage_errors(bucket=bucket_name, object=drop.scene.key):
            current = bucket.get_blob(drop.scene.key)
        if current is None or (current.metadata or {}).get("sha256") != drop.scene.sha256:
            raise AlreadyExists(
                "the scene changed while it was being dropped", object=drop.scene.key
            ) from exc
        generation = int(current.generation)
    uploaded.append(drop.scene.key)
    return DropResult(
        bucket=bucket_name,
        key=drop.scene.key,
        generation=generation,
        run_id=run_id_for(bucket_name, drop.scene.key, generation),
        uploaded=uploaded,
        unchanged=unchanged,
    )
