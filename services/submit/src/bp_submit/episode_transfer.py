"""Moves one recorded episode from the collector into the blob store, verifying every byte.

Each file is streamed into its object and checked against the size and sha256 the collector
announced in the episode's result (which the episode's own manifest also lists). An object
appears only once its bytes check out; the episode manifest (episode.json) is written last, so
an episode folder with a manifest is complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from typing import BinaryIO

import grpc
from bp_collector_api import collector_pb2 as pb
from bp_common.blobstore import BlobStore

from bp_submit.collector_client import CollectorClient
from bp_submit.errors import CollectorUnavailable, EpisodeTransferFailed

log = logging.getLogger("bp.submit.transfer")
MANIFEST = "episode.json"
_ATTEMPTS = 3


class _Discard(Exception):
    """Raised into an object writer so the half-written object never appears."""


def _safe_path(path: str) -> bool:
    parts = path.split("/")
    return bool(path) and not path.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def episode_prefix(robot_prefix: str, episode_id: str) -> str:
    return f"{robot_prefix}{episode_id}/"


def is_stored(blobs: BlobStore, robot_prefix: str, result: pb.EpisodeResult) -> bool:
    """The episode's manifest is in the store with the checksum the collector reported."""
    key = episode_prefix(robot_prefix, result.episode_id) + MANIFEST
    info = blobs.stat(key)
    if info is None:
        return False
    if info.metadata.get("sha256") == result.manifest_sha256:
        return True
    return hashlib.sha256(blobs.read_bytes(key)).hexdigest() == result.manifest_sha256


def store_episode(
    blobs: BlobStore, robot_prefix: str, result: pb.EpisodeResult, chunks: Iterable[pb.EpisodeChunk]
) -> int:
    """Write the chunks of one episode under `{robot_prefix}{episode_id}/`; returns bytes stored.

    Raises EpisodeTransferFailed when anything differs from `result`: an unexpected, missing,
    short or altered file, chunks out of order, or a manifest that disagrees with the files.
    """
    base = episode_prefix(robot_prefix, result.episode_id)
    expected = {f.path: f for f in result.files}
    if MANIFEST not in expected or not all(_safe_path(p) for p in expected):
        raise EpisodeTransferFailed("episode result lists unsafe or no manifest paths",
                                    episode=result.episode_id)
    done: set[str] = set()
    writer: AbstractContextManager[BinaryIO] | None = None
    handle: BinaryIO | None = None
    path, size, hasher = "", 0, hashlib.sha256()
    manifest_bytes = bytearray()
    total = 0

    def fail(why: str) -> EpisodeTransferFailed:
        if writer is not None:
            writer.__exit__(_Discard, _Discard(why), None)
        return EpisodeTransferFailed(why, episode=result.episode_id, file=path or None)

    try:
        for chunk in chunks:
            if writer is None:
                path = chunk.path
                if path not in expected or path in done:
                    raise fail(f"unexpected file {path!r} in the stream")
                if path == MANIFEST and done != set(expected) - {MANIFEST}:
                    raise fail("the manifest arrived before the episode's other files")
                writer = blobs.open_write(base + path, metadata={"sha256": expected[path].sha256})
                handle = writer.__enter__()
                size, hasher = 0, hashlib.sha256()
            elif chunk.path != path:
                raise fail(f"file {path!r} ended without its last chunk")
            if chunk.offset != size:
                raise fail(f"chunk at offset {chunk.offset}, expected {size}")
            assert handle is not None
            handle.write(chunk.data)
            hasher.update(chunk.data)
            size += len(chunk.data)
            if path == MANIFEST:
                manifest_bytes += chunk.data
            if not chunk.last:
                continue
            want = expected[path]
            digest = hasher.hexdigest()
            if size != want.size or digest != want.sha256 or chunk.sha256 != want.sha256:
                raise fail(f"{path} arrived with {size} bytes and sha256 {digest},"
                           f" expected {want.size} bytes and {want.sha256}")
            if path == MANIFEST:
                listed = {f["path"]: f["sha256"] for f in json.loads(manifest_bytes)["files"]}
                if listed != {p: f.sha256 for p, f in expected.items() if p != MANIFEST}:
                    raise fail("the episode manifest lists other files than the collector reported")
            writer.__exit__(None, None, None)
            writer, handle = None, None
            done.add(path)
            total += size
    except BaseException as exc:
        # A broken stream (or anything else) must not leave a half-written object behind.
        if writer is not None and not isinstance(exc, EpisodeTransferFailed):
            writer.__exit__(type(exc), exc, exc.__traceback__)
        raise
    if writer is not None:
        raise fail(f"stream ended inside {path!r}")
    if done != set(expected):
        missing = sorted(set(expected) - done)
        raise EpisodeTransferFailed(f"stream ended before {missing}", episode=result.episode_id)
    return total


def fetch_episode(
    client: CollectorClient,
    blobs: BlobStore,
    robot_prefix: str,
    job_id: str,
    result: pb.EpisodeResult,
) -> int:
    """Fetch and store one episode, retrying a broken or corrupted transfer a few times."""
    size = sum(f.size for f in result.files)
    # At least the call timeout, plus time for the bytes at a pessimistic 2 MB/s.
    timeout = client.call_timeout_s + size / 2e6
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return store_episode(
                blobs, robot_prefix, result, client.fetch(job_id, result.episode_id, timeout)
            )
        except grpc.RpcError as exc:
            if exc.code() is grpc.StatusCode.UNAVAILABLE:
                client.breaker.record_failure()
            if attempt == _ATTEMPTS:
                if exc.code() is grpc.StatusCode.UNAVAILABLE:
                    raise CollectorUnavailable(
                        f"fetching {result.episode_id}: {exc.details()}",
                        address=client.address,
                    ) from exc
                raise EpisodeTransferFailed(
                    f"fetching failed: {exc.code().name}: {exc.details()}",
                    episode=result.episode_id,
                ) from exc
        except EpisodeTransferFailed:
            if attempt == _ATTEMPTS:
                raise
        log.warning("episode %s transfer attempt %d failed; retrying", result.episode_id, attempt)
        time.sleep(0.5 * attempt * random.uniform(0.8, 1.2))
    raise AssertionError("unreachable")
