"""The circuit breaker's states, and the verification of an episode as it is stored."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from bp_collector.demo_scenes import tabletop_scene
from bp_collector.jobs.worker import JobEpisode, describe_episode
from bp_collector.mujoco.episode import simulate_episode
from bp_collector.mujoco.recording import read_episode
from bp_collector_api import collector_pb2 as pb
from bp_common.blobstore.local import LocalBlobStore
from bp_scene_contract import read_scene_graph, read_task_config
from bp_submit.breaker import BreakerState, CircuitBreaker
from bp_submit.collector_client import CollectorClient
from bp_submit.episode_transfer import is_stored, store_episode
from bp_submit.errors import CollectorUnavailable, EpisodeTransferFailed

Chunks = list[pb.EpisodeChunk]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def state(breaker: CircuitBreaker) -> BreakerState:
    return breaker.state


def test_the_breaker_opens_after_repeated_failures_and_probes_once_after_its_reset() -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        failure_threshold=3, reset_after_s=10, max_reset_after_s=25, clock=clock
    )
    for _ in range(3):
        assert state(breaker) is BreakerState.CLOSED and breaker.allow()
        breaker.record_failure()
    assert state(breaker) is BreakerState.OPEN
    assert not breaker.allow()
    assert breaker.retry_after_s() == 10
    clock.now = 10
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow() and not breaker.allow()  # one probe at a time
    breaker.record_failure()  # the probe failed: open again, for twice as long
    clock.now = 29
    assert state(breaker) is BreakerState.OPEN
    clock.now = 30
    assert breaker.allow()
    breaker.record_failure()
    clock.now = 30 + 24
    assert state(breaker) is BreakerState.OPEN  # doubling stops at max_reset_after_s
    clock.now = 30 + 25
    assert breaker.allow()
    breaker.record_success()
    assert state(breaker) is BreakerState.CLOSED and breaker.allow()
    breaker.record_failure()
    assert state(breaker) is BreakerState.CLOSED  # the failure count started again


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[pb.EpisodeResult, Path]:
    graph, config = tabletop_scene("franka_panda")
    folder = tmp_path_factory.mktemp("episode") / "ep"
    simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        "franka_panda",
        "pick_place_cube",
        1,
        folder,
        width=32,
        height=32,
        fps=10,
        max_seconds=1.0,
    )
    episode = JobEpisode(
        str(folder.parent),
        folder.name,
        "pick_place_cube",
        "franka_panda",
        1,
        ("wrist", "overhead"),
        32,
        32,
        10,
        1.0,
    )
    return pb.EpisodeResult.FromString(describe_episode(folder, episode, "", 0.0)), folder


def chunks_of(result: pb.EpisodeResult, folder: Path, size: int = 1000) -> Chunks:
    """What FetchEpisode sends: each file in chunks, the manifest last."""
    out: Chunks = []
    ordered = [f for f in result.files if f.path != "episode.json"] + [
        f for f in result.files if f.path == "episode.json"
    ]
    for f in ordered:
        data = (folder / f.path).read_bytes()
        pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        offset = 0
        for i, piece in enumerate(pieces):
            out.append(
                pb.EpisodeChunk(
                    path=f.path,
                    offset=offset,
                    data=piece,
                    file_size=f.size,
                    sha256=f.sha256,
                    last=i == len(pieces) - 1,
                )
            )
            offset += len(piece)
    return out


def test_an_open_breaker_spends_the_retry_budget_waiting_before_it_gives_up() -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=60)
    breaker.record_failure()  # open for a minute: longer than the budget
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    client = CollectorClient("127.0.0.1:9", None, breaker=breaker, retry_budget_s=0.3, sleep=sleep)
    try:
        with pytest.raises(CollectorUnavailable, match="circuit breaker open"):
            client.call("GetInfo", lambda timeout: pytest.fail("no call while the breaker is open"))
    finally:
        client.close()
    # a delivery attempt lasts the budget, not milliseconds, and never sleeps past it
    assert sum(slept) == pytest.approx(0.3, abs=0.05)


def test_an_intact_episode_is_stored_and_verifies(
    recorded: tuple[pb.EpisodeResult, Path], tmp_path: Path
) -> None:
    result, folder = recorded
    blobs = LocalBlobStore(tmp_path)
    stored = store_episode(blobs, "robot/", result, chunks_of(result, folder))
    assert stored == sum(f.size for f in result.files)
    assert is_stored(blobs, "robot/", result)
    episode = read_episode(tmp_path / "robot" / result.episode_id, verify=True)
    assert hashlib.sha256((episode.path / "episode.json").read_bytes()).hexdigest() == (
        result.manifest_sha256
    )


def _flip_a_byte(chunks: Chunks) -> Chunks:
    target = next(i for i, c in enumerate(chunks) if c.path == "states.npz" and c.data)
    data = bytearray(chunks[target].data)
    data[0] ^= 0x01
    chunks[target].data = bytes(data)
    return chunks


def _manifest_first(chunks: Chunks) -> Chunks:
    manifest = [c for c in chunks if c.path == "episode.json"]
    return manifest + [c for c in chunks if c.path != "episode.json"]


def _drop_a_file(chunks: Chunks) -> Chunks:
    return [c for c in chunks if c.path != "cameras/wrist/rgb.mp4"]


def _cut_short(chunks: Chunks) -> Chunks:
    first_multi = next(c.path for c in chunks if not c.last)
    return [c for c in chunks if c.path != first_multi or not c.last]


@pytest.mark.parametrize("damage", [_flip_a_byte, _manifest_first, _drop_a_file, _cut_short])
def test_a_damaged_transfer_is_refused_and_leaves_no_episode(
    recorded: tuple[pb.EpisodeResult, Path], tmp_path: Path, damage: Callable[[Chunks], Chunks]
) -> None:
    result, folder = recorded
    blobs = LocalBlobStore(tmp_path)
    with pytest.raises(EpisodeTransferFailed):
        store_episode(blobs, "robot/", result, damage(chunks_of(result, folder)))
    assert not is_stored(blobs, "robot/", result)
    names = {b.key for b in blobs.list("robot/")}
    assert f"robot/{result.episode_id}/episode.json" not in names
    if damage is _flip_a_byte:
        assert f"robot/{result.episode_id}/states.npz" not in names  # never appeared
