"""Stalled runs driven on: a run whose next stage's message went missing gets that stage's input
published again, and completes; runs that move, hold a lease or have ended are left alone."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from bp_common.blobstore import BlobInfo
from bp_common.config import Settings
from bp_common.contracts.envelope import decode
from bp_common.contracts.events import SceneUpload
from bp_common.ledger.store import utcnow
from bp_common.runtime.stage import RunRef, Stage
from bp_common.runtime.uploads import claimed_run, resolve_scene_upload
from bp_ops.embedded import LOCAL_BUCKET, EmbeddedPipeline
from bp_ops.redrive import REDRIVE_ATTRIBUTE, redrive, stalled

from tests.backbone.probe_stage import FOLLOW, PROBE, PUBLISH, READY

LATER = timedelta(hours=1)


def pipeline(root: Path) -> EmbeddedPipeline:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    stages: dict[str, Stage[Any, Any]] = {
        "export": PROBE,
        "submit": FOLLOW,
        "import": READY,
        "upload": PUBLISH,
    }
    return EmbeddedPipeline(root, settings, stages)


def scene(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True)
    (folder / "scene.usda").write_text("ok")
    return folder


def scene_file(p: EmbeddedPipeline) -> BlobInfo:
    info = p.ports.blobs.stat("scenes/pantry/scene.usda")
    assert info is not None
    return info


def lose_the_next_message(p: EmbeddedPipeline, stage: str) -> None:
    message = p.bus.receive([stage])
    assert message is not None
    p.bus.ack(message)  # gone, as a push the emulator never redelivers


def test_a_run_whose_message_went_missing_is_driven_on_and_completes(tmp_path: Path) -> None:
    p = pipeline(tmp_path / "out")
    run = p.drop_scene(scene(tmp_path, "kitchen"))
    delivered = p.deliverers["export"].deliver(p.bus.receive(["export"]))  # type: ignore[arg-type]
    assert delivered.emitted is not None
    lose_the_next_message(p, "submit")
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and record.state == "running"

    assert stalled(p.ports.ledger, utcnow(), stalled_after_s=60) == []  # not idle long enough
    [found] = redrive(p.ports, LOCAL_BUCKET, utcnow() + LATER, stalled_after_s=60)
    assert (found.run_id, found.stage) == (run.run_id, "submit")
    assert found.envelopes[0].topic == "scenes-exported"
    assert found.envelopes[0].attributes[REDRIVE_ATTRIBUTE] == "1"
    p.drain(run)
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and record.state == "succeeded"
    assert redrive(p.ports, LOCAL_BUCKET, utcnow() + LATER, stalled_after_s=60) == []


def test_a_lost_scene_notification_is_rebuilt_from_the_runs_source(tmp_path: Path) -> None:
    p = pipeline(tmp_path / "out")
    run = p.drop_scene(scene(tmp_path, "garage"))
    message = p.bus.receive(["export"])
    assert message is not None
    # export took its lease, recorded its start, and died; its message never came back
    p.ports.ledger.stage_started(
        run.run_id,
        "garage",
        "export",
        1,
        ("local", message.attributes["objectId"], message.attributes["objectGeneration"]),
    )
    p.bus.ack(message)
    [found] = stalled(p.ports.ledger, utcnow() + LATER, stalled_after_s=60)
    [notification] = found.envelopes
    assert found.stage == "export" and notification.topic == "scene-uploads"
    assert notification.attributes["objectGeneration"] == message.attributes["objectGeneration"]
    p.bus.publish(notification)
    p.drain(run)
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and record.state == "succeeded"


def test_a_scene_whose_notification_never_started_a_run_is_announced_again(
    tmp_path: Path,
) -> None:
    p = pipeline(tmp_path / "out")
    run = p.drop_scene(scene(tmp_path, "cellar"))
    lose_the_next_message(p, "export")  # the notification itself is gone
    assert p.ports.ledger.get(run.run_id) is None
    assert redrive(p.ports, LOCAL_BUCKET, utcnow(), stalled_after_s=60) == []  # too fresh
    [found] = redrive(p.ports, LOCAL_BUCKET, utcnow() + LATER, stalled_after_s=60)
    assert (found.run_id, found.stage) == (run.run_id, "export")
    p.drain(run)
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and record.state == "succeeded"
    # a scene whose content a run already has is no stall: it maps onto that run
    again = p.drop_scene(scene(tmp_path / "again", "cellar"))
    assert again.run_id == run.run_id
    assert redrive(p.ports, LOCAL_BUCKET, utcnow() + LATER, stalled_after_s=60) == []


def test_a_scene_whose_delivery_died_after_claiming_its_content_is_announced_again(
    tmp_path: Path,
) -> None:
    p = pipeline(tmp_path / "out")
    run = p.drop_scene(scene(tmp_path, "pantry"))
    message = p.bus.receive(["export"])
    assert message is not None
    deliverer = p.deliverers["export"]
    event = decode(message.topic, message.data, message.attributes)
    ref = deliverer.stage.identify(event)
    assert isinstance(ref, RunRef)
    assert isinstance(event, SceneUpload)
    resolve_scene_upload(p.ports, event, ref)  # export's resolve claims the content, then dies
    assert claimed_run(p.ports.ledger, p.ports.blobs, "pantry", scene_file(p)) == run.run_id
    p.bus.ack(message)  # and its message is gone with the emulator
    assert p.ports.ledger.get(run.run_id) is None

    [found] = redrive(p.ports, LOCAL_BUCKET, utcnow() + LATER, stalled_after_s=60)
    assert (found.run_id, found.stage) == (run.run_id, "export")
    p.drain(run)
    record = p.ports.ledger.get(run.run_id)
    assert record is not None and record.state == "succeeded"


def test_a_stage_with_a_live_holder_is_not_stalled(tmp_path: Path) -> None:
    p = pipeline(tmp_path / "out")
    run = p.drop_scene(scene(tmp_path, "attic"))
    p.deliverers["export"].deliver(p.bus.receive(["export"]))  # type: ignore[arg-type]
    lose_the_next_message(p, "submit")
    p.ports.ledger.leases.acquire(run.run_id, "attic", "submit", "somebody", 3 * 3600)
    assert stalled(p.ports.ledger, utcnow() + LATER, stalled_after_s=60) == []
