"""What the export stage refuses before it reads a scene: a notification that does not describe
the object in the bucket, and a scene larger than its limits (bytes and objects)."""

from __future__ import annotations

from bp_common.blobstore import BlobInfo
from bp_common.contracts.events import SceneUpload
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bp_export.scene_errors import NotificationMismatch
from bp_export.usd.stage import DEFAULT_MAX_OBJECTS, DEFAULT_MAX_SCENE_BYTES


class ExportSettings(BaseSettings):
    """Export's own limits (`BP_EXPORT_*`), beside bp_common's Settings."""

    model_config = SettingsConfigDict(env_prefix="BP_EXPORT_", extra="ignore", frozen=True)

    # A scene file over this many bytes is refused before it is downloaded.
    max_scene_bytes: int = Field(default=DEFAULT_MAX_SCENE_BYTES, gt=0)
    # A scene with more physical objects is refused before any object is read.
    max_scene_objects: int = Field(default=DEFAULT_MAX_OBJECTS, gt=0)


def check_bucket(upload: SceneUpload, home: str, scene_id: str) -> None:
    """Refuse a notification for another bucket than the stage's store (`home`, its gs://
    address; a local store has no bucket name to compare)."""
    if home.startswith("gs://") and home != f"gs://{upload.object.bucket}/":
        raise NotificationMismatch(
            f"notification for bucket {upload.object.bucket!r}, but this stage reads {home}",
            scene_id=scene_id,
            object=upload.object.name,
        )


def check_object(upload: SceneUpload, current: BlobInfo, scene_id: str) -> None:
    """Refuse a notification naming a generation newer than the object's current one (Cloud
    Storage never wrote it) or, for the current generation, another size."""
    where = {"scene_id": scene_id, "object": upload.object.name}
    generation = int(upload.object.generation)
    if generation > current.generation:
        raise NotificationMismatch(
            f"notification names generation {generation}, newer than the object's"
            f" {current.generation}: no such object was written",
            **where,
        )
    size = upload.object.size
    if generation == current.generation and size is not None and int(size) != current.size:
        raise NotificationMismatch(
            f"notification says {size} bytes, the object has {current.size}", **where
        )
