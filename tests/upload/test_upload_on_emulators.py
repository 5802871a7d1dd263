"""The upload on fake-gcs-server through firebase-admin: verification, resume, outages, cleanup.

Sources are read from a pipeline bucket on the session's fake-gcs-server through the platform's
GcsBlobStore; datasets go to a Firebase bucket, on the same server or on a test's own one that
the test stops and starts.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import io
import json
import logging
import threading
import time
from pathlib import Path

import google_crc32c
import pytest
from bp_common.blobstore.gcs import GcsBlobStore, ensure_bucket, make_storage_client
from bp_ops.emulators import EmulatorStack
from bp_upload.errors import (
    CleanupFailed,
    DatasetRejected,
    DatasetUploadFailed,
    DeadlineExceeded,
    SourceCorrupt,
)
from bp_upload.options import UploadOptions
from bp_upload.publication.layout import DatasetLocation
from bp_upload.publication.manifest import QualitySummary
from bp_upload.publication.publisher import DatasetPublisher, DatasetSource, PublishRequest
from bp_upload.publication.retry_policy import Backoff
from bp_upload.publication.transfer import FileOutcome
from google.cloud import storage

from tests.conftest import unique_name
from tests.upload.conftest import firebase_for
from tests.upload.datasets import Dataset, make_dataset, put_dataset
from tests.upload.fake_gcs import BlackHole, OwnFakeGcs

pytestmark = pytest.mark.emulators
RUN = "run-" + "e" * 20
QUALITY = QualitySummary("v2.1", 6, 180, 0.9)


def b64_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def b64_crc32c(data: bytes) -> str:
    crc32c: int = google_crc32c.value(data)
    return base64.b64encode(crc32c.to_bytes(4, "big")).decode()


def staged(
    storage_client: storage.Client, tmp_path: Path, scene: str, robot: str, run: str, **kw: int
) -> tuple[DatasetSource, Dataset]:
    """A dataset in a fresh pipeline bucket under runs/{scene}/{run}/lerobot/{robot}/."""
    bucket = unique_name("bp-pipeline")
    ensure_bucket(storage_client, bucket)
    store = GcsBlobStore(storage_client, bucket)
    prefix = f"runs/{scene}/{run}/lerobot/{robot}/"
    dataset = make_dataset(tmp_path / "made" / scene / run / robot, **kw)
    put_dataset(store, prefix, dataset)
    return DatasetSource(store, prefix, prefix + "import_manifest.json"), dataset


def objects(client: storage.Client, bucket: str, prefix: str) -> dict[str, storage.Blob]:
    return {b.name: b for b in client.list_blobs(bucket, prefix=prefix)}


def firebase_bucket(client: storage.Client) -> str:
    name = unique_name("bp-firebase")
    ensure_bucket(client, name)
    return name


def test_every_object_is_verified_by_the_servers_md5_and_crc32c_and_published_last(
    emulators: EmulatorStack, storage_client: storage.Client, tmp_path: Path
) -> None:
    source, dataset = staged(
        storage_client, tmp_path, "kitchen", "franka_panda", RUN, episode_bytes=512 * 1024
    )
    bucket = firebase_bucket(storage_client)
    # 256 KiB chunks: files of exactly 2 chunks and of 1 chunk plus a few bytes go up as
    # resumable uploads, a file of exactly one chunk and the small ones in one request.
    options = UploadOptions(chunk_size=256 * 1024, read_back=True, concurrency=4)
    dest = firebase_for(emulators.project, bucket, tmp_path, options)
    publication = DatasetPublisher(dest, options).publish(
        PublishRequest(DatasetLocation("kitchen", "franka_panda", RUN), source, QUALITY)
    )

    loc = publication.location
    stored = objects(storage_client, bucket, "datasets/")
    files = {k[len(loc.prefix) :]: b for k, b in stored.items() if k.startswith(loc.prefix)}
    manifest_blob = files.pop("dataset_manifest.json")
    assert set(files) == set(dataset.files)
    for relative, blob in files.items():
        data = dataset.files[relative]
        assert blob.md5_hash == b64_md5(data) and blob.crc32c == b64_crc32c(data)
        assert blob.metadata["sha256"] == hashlib.sha256(data).hexdigest()
        assert blob.download_as_bytes() == data
    assert publication.result.verified == publication.result.uploaded == len(dataset.files)
    manifest = json.loads(manifest_blob.download_as_bytes())
    assert manifest["files"]["meta/info.json"]["md5"] == b64_md5(dataset.files["meta/info.json"])
    assert manifest["storage_bucket"] == bucket
    latest = stored[loc.latest_key]
    assert json.loads(latest.download_as_bytes())["run_id"] == RUN
    # Written last: the manifest after every file, LATEST after the manifest.
    assert manifest_blob.generation > max(b.generation for b in files.values())
    assert latest.generation > manifest_blob.generation
    assert latest.updated >= manifest_blob.updated >= max(b.updated for b in files.values())


def test_rerunning_a_published_run_is_a_no_op(
    emulators: EmulatorStack, storage_client: storage.Client, tmp_path: Path
) -> None:
    source, dataset = staged(storage_client, tmp_path, "kitchen", "ur5e", RUN)
    bucket = firebase_bucket(storage_client)
    publisher = DatasetPublisher(firebase_for(emulators.project, bucket, tmp_path), UploadOptions())
    request = PublishRequest(DatasetLocation("kitchen", "ur5e", RUN), source, QUALITY)
    publisher.publish(request)
    before = {k: b.generation for k, b in objects(storage_client, bucket, "datasets/").items()}
    again = publisher.publish(request).result
    assert again.already_published and again.uploaded == 0 and again.skipped == len(dataset.files)
    assert {
        k: b.generation for k, b in objects(storage_client, bucket, "datasets/").items()
    } == before


def test_an_object_overwritten_after_its_upload_is_caught_and_sent_again(
    emulators: EmulatorStack, storage_client: storage.Client, tmp_path: Path
) -> None:
    source, dataset = staged(storage_client, tmp_path, "kitchen", "fetch", RUN)
    bucket = firebase_bucket(storage_client)
    tampered: list[str] = []

    def tamper_with_the_first(outcome: FileOutcome) -> None:
        if not tampered and outcome.digests.size:  # overwritten, metadata kept, before commit
            blob = storage_client.bucket(bucket).blob(outcome.key)
            blob.metadata = {"sha256": hashlib.sha256(dataset.files[outcome.path]).hexdigest()}
            blob.upload_from_string(b"X" * outcome.digests.size)
            tampered.append(outcome.path)

    dest = firebase_for(emulators.project, bucket, tmp_path)
    publication = DatasetPublisher(dest, UploadOptions(), progress=tamper_with_the_first).publish(
        PublishRequest(DatasetLocation("kitchen", "fetch", RUN), source, QUALITY)
    )
    assert publication.result.repaired == 1
    blob = storage_client.bucket(bucket).blob(publication.location.file_key(tampered[0]))
    assert blob.download_as_bytes() == dataset.files[tampered[0]]


def test_a_corrupt_source_is_refused_and_only_its_own_run_is_cleaned(
    emulators: EmulatorStack, storage_client: storage.Client, tmp_path: Path
) -> None:
    bucket = firebase_bucket(storage_client)
    publisher = DatasetPublisher(firebase_for(emulators.project, bucket, tmp_path), UploadOptions())
    neighbours = [
        ("scene_10", "run-1"),  # scene_1's prefix is a string prefix of scene_10's
        ("scene_1", "run-10"),  # and run-1's of run-10's
    ]
    for scene, run in neighbours:
        src, _ = staged(storage_client, tmp_path / scene / run, scene, "franka_panda", run)
        publisher.publish(PublishRequest(DatasetLocation(scene, "franka_panda", run), src, QUALITY))
    before = {k: b.generation for k, b in objects(storage_client, bucket, "datasets/").items()}

    source, dataset = staged(storage_client, tmp_path / "bad", "scene_1", "franka_panda", "run-1")
    victim = "videos/chunk-000/observation.images.wrist/episode_000004.mp4"
    flipped = bytearray(dataset.files[victim])
    flipped[-1] ^= 0x80
    source.store.write_bytes(source.prefix + victim, bytes(flipped))

    location = DatasetLocation("scene_1", "franka_panda", "run-1")
    with pytest.raises(DatasetRejected) as caught:
        publisher.publish(PublishRequest(location, source, QUALITY))
    assert isinstance(caught.value.cause, SourceCorrupt) and caught.value.context["file"] == victim
    assert objects(storage_client, bucket, location.prefix) == {}
    assert {
        k: b.generation for k, b in objects(storage_client, bucket, "datasets/").items()
    } == before


def test_the_bucket_unavailable_then_back_still_completes(
    emulators: EmulatorStack, storage_client: storage.Client, own_gcs: OwnFakeGcs, tmp_path: Path
) -> None:
    source, dataset = staged(storage_client, tmp_path, "kitchen", "franka_panda", RUN, episodes=10)
    client = make_storage_client(emulators.project, emulator_url=own_gcs.url)
    bucket = firebase_bucket(client)
    restart = threading.Timer(1.5, own_gcs.start)

    def outage_after_the_first_file(outcome: FileOutcome) -> None:
        if not restart.is_alive() and not restart.finished.is_set():
            own_gcs.stop()  # down for 1.5 s, then back on the same port with the same data
            restart.start()

    options = UploadOptions(
        concurrency=2, backoff=Backoff(initial_s=0.2, cap_s=1.0), max_attempts=30
    )
    dest = firebase_for(emulators.project, bucket, tmp_path, options)
    try:
        publication = DatasetPublisher(dest, options, progress=outage_after_the_first_file).publish(
            PublishRequest(DatasetLocation("kitchen", "franka_panda", RUN), source, QUALITY)
        )
    finally:
        if restart.is_alive():
            restart.join()
    assert restart.finished.is_set(), "the outage never happened"
    assert publication.result.retries > 0
    assert publication.result.verified == len(dataset.files)
    stored = objects(client, bucket, publication.location.prefix)
    assert {k[len(publication.location.prefix) :] for k in stored} == {
        *dataset.files,
        "dataset_manifest.json",
    }


def test_a_hanging_server_cannot_hold_the_upload_past_its_deadline_and_the_rerun_resumes(
    emulators: EmulatorStack, storage_client: storage.Client, own_gcs: OwnFakeGcs, tmp_path: Path
) -> None:
    source, dataset = staged(storage_client, tmp_path, "kitchen", "ur5e", RUN, episodes=10)
    client = make_storage_client(emulators.project, emulator_url=own_gcs.url)
    bucket = firebase_bucket(client)
    hole: list[BlackHole] = []
    verified: list[str] = []

    def hang_after_three_files(outcome: FileOutcome) -> None:
        verified.append(outcome.path)
        if len(verified) == 3:
            own_gcs.stop()  # the server goes away and something that never answers takes its port
            hole.append(BlackHole(own_gcs.port))

    options = UploadOptions(
        concurrency=2, deadline_s=4.0, file_timeout_s=3.0, request_timeout_s=2.0, stop_grace_s=1.0
    )
    dest = firebase_for(emulators.project, bucket, tmp_path, options)
    request = PublishRequest(DatasetLocation("kitchen", "ur5e", RUN), source, QUALITY)
    started = time.monotonic()
    try:
        with pytest.raises(DatasetUploadFailed) as caught:
            DatasetPublisher(dest, options, progress=hang_after_three_files).publish(request)
        elapsed = time.monotonic() - started
    finally:
        for h in hole:
            h.close()
    assert elapsed < 4.0 + options.stop_grace_s + 1.0, elapsed  # deadline + grace + slack
    assert isinstance(caught.value.cause, DeadlineExceeded)
    partial = caught.value.result
    assert 3 <= partial.verified < len(dataset.files)
    # Files caught mid-request ran out of their own timeout; none failed for good.
    assert all(f.error_type == "DeadlineExceeded" and not f.permanent for f in partial.failures)

    own_gcs.start()
    resumed = DatasetPublisher(dest, UploadOptions()).publish(request).result
    assert resumed.skipped >= 3 and resumed.uploaded >= 1
    assert resumed.skipped + resumed.uploaded == len(dataset.files)


def test_a_failed_cleanup_is_raised_and_logged_as_an_error(
    emulators: EmulatorStack,
    storage_client: storage.Client,
    own_gcs: OwnFakeGcs,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = make_storage_client(emulators.project, emulator_url=own_gcs.url)
    bucket = firebase_bucket(client)
    options = UploadOptions(cleanup_timeout_s=2.0, request_timeout_s=1.0)
    publisher = DatasetPublisher(
        firebase_for(emulators.project, bucket, tmp_path, options), options
    )
    location = DatasetLocation("kitchen", "ur5e", RUN)
    client.bucket(bucket).blob(location.file_key("partial.bin")).upload_from_string(b"x")
    own_gcs.stop()
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="bp.upload"), pytest.raises(CleanupFailed) as caught:
        publisher.cleanup(location, cause=SourceCorrupt("bad source", file="x"))
    assert time.monotonic() - started < 2.0 + 2.5
    assert "SourceCorrupt" in caught.value.message
    assert any(
        "cleanup of" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records
    )


class _FailingSource(io.RawIOBase):
    """A source that breaks after `good` bytes, or simply ends there (`fail=False`)."""

    def __init__(self, good: int, *, fail: bool) -> None:
        self.left = good
        self.fail = fail

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.left <= 0:
            if self.fail:
                raise OSError("the source disk went away")
            return b""
        n = self.left if size < 0 else min(size, self.left)
        self.left -= n
        return b"z" * n


@pytest.mark.parametrize("fail", [True, False])
def test_a_resumable_upload_broken_midway_never_leaves_a_short_object(
    emulators: EmulatorStack, storage_client: storage.Client, tmp_path: Path, fail: bool
) -> None:
    bucket = firebase_bucket(storage_client)
    dest = firebase_for(emulators.project, bucket, tmp_path, UploadOptions(chunk_size=256 * 1024))
    with pytest.raises(OSError if fail else EOFError):
        dest.put(
            "datasets/k/r/run-1/big.bin",
            _FailingSource(600_000, fail=fail),  # type: ignore[arg-type]
            1_000_000,
            content_type="application/octet-stream",
            metadata={},
            timeout=5.0,
        )
    gc.collect()  # a dropped BlobWriter would finalize on collection if it were not abandoned
    assert objects(storage_client, bucket, "datasets/") == {}
