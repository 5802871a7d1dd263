"""How a bad-input case reaches the export stage: its objects written into the bucket, the scene
file last, and the `scene-uploads` notification Cloud Storage would send for it (forged where the
case says so). The embedded pipeline's bucket and bus here; the emulator test uploads with
google-cloud-storage and lets fake-gcs-server notify."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bp_common.blobstore import BlobStore
from bp_common.contracts.envelope import Envelope
from bp_common.contracts.events import SceneUpload
from bp_common.ids import run_id_for

from tests.badinput.corpus import Case

CASE_ATTRIBUTE = "test_case"
"""Set on each embedded notification, to find its dead letter again (extra attributes pass)."""


def notification(
    bucket: str, key: str, generation: int, size: int
) -> tuple[dict[str, str], dict[str, str]]:
    """(attributes, object resource) of an OBJECT_FINALIZE, as Cloud Storage sends them."""
    now = datetime.now(UTC).isoformat()
    resource = {
        "kind": "storage#object",
        "name": key,
        "bucket": bucket,
        "generation": str(generation),
        "size": str(size),
        "timeCreated": now,
    }
    attributes = {
        "eventType": "OBJECT_FINALIZE",
        "payloadFormat": "JSON_API_V1",
        "bucketId": bucket,
        "objectId": key,
        "objectGeneration": str(generation),
        "eventTime": now,
    }
    return attributes, resource


def put(blobs: BlobStore, case: Case, files: dict[str, bytes]) -> tuple[str, int]:
    """Write the files under the case's scene folder, the scene file last: (its key, generation)."""
    folder = f"scenes/{case.scene_id}/"
    for name in sorted(files, key=lambda n: n == case.scene_name):
        blobs.write_bytes(folder + name, files[name])
    key = folder + case.scene_name
    info = blobs.stat(key)
    assert info is not None
    return key, info.generation


def announce(
    bucket: str, blobs: BlobStore, case: Case, key: str, generation: int
) -> tuple[Envelope, str]:
    """The case's notification for `key` at `generation`, and the run id it names."""
    info = blobs.stat(key)
    assert info is not None
    attributes, resource = notification(bucket, key, generation, info.size)
    if case.forge is not None:
        case.forge(attributes, resource)
    attributes[CASE_ATTRIBUTE] = case.name
    data = case.data if case.data is not None else json.dumps(resource).encode()
    run_id = run_id_for(
        attributes["bucketId"], attributes["objectId"], attributes["objectGeneration"]
    )
    return Envelope(SceneUpload.TOPIC, data, attributes), run_id
