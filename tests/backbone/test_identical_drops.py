"""Identical re-drops do no work: a scene uploaded again with the same content maps onto the run
that content already has; a new run only when the scene object asks for one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bp_common.config import Settings
from bp_common.ids import run_id_for
from bp_common.ledger import StageState
from bp_common.runtime.delivery import Outcome
from bp_common.runtime.stage import Stage
from bp_common.runtime.uploads import NEW_RUN_METADATA, resolve_scene_upload
from bp_ops.embedded import LOCAL_BUCKET, EmbeddedPipeline, EmbeddedRun

from tests.backbone.probe_stage import PROBE

# The probe export, resolving uploads onto runs as the export stage does.
EXPORT = Stage(
    "export",
    PROBE.handle,
    PROBE.identify,
    resolve=lambda ports, settings, upload, ref: resolve_scene_upload(ports, upload, ref),
)
KEY = "scenes/kitchen/scene.usda"


def pipeline(root: Path) -> EmbeddedPipeline:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return EmbeddedPipeline(root, settings, {"export": EXPORT})


def folder(tmp_path: Path, body: str, manifest: dict[str, Any] | None = None) -> Path:
    scene = tmp_path / "kitchen"
    scene.mkdir(parents=True, exist_ok=True)
    (scene / "scene.usda").write_text(body)
    if manifest is not None:
        (scene / "scene_manifest.json").write_text(json.dumps(manifest))
    return scene


def upload(p: EmbeddedPipeline, body: str, metadata: dict[str, str] | None = None) -> str:
    """A user's own upload of the scene file (a new generation), announced by the bucket."""
    p.ports.blobs.write_bytes(KEY, body.encode(), metadata=metadata)
    info = p.ports.blobs.stat(KEY)
    assert info is not None
    p.bus.publish(p._notification(KEY, info.generation))
    return run_id_for(LOCAL_BUCKET, KEY, info.generation)


def test_a_scene_dropped_back_to_earlier_content_maps_onto_that_contents_run(
    tmp_path: Path,
) -> None:
    p = pipeline(tmp_path / "out")
    first = p.drain(p.drop_scene(folder(tmp_path / "a", "ok", {"robots": ["ur5e"]})))
    changed = p.drain(p.drop_scene(folder(tmp_path / "b", "ok", {"robots": ["fetch"]})))
    assert changed.run_id != first.run_id  # the manifest is part of the content
    back = p.drain(p.drop_scene(folder(tmp_path / "c", "ok", {"robots": ["ur5e"]})))
    assert back.run_id == first.run_id and back.deliveries == []
    assert len(p.ports.ledger.list()) == 2


def test_an_upload_of_identical_content_acks_as_a_duplicate_of_the_existing_run(
    tmp_path: Path,
) -> None:
    p = pipeline(tmp_path / "out")
    first = p.drain(p.drop_scene(folder(tmp_path, "ok")))
    own = upload(p, "ok")  # same bytes, a new generation: gcloud storage cp, say
    again = p.drain(EmbeddedRun(first.scene_id, own))
    assert [(s, v.outcome, v.duplicate) for s, v in again.deliveries] == [
        ("export", Outcome.ACK, True)
    ]
    assert p.ports.ledger.get(own) is None  # no run for that generation
    assert len(p.bus.published("scenes-exported")) == 1


def test_the_new_run_metadata_key_starts_a_run_of_its_own(tmp_path: Path) -> None:
    p = pipeline(tmp_path / "out")
    first = p.drain(p.drop_scene(folder(tmp_path, "ok")))
    own = upload(p, "ok", {NEW_RUN_METADATA: "true"})
    p.drain(EmbeddedRun(first.scene_id, own))
    record = p.ports.ledger.get(own)
    assert own != first.run_id and record is not None
    assert record.stages["export"].state is StageState.SUCCEEDED
    assert len(p.bus.published("scenes-exported")) == 2
