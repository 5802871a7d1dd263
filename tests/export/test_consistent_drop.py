"""A consistent scene drop: export reads the manifest and assets that belong to the scene
generation it was started by, or refuses a mixed drop with a typed error (decision 0076).

On the embedded folder through the export stage, and on fake-gcs-server through `bp drop`'s
upload: the scene file is stamped with its companions' key; a manifest changed alone starts no
run and makes the current generation's export refuse; dropping the scene again exports it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from bp_common.blobstore import BlobStore
from bp_common.blobstore.gcs import GcsBlobStore
from bp_common.config import Settings
from bp_common.ledger import StageState
from bp_common.runtime.delivery import Outcome
from bp_common.runtime.uploads import (
    DROP_METADATA,
    MixedSceneDrop,
    dropped_companions,
    file_digest,
)
from bp_export.stage import EXPORT
from bp_ops.embedded import EmbeddedPipeline
from bp_ops.scene_drop import plan_drop, upload_drop
from google.cloud import storage

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kitchen_table"
SCENE = '#usda 1.0\n(\n    defaultPrim = "World"\n)\ndef Xform "World" {}\n'


def pipeline(root: Path) -> EmbeddedPipeline:
    return EmbeddedPipeline(root, Settings(_env_file=None), {"export": EXPORT})  # type: ignore[call-arg]


def kitchen(tmp_path: Path, description: str | None = None) -> Path:
    folder = tmp_path / "kitchen_table"
    shutil.copytree(EXAMPLE, folder, dirs_exist_ok=True)
    if description is not None:
        (folder / "scene_manifest.json").write_text(described(folder, description))
    return folder / "scene.usda"


def described(folder: Path, description: str) -> str:
    manifest = json.loads((folder / "scene_manifest.json").read_text())
    manifest["objects"][0]["description"] = description
    return json.dumps(manifest, indent=2)


def exported_description(p: EmbeddedPipeline, run_id: str) -> str:
    unit = f"runs/kitchen_table/{run_id}/export/"
    committed = json.loads(p.ports.blobs.read_bytes(unit + "export_manifest.json"))
    out = json.loads(
        p.ports.blobs.read_bytes(unit + committed["attempt"]["path"] + "scene_manifest.json")
    )
    return str(out["objects"][0]["description"])


def test_a_manifest_changed_after_the_drop_is_refused_and_dropping_again_exports_it(
    tmp_path: Path,
) -> None:
    p = pipeline(tmp_path / "out")
    scene = kitchen(tmp_path / "a")
    first = p.drop_scene(scene)
    stamped = p.ports.blobs.stat("scenes/kitchen_table/scene.usda")
    assert stamped is not None and stamped.metadata[DROP_METADATA].startswith("v1:")
    # the manifest replaced alone, before export ran: a mixed drop
    manifest_key = "scenes/kitchen_table/scene_manifest.json"
    p.ports.blobs.write_bytes(manifest_key, described(scene.parent, "swapped").encode())
    p.drain(first)
    record = p.ports.ledger.get(first.run_id)
    assert record is not None and record.stages["export"].state is StageState.FAILED
    error = record.stages["export"].error
    assert error is not None and error.type == "MixedSceneDrop" and error.permanent
    assert "drop the scene again" in error.message
    assert list(p.ports.blobs.list(f"runs/kitchen_table/{first.run_id}/")) == []
    [(stage, verdict)] = first.deliveries
    assert stage == "export" and verdict.outcome is Outcome.DEAD_LETTER

    # dropped again with the new manifest: a new generation, a new run, exported as dropped
    again = p.drain(p.drop_scene(kitchen(tmp_path / "b", "swapped")))
    assert again.run_id != first.run_id
    assert exported_description(p, again.run_id) == "swapped"


def test_a_manifest_uploaded_alone_starts_no_run_and_leaves_the_exported_run_as_it_was(
    tmp_path: Path,
) -> None:
    p = pipeline(tmp_path / "out")
    scene = kitchen(tmp_path / "a")
    run = p.drain(p.drop_scene(scene))
    before = exported_description(p, run.run_id)
    manifest_key = "scenes/kitchen_table/scene_manifest.json"
    p.ports.blobs.write_bytes(manifest_key, described(scene.parent, "later").encode())
    info = p.ports.blobs.stat(manifest_key)
    assert info is not None
    p.bus.publish(p._notification(manifest_key, info.generation))  # the bucket announces it
    p.drain(run)
    assert [v.outcome for _, v in run.deliveries] == [Outcome.ACK, Outcome.ACK]
    assert [r.run_id for r in p.ports.ledger.list()] == [run.run_id]
    assert exported_description(p, run.run_id) == before != "later"
    # the scene generation now in the bucket no longer matches what lies beside it
    current = p.ports.blobs.stat("scenes/kitchen_table/scene.usda")
    assert current is not None
    with pytest.raises(MixedSceneDrop):
        dropped_companions(p.ports.blobs, "kitchen_table", current)


def test_an_unstamped_scene_is_refused_when_something_beside_it_is_newer(tmp_path: Path) -> None:
    p = pipeline(tmp_path / "out")
    blobs = p.ports.blobs
    blobs.write_bytes("scenes/k/scene_manifest.json", b"{}")
    scene = blobs.write_bytes("scenes/k/scene.usda", SCENE.encode())  # by hand: no stamp
    assert [c.key for c, _ in dropped_companions(blobs, "k", scene)] == [
        "scenes/k/scene_manifest.json"
    ]
    blobs.write_bytes("scenes/k/assets/cup.obj", b"v 0 0 0\n")
    with pytest.raises(MixedSceneDrop, match="newer than it") as caught:
        dropped_companions(blobs, "k", scene)
    assert caught.value.context["newer"] == "scenes/k/assets/cup.obj"


def companions_read_back(blobs: BlobStore, scene_id: str, tmp_path: Path) -> dict[str, bytes]:
    """What export would read: each companion, checked against the checksum it was listed with."""
    scene = blobs.stat(f"scenes/{scene_id}/scene.usda")
    assert scene is not None
    out: dict[str, bytes] = {}
    for info, digest in dropped_companions(blobs, scene_id, scene):
        target = tmp_path / info.key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blobs.read_bytes(info.key))
        assert file_digest(info, target) == digest
        out[info.key] = target.read_bytes()
    return out


@pytest.mark.emulators
def test_bp_drop_stamps_the_scene_and_a_mixed_drop_is_refused_on_the_storage_emulator(
    storage_client: storage.Client, gcs_bucket: str, tmp_path: Path
) -> None:
    folder = tmp_path / "cup"
    (folder / "assets").mkdir(parents=True)
    (folder / "scene.usda").write_text(SCENE)
    (folder / "scene_manifest.json").write_text('{"objects": []}')
    (folder / "assets" / "cup.obj").write_text("v 0 0 0\n")
    first = upload_drop(storage_client, gcs_bucket, plan_drop(folder))
    blobs = GcsBlobStore(storage_client, gcs_bucket)
    read = companions_read_back(blobs, "cup", tmp_path / "r1")  # md5s from the server
    assert read["scenes/cup/scene_manifest.json"] == b'{"objects": []}'

    # a changed manifest uploaded alone: the scene's generation no longer matches it
    bucket = storage_client.bucket(gcs_bucket)
    bucket.blob("scenes/cup/scene_manifest.json").upload_from_string(b'{"objects": [1]}')
    scene = blobs.stat("scenes/cup/scene.usda")
    assert scene is not None and scene.generation == first.generation
    with pytest.raises(MixedSceneDrop, match="changed after it was dropped"):
        dropped_companions(blobs, "cup", scene)

    # `bp drop` again with the folder's manifest: the scene is stamped anew, a new generation
    (folder / "scene_manifest.json").write_text('{"objects": [2]}')
    second = upload_drop(storage_client, gcs_bucket, plan_drop(folder))
    assert second.generation > first.generation and second.uploaded[-1] == second.key
    read = companions_read_back(blobs, "cup", tmp_path / "r2")
    assert read["scenes/cup/scene_manifest.json"] == b'{"objects": [2]}'
    # nothing changed: nothing uploaded, the stamp still holds
    assert upload_drop(storage_client, gcs_bucket, plan_drop(folder)).uploaded == []

    # by hand, without the stamp: an asset newer than the scene is refused
    bucket.blob("scenes/cup/assets/cup.obj").upload_from_string(b"v 1 1 1\n")
    bucket.blob("scenes/cup/scene.usda").upload_from_string(SCENE.encode())
    bucket.blob("scenes/cup/assets/cup.obj").upload_from_string(b"v 2 2 2\n")
    hand = blobs.stat("scenes/cup/scene.usda")
    assert hand is not None and DROP_METADATA not in hand.metadata
    with pytest.raises(MixedSceneDrop, match="newer than it"):
        dropped_companions(blobs, "cup", hand)
