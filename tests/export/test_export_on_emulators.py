"""The export service on the emulators: a scene uploaded with google-cloud-storage comes out
as `scenes-exported`, with outputs in the bucket that match their manifest."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bp_common.blobstore.gcs import GcsBlobStore, make_storage_client
from bp_common.contracts import SceneExported, decode
from bp_ops.stack import BUCKET, LocalStack
from google.cloud import pubsub_v1

pytestmark = pytest.mark.emulators
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kitchen_table"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    with LocalStack(tmp_path_factory.mktemp("export-stack"), {"export": "export"}) as stack:
        yield stack
    os.environ.clear()
    os.environ.update(saved)


def test_uploaded_scene_is_exported_and_announced(stack: LocalStack) -> None:
    subscriber = pubsub_v1.SubscriberClient()
    watch = subscriber.subscription_path(stack.project, "test-watch-exported")
    subscriber.create_subscription(
        request={
            "name": watch,
            "topic": pubsub_v1.PublisherClient.topic_path(stack.project, "scenes-exported"),
        }
    )
    bucket = make_storage_client(stack.project).bucket(BUCKET)
    bucket.blob("scenes/kitchen_table/scene_manifest.json").upload_from_filename(
        EXAMPLE / "scene_manifest.json"
    )
    bucket.blob("scenes/kitchen_table/scene.usda").upload_from_filename(EXAMPLE / "scene.usda")

    received: list[Any] = []
    deadline = time.monotonic() + 90
    while not received and time.monotonic() < deadline:
        response = subscriber.pull(request={"subscription": watch, "max_messages": 5}, timeout=30)
        received += response.received_messages
    assert len(received) == 1, "expected exactly one scenes-exported for one scene upload"
    message = received[0].message
    event = decode("scenes-exported", message.data, dict(message.attributes))
    assert isinstance(event, SceneExported) and event.scene_id == "kitchen_table"
    assert message.attributes["traceparent"].startswith("00-")

    blobs = GcsBlobStore(make_storage_client(stack.project), BUCKET)
    manifest = json.loads(blobs.read_bytes(event.manifest))
    assert hashlib.sha256(blobs.read_bytes(event.manifest)).hexdigest() == event.manifest_sha256
    for name, entry in manifest["files"].items():
        assert (
            hashlib.sha256(blobs.read_bytes(event.export_prefix + name)).hexdigest()
            == entry["sha256"]
        )
    assert manifest["source"]["object"] == "scenes/kitchen_table/scene.usda"
    tasks = json.loads(blobs.read_bytes(event.export_prefix + "task_config.json"))
    kept = {task for robot in tasks["robots"] for task in robot["tasks"]}
    assert len(kept) == event.summary.tasks > 0
