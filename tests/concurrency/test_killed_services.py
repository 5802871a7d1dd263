"""SIGKILL services at random while twelve scenes go through `bp up`: the stack restarts them,
and every run completes, with nothing committed changed and no unit ever held twice at once."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from bp_common.blobstore.gcs import make_storage_client
from bp_common.ledger import RunLedger
from bp_common.ledger.firestore import FirestoreLedgerStore, make_firestore_client
from bp_ops.stack import BUCKET, FIREBASE_BUCKET

from tests.bp_up import start_bp_up
from tests.concurrency.harness import (
    TINY_ENV,
    CommitWatch,
    drop_scenes,
    lease_report,
    wait_for_runs,
    write_tiny_scene,
)

pytestmark = [pytest.mark.emulators, pytest.mark.timeout(2400)]
SCENES = 12
KILLS = 8
SERVICES = ("export", "submit", "collect", "import", "upload")


@dataclass
class Up:
    """`bp up` running in its own process."""

    root: Path
    env: dict[str, str]
    process: subprocess.Popen[str]
    output: list[str] = field(default_factory=list)

    def events(self) -> list[dict[str, object]]:
        path = self.root / "supervisor.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    def pid(self, service: str) -> int:
        """The service's pid now, as the supervisor last started it."""
        started = [
            e for e in self.events()
            if e["service"] == service and e["event"] in ("started", "restarted")
        ]  # fmt: skip
        return int(str(started[-1]["pid"]))


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    root = tmp_path / "stack"
    started = start_bp_up(root, {**TINY_ENV, "BP_LEASE_TTL_S": "10"})
    try:
        yield Up(root, started.env, started.process, started.printed)
    finally:
        started.stop(timeout_s=120)


@pytest.mark.soak  # 8 min on 2 cores: tests/chaos/ kills services at random in CI
def test_services_killed_at_random_are_restarted_and_every_run_completes(
    up: Up, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in up.env.items():
        monkeypatch.setenv(key, value)
    project = up.env["BP_PROJECT_ID"]
    client = make_storage_client(project)
    ledger = RunLedger(FirestoreLedgerStore(make_firestore_client(project)))
    scene = write_tiny_scene(tmp_path / "tiny")
    rng = random.Random(15)
    killed: list[tuple[str, int]] = []

    def kill_at_random() -> None:
        for _ in range(KILLS):
            time.sleep(rng.uniform(3.0, 12.0))
            service = rng.choice(SERVICES)
            pid = up.pid(service)
            os.kill(pid, signal.SIGKILL)
            killed.append((service, pid))

    with CommitWatch(client, BUCKET, FIREBASE_BUCKET) as commits:
        runs = drop_scenes(client, BUCKET, scene, [f"kill-{i:02d}" for i in range(SCENES)])
        killer = threading.Thread(target=kill_at_random)
        killer.start()
        killer.join()
        states = wait_for_runs(ledger, runs.values(), timeout_s=1800)
    commits.scan()

    assert len(killed) == KILLS
    assert states == dict.fromkeys(runs.values(), "succeeded"), (states, killed, up.output[-40:])
    assert up.process.poll() is None  # the stack stayed up through every kill
    events = up.events()
    for service, pid in killed:
        exited = [e for e in events if e["event"] == "exited" and e["pid"] == pid]
        assert exited and exited[0]["signal"] == "SIGKILL", (service, pid)
    restarts = sum(1 for e in events if e["event"] == "restarted")
    assert restarts == KILLS
    assert commits.changed() == []
    leases = lease_report(ledger, runs.values())
    assert leases.overlapping == []
    assert max(leases.succeeded.values()) == 1  # no stage of a run ran to its end twice
    print(f"\n{KILLS} kills ({', '.join(s for s, _ in killed)}), {leases.tenures} tenures")
