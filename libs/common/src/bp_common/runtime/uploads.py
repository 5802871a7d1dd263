"""Maps a Cloud Storage notification to the run it starts, or to a skip for other objects.

A run id derives from the scene object's generation, so a repeated notification maps onto the
same run. A scene uploaded again with identical content (the scene file, its manifest and its
assets, by the store's checksums) maps onto the run that content already has: its content key
is claimed in the ledger, create-only, by the first run (bp_common.ledger.claims). Collecting
again costs GPU hours, so a new run happens only when asked: the scene object's metadata key
`bp-new-run` (set by `bp drop --new-run`) makes its generation a run of its own.

A drop is consistent when the scene generation and its companions (`scene_manifest.json` and
`assets/`) belong together (decision 0076). `bp drop` uploads the companions first and the scene
file last, stamped with the companions' key (`bp-drop`: their checksums as the store reports
them). Export reads the companions only when they are exactly what the stamp names, and checks
every downloaded byte against the listing; anything else is a `MixedSceneDrop`. A scene without
the stamp (uploaded by hand) is consistent when no companion is newer than it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path

import google_crc32c

from bp_common.blobstore import BlobInfo, BlobStore
from bp_common.contracts.events import SceneUpload
from bp_common.errors import InvalidInput
from bp_common.ids import SCENE_FILE_NAMES, run_id_for, scene_id_from_object
from bp_common.ledger import RunLedger
from bp_common.runtime.stage import Ports, RunRef, Skip

# Object metadata on the scene file that asks for a new run even for content seen before.
NEW_RUN_METADATA = "bp-new-run"
# What travels with a scene file (export reads the same).
SCENE_MANIFEST = "scene_manifest.json"
ASSETS_DIR = "assets/"
# Object metadata on the scene file: the key of the companions it was dropped with.
DROP_METADATA = "bp-drop"
_DROP_KEY_VERSION = "v1"


class MixedSceneDrop(InvalidInput):
    """The scene's manifest or assets are not the ones it was dropped with: drop it again."""


def scene_upload_ref(upload: SceneUpload) -> RunRef | Skip:
    """Only the finalize of `scenes/{id}/scene.usd*` starts a run; its generation names it."""
    if not upload.is_finalize:
        return Skip(f"{upload.attributes.event_type} is not a finalize")
    name = upload.object.name
    if not name.startswith("scenes/") or name.rsplit("/", 1)[-1] not in SCENE_FILE_NAMES:
        return Skip(f"{name} is not a scene file")
    scene_id = scene_id_from_object(name)  # an unsafe scene id is a permanent InvalidName
    generation = upload.object.generation
    return RunRef(
        scene_id=scene_id,
        run_id=run_id_for(upload.object.bucket, name, generation),
        source=(upload.object.bucket, name, generation),
    )


def wants_new_run(scene: BlobInfo) -> bool:
    return bool(scene.metadata.get(NEW_RUN_METADATA, "").strip())


def companions(blobs: BlobStore, scene_id: str) -> list[BlobInfo]:
    """What travels with a scene file, as the store lists it now: the manifest and the assets."""
    folder = f"scenes/{scene_id}/"
    return [
        info
        for info in blobs.list(folder)
        if (relative := info.key[len(folder) :]) == SCENE_MANIFEST
        or relative.startswith(ASSETS_DIR)
    ]


def _digests(blobs: BlobStore, infos: list[BlobInfo]) -> dict[str, str]:
    """Each object's checksum, by key (the store's own when it keeps one)."""
    return {info.key: blobs.digest(info) for info in infos}


def _lines(scene_id: str, digests: dict[str, str]) -> list[str]:
    folder = f"scenes/{scene_id}/"
    return sorted(f"{key[len(folder) :]}\t{digest}" for key, digest in digests.items())


def scene_content_key(blobs: BlobStore, scene_id: str, scene: BlobInfo) -> str:
    """What a drop consists of, by checksum: the scene file, the manifest and the assets."""
    lines = [f"scene\t{scene.key.rsplit('/', 1)[-1]}\t{blobs.digest(scene)}"]
    lines += _lines(scene_id, _digests(blobs, companions(blobs, scene_id)))
    material = f"{scene_id}\n" + "\n".join(sorted(lines))
    return hashlib.sha256(material.encode()).hexdigest()


def companions_key(scene_id: str, digests: dict[str, str]) -> str:
    """The stamp's value: the companions' names and checksums, hashed."""
    material = f"{scene_id}\n" + "\n".join(_lines(scene_id, digests))
    return f"{_DROP_KEY_VERSION}:{hashlib.sha256(material.encode()).hexdigest()}"


def drop_stamp(blobs: BlobStore, scene_id: str) -> dict[str, str]:
    """The scene file's metadata for the companions in place now (upload them first)."""
    return {DROP_METADATA: companions_key(scene_id, _digests(blobs, companions(blobs, scene_id)))}


def dropped_companions(
    blobs: BlobStore, scene_id: str, scene: BlobInfo
) -> list[tuple[BlobInfo, str]]:
    """The companions that belong to this scene generation, each with the checksum it was
    found with (check the bytes read against it), or MixedSceneDrop (see module doc)."""
    listed = companions(blobs, scene_id)
    digests = _digests(blobs, listed)
    found = [(info, digests[info.key]) for info in listed]
    stamp = scene.metadata.get(DROP_METADATA)
    if stamp is not None:
        if companions_key(scene_id, digests) != stamp:
            raise MixedSceneDrop(
                "the scene's manifest or assets changed after it was dropped: drop the scene"
                " again (bp drop) so that its new generation carries them",
                scene_id=scene_id,
                object=scene.key,
                generation=str(scene.generation),
            )
        return found
    newer = [info.key for info in listed if info.generation > scene.generation]
    if newer:
        raise MixedSceneDrop(
            "objects beside the scene are newer than it: upload the manifest and assets first"
            " and the scene file last (bp drop does)",
            scene_id=scene_id,
            object=scene.key,
            newer=", ".join(newer[:5]),
        )
    return found


def file_digest(info: BlobInfo, path: Path) -> str:
    """A downloaded file's checksum in the form `BlobStore.digest(info)` gives, to compare."""
    if info.md5_b64:
        md5 = hashlib.md5(usedforsecurity=False)
        _feed(path, md5.update)
        return f"md5:{base64.b64encode(md5.digest()).decode()}"
    if info.crc32c_b64:
        crc = google_crc32c.Checksum()  # type: ignore[no-untyped-call]
        _feed(path, crc.update)
        return f"crc32c:{base64.b64encode(crc.digest()).decode()}"  # type: ignore[no-untyped-call]
    sha = hashlib.sha256()
    _feed(path, sha.update)
    return f"sha256:{sha.hexdigest()}"


def _feed(path: Path, update: Callable[[bytes], object]) -> None:
    with path.open("rb") as reader:
        for chunk in iter(lambda: reader.read(1 << 20), b""):
            update(chunk)


def claimed_run(ledger: RunLedger, blobs: BlobStore, scene_id: str, scene: BlobInfo) -> str | None:
    """The run that already owns this drop's content, without claiming anything."""
    claim = ledger.claims.get(scene_content_key(blobs, scene_id, scene))
    return None if claim is None else claim.run_id


def resolve_scene_upload(ports: Ports, upload: SceneUpload, ref: RunRef) -> RunRef:
    """The run this upload belongs to: the content's first run, unless it asks for a new one.

    An upload that is no longer the object's current generation keeps its own run id: the
    stage then finds it superseded (or, with identical content, carries on).
    """
    scene = ports.blobs.stat(upload.object.name)
    if scene is None or str(scene.generation) != upload.object.generation or wants_new_run(scene):
        return ref
    try:
        dropped_companions(ports.blobs, ref.scene_id, scene)
    except MixedSceneDrop:
        # The stage refuses it; a mixed drop's content claims no run, so that dropping the
        # scene again with that content starts one.
        return ref
    key = scene_content_key(ports.blobs, ref.scene_id, scene)
    owner = ports.ledger.claims.claim(key, ref.scene_id, ref.run_id).run_id
    if owner == ref.run_id:
        return ref
    return RunRef(
        scene_id=ref.scene_id,
        run_id=owner,
        note=f"identical content to run {owner} (content {key[:12]}): no new run",
    )
