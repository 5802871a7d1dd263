"""`bp drop` against the session's fake-gcs-server: what lands where, in what order, which run."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from bp_common.cli import app
from bp_common.contracts import decode
from bp_common.contracts.events import SceneUpload
from bp_common.ids import run_id_for
from bp_common.runtime.stage import RunRef
from bp_common.runtime.uploads import scene_upload_ref
from bp_ops.emulators import SCENE_UPLOADS_TOPIC, EmulatorStack
from google.cloud import pubsub_v1, storage
from typer.testing import CliRunner, Result

pytestmark = pytest.mark.emulators

SCENE = '#usda 1.0\n(\n    defaultPrim = "World"\n)\ndef Xform "World" {}\n'


def scene_folder(tmp_path: Path, name: str = "Kitchen Table") -> Path:
    folder = tmp_path / name
    (folder / "assets" / "mesh").mkdir(parents=True)
    (folder / "scene.usda").write_text(SCENE)
    (folder / "scene_manifest.json").write_text(json.dumps({"robots": ["franka_panda"]}))
    (folder / "assets" / "mesh" / "cup.obj").write_text("v 0 0 0\n")
    (folder / "assets" / "cup.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return folder


def run_drop(emulators: EmulatorStack, bucket: str, *args: str) -> Result:
    env = {"PIPELINE_ENV": "local", "BP_BUCKET": bucket, "BP_PROJECT_ID": emulators.project}
    return CliRunner().invoke(app, ["drop", *args], env=env)


def printed(result: Result, label: str) -> str:
    for line in result.output.splitlines():
        if line.startswith(f"{label} "):
            return line.removeprefix(f"{label} ").strip()
    raise AssertionError(f"no '{label}' line in:\n{result.output}")


def finalize_of(
    subscriber: pubsub_v1.SubscriberClient, subscription: str, bucket: str, name: str
) -> SceneUpload:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = subscriber.pull(
            request={"subscription": subscription, "max_messages": 50}, timeout=5.0
        )
        if response.received_messages:
            subscriber.acknowledge(
                request={
                    "subscription": subscription,
                    "ack_ids": [m.ack_id for m in response.received_messages],
                }
            )
        for received in response.received_messages:
            attrs = dict(received.message.attributes)
            if attrs.get("bucketId") == bucket and attrs.get("objectId") == name:
                event = decode(SCENE_UPLOADS_TOPIC, received.message.data, attrs)
                assert isinstance(event, SceneUpload)
                return event
    raise AssertionError(f"no notification for gs://{bucket}/{name}")


def test_drop_uploads_companions_first_and_the_scene_last_and_names_the_run(
    emulators: EmulatorStack, storage_client: storage.Client, gcs_bucket: str, tmp_path: Path
) -> None:
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(emulators.project, f"drop-{uuid.uuid4().hex[:12]}")
    topic = f"projects/{emulators.project}/topics/{SCENE_UPLOADS_TOPIC}"
    subscriber.create_subscription(request={"name": subscription, "topic": topic})
    try:
        result = run_drop(emulators, gcs_bucket, str(scene_folder(tmp_path)))
        assert result.exit_code == 0, result.output
        key = "scenes/kitchen_table/scene.usda"
        event = finalize_of(subscriber, subscription, gcs_bucket, key)
    finally:
        subscriber.delete_subscription(request={"subscription": subscription})
        subscriber.close()

    blobs = {b.name: b for b in storage_client.list_blobs(gcs_bucket)}
    assert sorted(blobs) == [
        "scenes/kitchen_table/assets/cup.png",
        "scenes/kitchen_table/assets/mesh/cup.obj",
        "scenes/kitchen_table/scene.usda",
        "scenes/kitchen_table/scene_manifest.json",
    ]
    scene = blobs[key]
    assert scene.download_as_bytes() == SCENE.encode()
    assert all(
        b.time_created <= scene.time_created and b.generation < scene.generation
        for name, b in blobs.items()
        if name != key
    ), "the scene must be the last object written"

    run_id = run_id_for(gcs_bucket, key, scene.generation)
    assert printed(result, "object") == f"gs://{gcs_bucket}/{key}"
    assert printed(result, "generation") == str(scene.generation)
    assert printed(result, "run") == f"{run_id} (a new run)"
    assert f"bp runs show {run_id}" in result.output
    # The export stage turns this very notification into the same run id.
    ref = scene_upload_ref(event)
    assert isinstance(ref, RunRef) and ref.run_id == run_id


def test_an_identical_drop_uploads_nothing_and_names_the_same_run_unless_asked(
    emulators: EmulatorStack, storage_client: storage.Client, gcs_bucket: str, tmp_path: Path
) -> None:
    folder = scene_folder(tmp_path)
    first = run_drop(emulators, gcs_bucket, str(folder / "scene.usda"), "--scene-id", "kt")
    assert first.exit_code == 0, first.output
    bucket = storage_client.bucket(gcs_bucket)
    before = {b.name: b.generation for b in storage_client.list_blobs(gcs_bucket)}

    second = run_drop(emulators, gcs_bucket, str(folder), "--scene-id", "kt")
    assert second.exit_code == 0, second.output
    assert "0 file(s) uploaded beside the scene, 4 unchanged" in second.output
    assert {b.name: b.generation for b in storage_client.list_blobs(gcs_bucket)} == before
    run = printed(first, "run").split()[0]
    assert printed(second, "run") == f"{run} (already dropped)"

    fresh = run_drop(emulators, gcs_bucket, str(folder), "--scene-id", "kt", "--new-run")
    assert fresh.exit_code == 0, fresh.output
    scene = bucket.get_blob("scenes/kt/scene.usda")
    assert scene is not None and scene.generation != before["scenes/kt/scene.usda"]
    assert scene.metadata["bp-new-run"] == "true"
    assert printed(fresh, "run") == (
        f"{run_id_for(gcs_bucket, 'scenes/kt/scene.usda', scene.generation)} (a new run)"
    )
    assert printed(fresh, "run").split()[0] != run

    (folder / "scene_manifest.json").write_text(json.dumps({"robots": ["ur5e"]}))
    changed = run_drop(emulators, gcs_bucket, str(folder), "--scene-id", "kt")
    assert "1 file(s) uploaded beside the scene" in changed.output
    assert printed(changed, "run").split()[0] not in (run, printed(fresh, "run").split()[0])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scene-id", "Kitchen!"], "scene id must be"),
        (["--scene-id", "../escape"], "scene id must be"),
    ],
)
def test_an_invalid_scene_id_uploads_nothing(
    emulators: EmulatorStack,
    storage_client: storage.Client,
    gcs_bucket: str,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    result = run_drop(emulators, gcs_bucket, str(scene_folder(tmp_path)), *args)
    assert result.exit_code == 2 and message in result.output
    assert list(storage_client.list_blobs(gcs_bucket)) == []


def test_a_path_that_is_not_a_scene_uploads_nothing(
    emulators: EmulatorStack, storage_client: storage.Client, gcs_bucket: str, tmp_path: Path
) -> None:
    folder = scene_folder(tmp_path, "cup")
    (folder / "model.usda").write_text(SCENE)
    wrong_name = run_drop(emulators, gcs_bucket, str(folder / "model.usda"))
    assert wrong_name.exit_code == 2 and "must be named scene.usda" in wrong_name.output
    missing = run_drop(emulators, gcs_bucket, str(tmp_path / "nowhere"))
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert list(storage_client.list_blobs(gcs_bucket)) == []


def test_without_a_local_stack_it_says_how_to_start_one(
    emulators: EmulatorStack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    result = run_drop(emulators, "bp-scenes", str(scene_folder(tmp_path)))
    assert result.exit_code == 2
    assert "no local stack" in result.output and "source bp-out/stack/stack.env" in result.output
