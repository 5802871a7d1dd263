"""Twelve scenes dropped at once through the storage emulator, every message published twice
more, ack deadlines short enough to force redelivery: each run succeeds exactly once, nothing
committed changes, no unit ever has two holders, and no run reads `succeeded` before its
dataset is published. The four real services, each a process of the local stack."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from bp_common.blobstore.gcs import make_storage_client
from bp_common.ledger import RunLedger
from bp_common.ledger.firestore import FirestoreLedgerStore, make_firestore_client
from bp_ops.stack import BUCKET, FIREBASE_BUCKET, LocalStack

from tests.concurrency.harness import (
    ROBOT,
    TINY_ENV,
    CommitWatch,
    Duplicator,
    RunPoller,
    drop_scenes,
    lease_report,
    wait_for_releases,
    wait_for_runs,
    write_tiny_scene,
)

# Two minutes: on demand (`pytest -m soak`) beside the kill soak, to keep CI within 30 minutes;
# the chaos suite drops scenes with duplicates and kills in CI.
pytestmark = [pytest.mark.emulators, pytest.mark.soak, pytest.mark.timeout(1800)]
SCENES = 12
STAGES = ["export", "submit", "collect", "import", "upload"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    saved = dict(os.environ)
    with LocalStack(
        tmp_path_factory.mktemp("concurrency"),
        STAGES,
        ack_deadline_s=10,  # the emulator's least: pushes and pulls outlive it and come again
        min_backoff_s=1.0,
        max_backoff_s=5.0,
        extra_env={**TINY_ENV, "BP_LEASE_TTL_S": "10"},
    ) as stack:
        supervisor = threading.Thread(target=stack.wait, daemon=True)
        supervisor.start()
        yield stack
    os.environ.clear()
    os.environ.update(saved)


def test_twelve_scenes_with_duplicates_each_succeed_exactly_once(
    stack: LocalStack, tmp_path: Path
) -> None:
    client = make_storage_client(stack.project)
    ledger = RunLedger(FirestoreLedgerStore(make_firestore_client(stack.project)))
    scene = write_tiny_scene(tmp_path / "tiny")
    assert stack.status is not None and stack.status_token is not None
    status = f"http://127.0.0.1:{stack.status.port}/"
    with (
        Duplicator(stack.project, copies=2) as duplicator,
        CommitWatch(client, BUCKET, FIREBASE_BUCKET) as commits,
        RunPoller(status, stack.status_token, client, FIREBASE_BUCKET) as poller,
    ):
        runs = drop_scenes(client, BUCKET, scene, [f"tiny-{i:02d}" for i in range(SCENES)])
        states = wait_for_runs(ledger, runs.values(), timeout_s=1500)
    commits.scan()

    assert states == dict.fromkeys(runs.values(), "succeeded"), states
    published = duplicator.seen
    assert published.copies >= 2 * SCENES  # the notifications, at least, came three times
    for run_id in runs.values():  # one event per stage and run: no duplicate went downstream
        for topic in ("scenes-exported", "episodes-collected", "datasets-ready"):
            assert published.count(topic, run_id) == 1, (topic, run_id)
        assert published.count("datasets-published", run_id) == 1, run_id
    for scene_id, run_id in runs.items():
        manifest = f"datasets/{scene_id}/{ROBOT}/{run_id}/dataset_manifest.json"
        assert client.bucket(FIREBASE_BUCKET).get_blob(manifest) is not None

    assert len(commits.manifests) >= 4 * SCENES  # export, import, collection, dataset
    assert commits.changed() == []

    wait_for_releases(ledger, runs.values(), timeout_s=60)
    leases = lease_report(ledger, runs.values())
    assert leases.overlapping == []
    assert leases.units == len(STAGES) * SCENES
    # every stage of every run did its work exactly once, to the end
    assert set(leases.succeeded.values()) == {1}
    assert leases.unfinished() == {}

    assert poller.polls > 10 and poller.early == []
    assert all("running" in poller.states.get(r, set()) for r in runs.values())
    print(
        f"\n{SCENES} runs: {published.copies} copies and {published.deferred} hand-backs "
        f"({dict(published.deferred_on)}), "
        f"{leases.tenures} lease tenures, {len(commits.committed)} committed objects, "
        f"{poller.polls} polls"
    )
