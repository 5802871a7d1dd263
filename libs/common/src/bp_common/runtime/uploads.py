"""Maps a Cloud Storage notification to the run it starts, or to a skip for other objects.

A run id derives from the scene object's generation, so a repeated notification maps onto the
same run. A scene uploaded again with identical content (the scene file, its manifest and its
assets, by the store's checksums) maps onto the run that content already has: its content key
is claimed in the ledger, create-only, by the first run (bp_common.ledger.claims). Collecting
again costs GPU hours, so a new run happens only when asked: the scene object's metadata key
`bp-new-run` (set by `bp drop --new-run`) makes its generation a run of its own.
"""

from __future__ import annotations

import hashlib

from bp_common.blobstore import BlobInfo, BlobStore
from bp_common.contracts.events import SceneUpload
from bp_common.ids import SCENE_FILE_NAMES, run_id_for, scene_id_from_object
from bp_common.ledger import RunLedger
from bp_common.runtime.stage import Ports, RunRef, Skip

# Object metadata on the scene file that asks for a new run even for content seen before.
NEW_RUN_METADATA = "bp-new-run"
# What travels with a scene file (export reads the same).
SCENE_MANIFEST = "scene_manifest.json"
ASSETS_DIR = "assets/"


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


def scene_content_key(blobs: BlobStore, scene_id: str, scene: BlobInfo) -> str:
    """What a drop consists of, by checksum: the scene file, the manifest and the assets."""
    folder = f"scenes/{scene_id}/"
    lines = [f"scene\t{scene.key.rsplit('/', 1)[-1]}\t{blobs.digest(scene)}"]
    for info in blobs.list(folder):
        relative = info.key[len(folder) :]
        if relative == SCENE_MANIFEST or relative.startswith(ASSETS_DIR):
            lines.append(f"{relative}\t{blobs.digest(info)}")
    material = f"{scene_id}\n" + "\n".join(sorted(lines))
    return hashlib.sha256(material.encode()).hexdigest()


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
    key = scene_content_key(ports.blobs, ref.scene_id, scene)
    owner = ports.ledger.claims.claim(key, ref.scene_id, ref.run_id).run_id
    if owner == ref.run_id:
        return ref
    return RunRef(
        scene_id=ref.scene_id,
        run_id=owner,
        note=f"identical content to run {owner} (content {key[:12]}): no new run",
    )
