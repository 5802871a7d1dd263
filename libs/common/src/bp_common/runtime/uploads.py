"""Maps a Cloud Storage notification to the run it starts, or to a skip for other objects."""

from __future__ import annotations

from bp_common.contracts.events import SceneUpload
from bp_common.ids import SCENE_FILE_NAMES, run_id_for, scene_id_from_object
from bp_common.runtime.stage import RunRef, Skip


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
