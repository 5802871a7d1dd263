"""A create-only commit whose answer is lost: Cloud Storage created the manifest, the client
never heard so, and its retry finds the object there (412). That manifest names this attempt,
so the attempt has committed: it keeps its files and reports the commit as its own, instead of
removing the files its own manifest names."""

from __future__ import annotations

from pathlib import Path

import pytest
from bp_common.blobstore.gcs import GcsBlobStore, ensure_bucket, make_storage_client
from bp_common.runtime.attempts import AttemptWriter, read_committed
from bp_ops.emulators import EmulatorStack

from tests.chaos.faults import FaultyHttpProxy

pytestmark = pytest.mark.emulators
MANIFEST = "export_manifest.json"


def test_a_commit_whose_answer_was_lost_is_still_this_attempts_commit(tmp_path: Path) -> None:
    lost: list[str] = []

    def manifest_create_once(method: str, path: str, body: bytes) -> bool:
        if method == "POST" and MANIFEST.encode() in body and not lost:
            lost.append(path)
            return True
        return False

    with (
        EmulatorStack(tmp_path / "logs", emulators=("storage",)) as emulators,
        FaultyHttpProxy(
            lambda: emulators.storage_url, lose_answer_when=manifest_create_once
        ) as proxy,
    ):
        client = make_storage_client("bp-local", emulator_url=proxy.url)
        ensure_bucket(client, "bp-scenes")
        store = GcsBlobStore(client, "bp-scenes")
        unit = "runs/scene/run-00000000000000000000/export/"
        with AttemptWriter(store, unit, "a01-only", MANIFEST) as attempt:
            attempt.write("scene_graph.json", b'{"nodes": []}', content_type="application/json")
            committed = attempt.commit({"summary": "one file"})

        assert lost and proxy.faults["gcs_lost_answer"] == 1  # the answer was lost, once
        assert committed.won
        assert committed.document["attempt"]["id"] == "a01-only"
        assert store.read_bytes(committed.root + "scene_graph.json") == b'{"nodes": []}'
        again = read_committed(store, unit + MANIFEST)
        assert again is not None and again.raw == committed.raw


def test_a_streamed_upload_whose_last_answer_was_lost_is_confirmed_by_its_checksum(
    tmp_path: Path,
) -> None:
    lost: list[str] = []

    def final_chunk_once(method: str, path: str, body: bytes) -> bool:
        if method == "PUT" and "upload_id" in path and not lost:
            lost.append(path)
            return True
        return False

    data = bytes(range(256)) * 1000
    with (
        EmulatorStack(tmp_path / "logs", emulators=("storage",)) as emulators,
        FaultyHttpProxy(lambda: emulators.storage_url, lose_answer_when=final_chunk_once) as proxy,
    ):
        client = make_storage_client("bp-local", emulator_url=proxy.url)
        ensure_bucket(client, "bp-scenes")
        store = GcsBlobStore(client, "bp-scenes")
        with store.open_write("runs/scene/episode/rgb.mp4") as handle:
            handle.write(data)

        assert lost and proxy.faults["gcs_lost_answer"] == 1
        assert store.read_bytes("runs/scene/episode/rgb.mp4") == data
