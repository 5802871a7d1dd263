"""Pure rules of the upload: digests in one pass, run prefixes, the import manifest, backoff."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random

import google_crc32c
import pytest
from bp_common.errors import InvalidName
from bp_upload.destinations.checksums import HashingReader, digests_of, hash_stream
from bp_upload.errors import DeadlineExceeded, OutsideRunPrefix, SourceIncomplete
from bp_upload.publication.import_manifest import parse_import_manifest
from bp_upload.publication.layout import DatasetLocation
from bp_upload.publication.retry_policy import Backoff, Deadline

DATA = random.Random(1).randbytes(3 * 1024 * 1024 + 17)


def test_one_pass_gives_the_digests_cloud_storage_reports() -> None:
    digests = hash_stream(io.BytesIO(DATA))
    assert digests.size == len(DATA)
    assert digests.md5_b64 == base64.b64encode(hashlib.md5(DATA).digest()).decode()
    crc32c = google_crc32c.value(DATA).to_bytes(4, "big")
    assert digests.crc32c_b64 == base64.b64encode(crc32c).decode()
    assert digests.sha256 == hashlib.sha256(DATA).hexdigest()


def test_an_uploader_seeking_back_and_resending_does_not_hash_bytes_twice() -> None:
    reader = HashingReader(io.BytesIO(DATA))
    assert len(reader.read(1_000_000)) == 1_000_000
    reader.seek(256 * 1024)  # the server kept only the first 256 KiB of a chunk
    while reader.read(700_000):
        pass
    assert reader.digests() == digests_of(DATA)


def test_a_reader_cannot_skip_bytes_it_has_not_hashed() -> None:
    reader = HashingReader(io.BytesIO(DATA))
    reader.read(10)
    with pytest.raises(OSError):
        reader.seek(1000)


def test_a_deadline_stops_a_stream_between_chunks() -> None:
    now = [0.0]
    deadline = Deadline(5.0, clock=lambda: now[0], what="the test deadline")
    reader = HashingReader(io.BytesIO(DATA), check=deadline.check)
    reader.read(1024)
    now[0] = 5.0
    with pytest.raises(DeadlineExceeded):
        reader.read(1024)


def test_run_prefixes_end_with_a_slash_so_neighbours_never_match() -> None:
    scene_1 = DatasetLocation("scene_1", "franka_panda", "run-" + "1" * 20)
    scene_10 = DatasetLocation("scene_10", "franka_panda", "run-" + "1" * 20)
    assert scene_1.prefix == f"datasets/scene_1/franka_panda/run-{'1' * 20}/"
    assert not scene_1.owns(scene_10.file_key("meta/info.json"))
    assert not scene_1.owns(scene_1.latest_key)
    with pytest.raises(OutsideRunPrefix):
        scene_1.relative(scene_10.prefix + "meta/info.json")
    run_1 = DatasetLocation("s", "ur5e", "run-1")
    run_10 = DatasetLocation("s", "ur5e", "run-10")
    assert not run_1.owns(run_10.file_key("x.json"))


@pytest.mark.parametrize("robot", ["", "a/b", "..", "UR5E space"])
def test_unsafe_path_segments_are_refused(robot: str) -> None:
    with pytest.raises(InvalidName):
        DatasetLocation("scene", robot, "run-1")


def test_the_import_manifest_inventory_is_read_in_path_order() -> None:
    sha = "a" * 64
    doc = {
        "files": {
            "videos/b.mp4": {"sha256": sha, "size": 3},
            "meta/info.json": {"sha256": sha, "size": 0},
        }
    }
    inventory = parse_import_manifest(json.dumps(doc).encode(), manifest_sha256=sha, where="m")
    assert [f.path for f in inventory.files] == ["meta/info.json", "videos/b.mp4"]
    assert inventory.total_bytes == 3
    as_list = {"files": [{"path": "x.json", "sha256": sha, "size": 1}]}
    assert (
        parse_import_manifest(json.dumps(as_list).encode(), manifest_sha256=sha, where="m")
        .files[0]
        .path
        == "x.json"
    )


@pytest.mark.parametrize(
    "document",
    [
        b"not json",
        b"{}",
        b'{"files": {}}',
        b'{"files": {"../escape": {"sha256": "' + b"a" * 64 + b'", "size": 1}}}',
        b'{"files": {"a.json": {"sha256": "ABC", "size": 1}}}',
        b'{"files": {"a.json": {"sha256": "' + b"a" * 64 + b'", "size": -1}}}',
        b'{"files": {"import_manifest.json": {"sha256": "' + b"a" * 64 + b'", "size": 1}}}',
    ],
)
def test_a_malformed_import_manifest_is_a_permanent_error(document: bytes) -> None:
    with pytest.raises(SourceIncomplete) as caught:
        parse_import_manifest(document, manifest_sha256="0" * 64, where="m")
    assert caught.value.permanent


def test_backoff_grows_exponentially_with_full_jitter_under_a_cap() -> None:
    backoff = Backoff(initial_s=0.5, multiplier=2.0, cap_s=4.0)
    assert [backoff.ceiling(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    rng = random.Random(3)
    delays = [backoff.delay(3, rng) for _ in range(500)]
    assert all(0.0 <= d <= 2.0 for d in delays)
    assert min(delays) < 0.2 and max(delays) > 1.8  # spread over the whole window
