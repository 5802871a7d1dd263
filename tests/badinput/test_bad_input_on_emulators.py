"""A handful of the bad-input corpus end to end on the local stack: each case uploaded with
google-cloud-storage into fake-gcs-server (the scene file last, as `bp drop` does), whose own
notification reaches the four services through the Pub/Sub emulator; the forged notifications
are published on `scene-uploads` beside it. Each ends with its typed error in the Firestore
ledger and on the export dead-letter subscription, nothing goes downstream, the services stay
up, and a good scene dropped afterwards is published. The rest of the corpus runs through the
same delivery code on the embedded pipeline (test_bad_input_embedded.py)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bp_common.blobstore.gcs import make_storage_client
from bp_common.bus.base import ATTR_ERROR, ATTR_ERROR_TYPE
from bp_common.bus.pubsub import PubSubDeadLetterQueue
from bp_common.contracts.events import SceneUpload
from bp_common.ids import run_id_for
from bp_common.ledger import RunLedger, StageState
from bp_common.ledger.firestore import FirestoreLedgerStore, make_firestore_client
from bp_ops.stack import BUCKET, FIREBASE_BUCKET, LocalStack
from google.cloud import pubsub_v1

from tests.badinput.corpus import SIZE_CAP, Case, build_corpus
from tests.badinput.drops import notification
from tests.concurrency.harness import ROBOT, TINY_ENV, drop_scenes, wait_for_runs, write_tiny_scene

pytestmark = [pytest.mark.emulators, pytest.mark.timeout(1200)]
STAGES = ["export", "submit", "collect", "import", "upload"]
DROPPED = (
    "nan_translate",
    "cyclic_sublayers",
    "reference_escapes_dotdot",
    "garbage_usdc",
    "manifest_not_json",
    "over_size_cap",
)
FORGED = ("forged_other_bucket", "forged_generation_attribute")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    with LocalStack(
        tmp_path_factory.mktemp("badinput-stack"),
        STAGES,
        extra_env={**TINY_ENV, "BP_EXPORT_MAX_SCENE_BYTES": str(SIZE_CAP)},
    ) as stack:
        threading.Thread(target=stack.wait, daemon=True).start()
        yield stack
    os.environ.clear()
    os.environ.update(saved)


def _upload(stack: LocalStack, case: Case) -> str:
    """The case's files into the bucket, the scene file last; the run its notification starts."""
    bucket = make_storage_client(stack.project).bucket(BUCKET)
    folder = f"scenes/{case.scene_id}/"
    for name in sorted(case.files, key=lambda n: n == case.scene_name):
        blob = bucket.blob(folder + name)
        blob.upload_from_string(case.files[name], content_type="application/octet-stream")
    return run_id_for(BUCKET, blob.name, blob.generation)


def _forge(stack: LocalStack, case: Case) -> str:
    """Publish the case's forged notification on `scene-uploads` for a scene nobody uploaded;
    the run id its attributes name."""
    key = f"scenes/{case.scene_id}/{case.scene_name}"
    attributes, resource = notification(BUCKET, key, 1_700_000_000_000_000, 1234)
    assert case.forge is not None
    case.forge(attributes, resource)
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(stack.project, SceneUpload.TOPIC)
    publisher.publish(topic, json.dumps(resource).encode(), **attributes).result(30)
    return run_id_for(
        attributes["bucketId"], attributes["objectId"], attributes["objectGeneration"]
    )


def _dead_letters(project: str, wanted: int, timeout_s: float) -> list[dict[str, str]]:
    queue = PubSubDeadLetterQueue(pubsub_v1.SubscriberClient(), project)
    found: dict[str, dict[str, str]] = {}
    deadline = time.monotonic() + timeout_s
    while len(found) < wanted and time.monotonic() < deadline:
        with queue.claim("export", 100) as letters:
            found.update({letter.id: letter.attributes for letter in letters})
        time.sleep(1)
    return list(found.values())


def test_bad_drops_through_the_bucket_dead_letter_with_typed_errors_and_a_good_one_publishes(
    stack: LocalStack, tmp_path: Path
) -> None:
    corpus = {case.name: case for case in build_corpus(tmp_path / "corpus", emulators=True)}
    ledger = RunLedger(FirestoreLedgerStore(make_firestore_client(stack.project)))
    runs = {name: _upload(stack, corpus[name]) for name in DROPPED}
    forged = {name: _forge(stack, corpus[name]) for name in FORGED}

    states = wait_for_runs(ledger, runs.values(), timeout_s=300)
    assert states == dict.fromkeys(runs.values(), "failed"), states
    for name, run_id in runs.items():
        record = ledger.get(run_id)
        assert record is not None
        export = record.stages["export"]
        assert export.state is StageState.FAILED and export.error is not None
        assert (export.error.type, export.error.permanent) == (corpus[name].expect, True)
        assert export.attempts == 1  # dead-lettered at once, never retried

    letters = _dead_letters(stack.project, len(DROPPED) + len(FORGED), timeout_s=120)
    by_object = {}
    for attributes in letters:
        by_object[attributes["objectId"].split("/")[1]] = attributes
    for name in (*DROPPED, *FORGED):
        letter = by_object[corpus[name].scene_id]
        assert letter[ATTR_ERROR_TYPE] == corpus[name].expect, (name, letter)
        assert letter[ATTR_ERROR]
    # the consistent forgery names a real object in another bucket: its run records the refusal
    other = ledger.get(forged["forged_other_bucket"])
    assert other is not None and other.stages["export"].error is not None
    assert other.stages["export"].error.type == "NotificationMismatch"
    assert ledger.get(forged["forged_generation_attribute"]) is None

    good = drop_scenes(
        make_storage_client(stack.project), BUCKET, write_tiny_scene(tmp_path / "good"), ["good"]
    )
    assert wait_for_runs(ledger, good.values(), timeout_s=600) == dict.fromkeys(
        good.values(), "succeeded"
    )
    datasets = make_storage_client(stack.project).bucket(FIREBASE_BUCKET)
    published = [b.name for b in datasets.list_blobs(prefix="datasets/")]
    assert published and all(name.startswith(f"datasets/good/{ROBOT}/") for name in published)
    assert all(service.poll() is None for service in stack.services.values())
