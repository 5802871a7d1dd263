"""Scenes dropped at once to three collector workers on the emulators while workers are
SIGKILLed at random points (each with its simulation process, as a machine dies), the second of
every three stopped by SIGTERM instead (a Spot VM's preemption notice: the worker hands its shard
back and exits): the stack starts them again, and every run's collection completes with exactly its
planned episodes, no episode id twice, and one `episodes-collected` per run.

CI runs two scenes and two kills; `pytest -m soak` runs the issue's twenty and ten."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bp_common.blobstore.gcs import make_storage_client
from bp_common.contracts import decode
from bp_common.contracts.events import EpisodesCollected
from bp_common.ledger import RunLedger
from bp_common.ledger.firestore import FirestoreLedgerStore, make_firestore_client
from bp_common.ledger.run_state import stage_records
from bp_ops.stack import BUCKET, LocalStack
from bp_ops.supervision import read_events
from google.cloud import storage

from tests.concurrency.harness import ROBOT, TINY_ENV, Duplicator, drop_scenes, write_tiny_scene

pytestmark = [pytest.mark.emulators, pytest.mark.timeout(2400)]
WORKERS = 3
EPISODES = 4  # per run: one task, two shards of two episodes
TOPIC = "episodes-collected"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    env = {
        **TINY_ENV,
        "BP_EPISODES_PER_TASK": str(EPISODES),
        "BP_EPISODES_PER_SHARD": "2",
        "BP_COLLECTOR_WORKERS": "1",  # one simulation process per worker: three on two cores
        "BP_WORK_SLOTS": "1",
        "BP_LEASE_TTL_S": "10",
    }
    with LocalStack(
        tmp_path_factory.mktemp("fleet"),
        ["export", "submit", "collect"],
        ack_deadline_s=10,
        min_backoff_s=1.0,
        max_backoff_s=5.0,
        extra_env=env,
        status_page=False,
        collectors=WORKERS,
    ) as stack:
        threading.Thread(target=stack.wait, daemon=True).start()
        yield stack
    os.environ.clear()
    os.environ.update(saved)


def _collected(ledger: RunLedger, runs: list[str], timeout_s: float) -> dict[str, str]:
    """Each run's collect state once every run's is final (or the deadline passed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        states: dict[str, str] = {}
        for run_id in runs:
            record = ledger.get(run_id)
            collect = stage_records(record).get("collect") if record else None
            states[run_id] = collect.state.value if collect else "waiting"
        if set(states.values()) <= {"succeeded", "failed"} or time.monotonic() > deadline:
            return states
        time.sleep(2)


def _episode_markers(client: storage.Client, scene_id: str, run_id: str) -> list[str]:
    """The committed episodes' markers (`episodes/{robot}/{episode_id}.json`, beside the
    robot's manifest)."""
    prefix = f"runs/{scene_id}/{run_id}/episodes/{ROBOT}/"
    names = (b.name.removeprefix(prefix) for b in client.list_blobs(BUCKET, prefix=prefix))
    return [n for n in names if "/" not in n and n != "manifest.json"]


@pytest.mark.parametrize(
    ("scenes", "kills"),
    [
        pytest.param(2, 2, id="2-scenes"),
        pytest.param(20, 10, id="20-scenes", marks=pytest.mark.soak),
    ],
)
def test_killed_workers_lose_and_duplicate_nothing_and_each_run_fans_in_once(
    stack: LocalStack, tmp_path: Path, scenes: int, kills: int
) -> None:
    client = make_storage_client(stack.project)
    ledger = RunLedger(FirestoreLedgerStore(make_firestore_client(stack.project)))
    scene = write_tiny_scene(tmp_path / "tiny")
    rng = random.Random(11)
    killed: list[tuple[str, int]] = []
    stopped: list[int] = []
    killed_at: dict[str, float] = {}  # a killed worker starts again at once
    workers = stack.instances("collect")
    assert len(workers) == WORKERS

    def kill_at_random() -> None:
        for n in range(kills):
            time.sleep(rng.uniform(4.0, 12.0))
            if n % 3 == 1:  # the longest-running worker, surely at work by now
                name = min(workers, key=lambda w: killed_at.get(w, 0.0))
                time.sleep(max(0.0, killed_at.get(name, 0.0) + 30.0 - time.monotonic()))
                pid = stack.services[name].pid
                os.kill(pid, signal.SIGTERM)  # the worker alone: it stops its own pool
                stopped.append(pid)
            else:
                name = rng.choice(workers)
                pid = stack.services[name].pid
                os.killpg(pid, signal.SIGKILL)  # the worker and its simulation process
            killed_at[name] = time.monotonic()
            killed.append((name, pid))

    prefix = f"fleet-{scenes:02d}"
    with Duplicator(stack.project, copies=0) as watcher:
        runs = drop_scenes(client, BUCKET, scene, [f"{prefix}-{i:02d}" for i in range(scenes)])
        killer = threading.Thread(target=kill_at_random)
        killer.start()
        killer.join()
        states = _collected(ledger, list(runs.values()), timeout_s=2000)
        time.sleep(5)  # an event published twice would have reached the watcher by now
    assert len(killed) == kills
    assert stack.supervisor is not None
    events = read_events(stack.supervisor.events.path, 10_000)
    exits = {e.pid: e for e in events if e.event == "exited"}
    for pid in stopped:  # a stopped worker exits by itself, cleanly
        assert pid in exits and exits[pid].signal is None, exits.get(pid)
    assert states == dict.fromkeys(runs.values(), "succeeded"), (states, killed)

    for scene_id, run_id in runs.items():
        assert watcher.seen.count(TOPIC, run_id) == 1, run_id
        collection = ledger.shards.get(run_id)
        assert collection is not None and collection.complete and not collection.failed
        assert collection.episodes_planned == collection.episodes_done == EPISODES
        markers = _episode_markers(client, scene_id, run_id)
        assert len(markers) == len(set(markers)) == EPISODES, markers
        record = ledger.get(run_id)
        assert record is not None
        emitting = [r for r in record.stages.values() if r.emitted and r.emitted.topic == TOPIC]
        assert len(emitting) == 1  # the shard that completed the run fanned in
        emitted = emitting[0].emitted
        assert emitted is not None
        event = decode(TOPIC, emitted.data.encode(), emitted.attributes)
        assert isinstance(event, EpisodesCollected)
        [robot] = event.robots
        manifest = json.loads(client.bucket(BUCKET).blob(robot.manifest).download_as_bytes())
        ids = [e["episode_id"] for e in manifest["episodes"]]
        assert len(ids) == len(set(ids)) == robot.episodes == EPISODES
    print(f"\n{scenes} runs, {kills} kills ({', '.join(n for n, _ in killed)})")
