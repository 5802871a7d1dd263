"""An upload to the bucket reaches the `scene-uploads` topic as a GCS JSON_API_V1 notification."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from bp_common.contracts import decode
from bp_common.contracts.events import SceneUpload
from bp_ops.emulators import SCENE_UPLOADS_TOPIC, EmulatorStack
from google.cloud import pubsub_v1, storage

pytestmark = pytest.mark.emulators


def pull_for_object(
    subscriber: pubsub_v1.SubscriberClient, subscription: str, bucket: str, name: str,
    timeout: float = 30.0,
) -> pubsub_v1.types.PubsubMessage:
    """Pull until the notification for bucket/name arrives (other tests upload too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = subscriber.pull(
            request={"subscription": subscription, "max_messages": 50}, timeout=5.0
        )
        if response.received_messages:
            subscriber.acknowledge(request={
                "subscription": subscription,
                "ack_ids": [m.ack_id for m in response.received_messages],
            })
        for received in response.received_messages:
            attrs = received.message.attributes
            if attrs.get("bucketId") == bucket and attrs.get("objectId") == name:
                return received.message
    raise AssertionError(f"no notification for gs://{bucket}/{name} within {timeout} s")


def test_an_uploaded_scene_produces_a_scene_uploads_message(
    emulators: EmulatorStack, storage_client: storage.Client, gcs_bucket: str
) -> None:
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(emulators.project, f"sub-{uuid.uuid4().hex[:12]}")
    topic = f"projects/{emulators.project}/topics/{SCENE_UPLOADS_TOPIC}"
    subscriber.create_subscription(request={"name": subscription, "topic": topic})
    try:
        blob = storage_client.bucket(gcs_bucket).blob("scenes/x/scene.usda")
        blob.upload_from_string(b"#usda 1.0\n(\n)\n", content_type="text/plain")

        message = pull_for_object(subscriber, subscription, gcs_bucket, "scenes/x/scene.usda")
    finally:
        subscriber.delete_subscription(request={"subscription": subscription})
        subscriber.close()

    attrs = dict(message.attributes)
    assert attrs["eventType"] == "OBJECT_FINALIZE"
    assert attrs["payloadFormat"] == "JSON_API_V1"
    assert attrs["bucketId"] == gcs_bucket
    assert attrs["objectId"] == "scenes/x/scene.usda"
    assert attrs["objectGeneration"] == str(blob.generation)
    resource = json.loads(message.data)
    assert (resource["name"], resource["bucket"]) == ("scenes/x/scene.usda", gcs_bucket)
    assert int(resource["size"]) == len(b"#usda 1.0\n(\n)\n")

    event = decode(SCENE_UPLOADS_TOPIC, message.data, attrs)
    assert isinstance(event, SceneUpload)
    assert event.is_finalize
    assert event.object.generation == str(blob.generation)
    assert event.attributes.object_id == "scenes/x/scene.usda"
