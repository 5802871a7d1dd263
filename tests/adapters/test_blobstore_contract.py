"""The blob store contract, run over a local folder and over GCS (fake-gcs-server, real client)."""

from __future__ import annotations

import base64
import gc
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import google_crc32c
import pytest
from bp_common.blobstore.base import BlobStore
from bp_common.blobstore.gcs import GcsBlobStore, make_storage_client
from bp_common.blobstore.local import LocalBlobStore
from bp_common.errors import AlreadyExists, InvalidName, NotFound, Unavailable
from bp_ops.emulators import free_port
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

# The smallest resumable chunk, so a few MB really travel as many chunks.
SMALL_CHUNK = 256 * 1024
TRAVERSAL_KEYS = ["../x", "a//b", "/abs", "a/../b", "a/./b", "runs/", "a\\b", ""]


class WriterFailed(RuntimeError):
    pass


@pytest.fixture(params=["local", pytest.param("gcs", marks=pytest.mark.emulators)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        yield LocalBlobStore(tmp_path / "bucket")
    else:
        client: storage.Client = request.getfixturevalue("storage_client")
        bucket: str = request.getfixturevalue("gcs_bucket")
        yield GcsBlobStore(client, bucket, chunk_size=SMALL_CHUNK)


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def test_a_multi_megabyte_object_streams_in_and_out_unchanged(store: BlobStore) -> None:
    data = os.urandom(5 * 1024 * 1024 + 12345)
    with store.open_write("runs/s/r/episodes/big.bin", content_type="application/x-bin") as out:
        for piece in chunks(data, 100_000):  # not aligned to the upload chunk on purpose
            out.write(piece)

    received = bytearray()
    with store.open_read("runs/s/r/episodes/big.bin") as reader:
        while piece := reader.read(300_000):
            received += piece
    assert bytes(received) == data
    info = store.stat("runs/s/r/episodes/big.bin")
    assert info is not None and info.size == len(data)


def write_then_fail(store: BlobStore, key: str, size: int) -> None:
    data = os.urandom(size)
    with pytest.raises(WriterFailed), store.open_write(key) as out:
        for i, piece in enumerate(chunks(data, 64 * 1024)):
            out.write(piece)
            if i == 20:  # several upload chunks already sent
                raise WriterFailed("stage died")
    # A writer left for the garbage collector must not finalize the upload when collected.
    gc.collect()


def test_a_writer_that_fails_midway_leaves_no_object(store: BlobStore) -> None:
    write_then_fail(store, "runs/s/r/partial.bin", 2 * 1024 * 1024)
    assert store.stat("runs/s/r/partial.bin") is None
    assert [b.key for b in store.list("runs/s/r/")] == []
    with pytest.raises(NotFound):
        store.read_bytes("runs/s/r/partial.bin")


def test_a_failed_overwrite_keeps_the_previous_content(store: BlobStore) -> None:
    store.write_bytes("runs/s/r/report.json", b'{"v": 1}\n')
    write_then_fail(store, "runs/s/r/report.json", 2 * 1024 * 1024)
    assert store.read_bytes("runs/s/r/report.json") == b'{"v": 1}\n'


def test_create_only_commits_once_and_keeps_the_first_content(store: BlobStore) -> None:
    first = store.create_only("runs/s/r/export/export_manifest.json", b'{"by": "first"}\n')
    assert first.size == len(b'{"by": "first"}\n')
    with pytest.raises(AlreadyExists):
        store.create_only("runs/s/r/export/export_manifest.json", b'{"by": "second"}\n')
    assert store.read_bytes("runs/s/r/export/export_manifest.json") == b'{"by": "first"}\n'
    after = store.stat("runs/s/r/export/export_manifest.json")
    assert after is not None and after.generation == first.generation


def test_listing_a_prefix_never_returns_a_neighbour(store: BlobStore) -> None:
    for key in ["runs/scene_1/b.json", "runs/scene_1/a/x.json", "runs/scene_10/a.json",
                "runs/scene_1x.json", "runs/scene_2/a.json"]:
        store.write_bytes(key, b"{}")
    assert [b.key for b in store.list("runs/scene_1/")] == ["runs/scene_1/a/x.json",
                                                            "runs/scene_1/b.json"]
    assert [b.key for b in store.list("runs/scene_10/")] == ["runs/scene_10/a.json"]
    assert [b.key for b in store.list("runs/")] == sorted(
        ["runs/scene_1/b.json", "runs/scene_1/a/x.json", "runs/scene_10/a.json",
         "runs/scene_1x.json", "runs/scene_2/a.json"]
    )
    assert list(store.list("nothing/")) == []


@pytest.mark.parametrize("key", TRAVERSAL_KEYS)
def test_unsafe_keys_are_refused_by_every_operation(store: BlobStore, key: str) -> None:
    with pytest.raises(InvalidName):
        store.write_bytes(key, b"x")
    with pytest.raises(InvalidName):
        store.create_only(key, b"x")
    with pytest.raises(InvalidName), store.open_read(key):
        pass
    with pytest.raises(InvalidName):
        store.stat(key)
    with pytest.raises(InvalidName):
        store.delete(key)


def test_stat_reports_size_and_metadata_and_none_when_absent(store: BlobStore) -> None:
    assert store.stat("scenes/kitchen/scene.usda") is None
    assert not store.exists("scenes/kitchen/scene.usda")
    info = store.write_bytes("scenes/kitchen/scene.usda", b"#usda 1.0\n",
                             content_type="text/plain", metadata={"origin": "test"})
    assert (info.key, info.size, info.metadata) == ("scenes/kitchen/scene.usda", 10,
                                                    {"origin": "test"})
    assert info.generation > 0
    assert store.exists("scenes/kitchen/scene.usda")
    assert store.stat("scenes/kitchen/scene.usda") == info


def test_trailing_newlines_and_empty_objects_survive(store: BlobStore) -> None:
    store.write_bytes("runs/s/r/a.txt", b"line\n\n")
    store.write_bytes("runs/s/r/empty", b"")
    assert store.read_bytes("runs/s/r/a.txt") == b"line\n\n"
    assert store.read_bytes("runs/s/r/empty") == b""
    assert store.stat("runs/s/r/empty").size == 0  # type: ignore[union-attr]


def test_delete_removes_once_then_reports_absence(store: BlobStore) -> None:
    store.write_bytes("runs/s/r/tmp.bin", b"123")
    assert store.delete("runs/s/r/tmp.bin") is True
    assert store.stat("runs/s/r/tmp.bin") is None
    assert store.delete("runs/s/r/tmp.bin") is False
    with pytest.raises(NotFound):
        store.read_bytes("runs/s/r/tmp.bin")


def test_overwrite_replaces_content_and_metadata(store: BlobStore) -> None:
    store.write_bytes("runs/s/r/state.json", b"old", metadata={"v": "1"})
    store.write_bytes("runs/s/r/state.json", b"newer", metadata={"v": "2"})
    assert store.read_bytes("runs/s/r/state.json") == b"newer"
    info = store.stat("runs/s/r/state.json")
    assert info is not None and (info.size, info.metadata) == (5, {"v": "2"})


def test_a_reader_never_mixes_two_versions_of_an_object(store: BlobStore) -> None:
    old = os.urandom(3 * SMALL_CHUNK)
    store.write_bytes("runs/s/r/v.bin", old)
    with store.open_read("runs/s/r/v.bin") as reader:
        head = reader.read(SMALL_CHUNK)
        store.write_bytes("runs/s/r/v.bin", os.urandom(3 * SMALL_CHUNK))
        try:
            rest = reader.read()
        except NotFound:  # GCS: the generation being read no longer exists
            return
    assert head + rest == old  # a folder: the open file still is the old version


def test_uri_names_the_store_and_key(store: BlobStore) -> None:
    uri = store.uri("runs/s/r/a.json")
    assert uri.endswith("/runs/s/r/a.json")
    assert uri.startswith("gs://" if isinstance(store, GcsBlobStore) else "file://")


@pytest.mark.emulators
def test_gcs_stat_carries_the_object_hashes(
    storage_client: storage.Client, gcs_bucket: str
) -> None:
    store = GcsBlobStore(storage_client, gcs_bucket)
    data = os.urandom(70_000)
    info = store.write_bytes("runs/s/r/h.bin", data)
    assert info.md5_b64 == base64.b64encode(hashlib.md5(data).digest()).decode()
    crc32c = google_crc32c.value(data).to_bytes(4, "big")
    assert info.crc32c_b64 == base64.b64encode(crc32c).decode()
    assert store.uri("runs/s/r/h.bin") == f"gs://{gcs_bucket}/runs/s/r/h.bin"


def test_gcs_unreachable_is_a_transient_error() -> None:
    client = make_storage_client("p", emulator_url=f"http://127.0.0.1:{free_port()}")
    store = GcsBlobStore(client, "b", retry=DEFAULT_RETRY.with_timeout(0.5))
    with pytest.raises(Unavailable):
        store.stat("runs/a")
    with pytest.raises(Unavailable):
        store.write_bytes("runs/a", b"x")
    with pytest.raises(Unavailable):
        list(store.list("runs/"))
