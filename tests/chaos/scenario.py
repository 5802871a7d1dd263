"""One chaos run on the local stack, shared by tests/chaos/ (a small count) and
`benchmarks/chaos.py` (a large one).

Tiny scenes (tests/concurrency/harness.py) are dropped at once into the services under
supervision (`LocalStack`), with fake-gcs-server behind a fault-injecting HTTP proxy and a TCP
proxy (tests/chaos/faults.py). While the runs are in flight, at random moments:

- a service (export, submit, the collector worker, import, upload: push and pull) gets SIGKILL,
  with its simulation process; the supervisor restarts it;
- the Pub/Sub emulator gets SIGKILL; the stack starts it again (empty), makes its topics and
  subscriptions again and drives the runs on;
- the collector worker is partitioned (from storage, Pub/Sub and the ledger at once) for a few
  seconds;
- all along, a share of the storage requests get a 503, stall and drop, or lose their answer.

At the end every run must be published exactly once or be dead-lettered with a typed reason:
`lost` counts runs that are neither, `duplicated` counts second publications, stage units that
ran to their end twice, and committed objects that changed.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bp_common.blobstore.gcs import make_storage_client
from bp_common.ledger import RunLedger, StageState
from bp_common.ledger.firestore import FirestoreLedgerStore, make_firestore_client
from bp_ops.emulators import FIRESTORE, PUBSUB
from bp_ops.stack import BUCKET, FIREBASE_BUCKET, LocalStack

from tests.chaos.faults import FaultyHttpProxy, Partition, TcpProxy
from tests.concurrency.harness import (
    ROBOT,
    TINY_ENV,
    CommitWatch,
    drop_scenes,
    lease_report,
    wait_for_runs,
    write_tiny_scene,
)

SERVICES = ("export", "submit", "collect", "import", "upload")


@dataclass(frozen=True)
class Plan:
    scenes: int
    kills: int
    pubsub_restarts: int
    partitions: int
    gcs_error_rate: float
    gcs_stall_rate: float
    gcs_lost_answer_rate: float = 0.0
    gap_s: tuple[float, float] = (3.0, 12.0)
    """The pause before each injected event, drawn uniformly."""
    seed: int = 16
    timeout_s: float = 1800.0


@dataclass
class Figures:
    runs: int
    succeeded: int
    dead_lettered: dict[str, str]
    """Run -> the typed reason of the stage that failed for good."""
    lost: list[str]
    duplicated: list[str]
    faults: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    restarts: int = 0

    @property
    def kills(self) -> int:
        return sum(n for kind, n in self.faults.items() if kind.startswith("kill_"))

    def lines(self) -> list[str]:
        detail = ", ".join(f"{kind} {n}" for kind, n in sorted(self.faults.items()))
        return [
            f"kills: {self.kills}",
            f"faults: {sum(self.faults.values())} ({detail})",
            f"runs: {self.runs} ({self.succeeded} published exactly once,"
            f" {len(self.dead_lettered)} dead-lettered with a typed reason"
            + (f": {self.dead_lettered}" if self.dead_lettered else "")
            + ")",
            f"lost: {len(self.lost)}" + (f" {self.lost}" if self.lost else ""),
            f"duplicated: {len(self.duplicated)}"
            + (f" {self.duplicated}" if self.duplicated else ""),
            f"service restarts: {self.restarts}; wall time {self.wall_s:.0f} s",
        ]


class Injector:
    """Kills, emulator restarts and partitions, one at a time at random moments."""

    def __init__(self, stack: LocalStack, collector: Partition, plan: Plan) -> None:
        self.stack = stack
        self.collector = collector
        self.plan = plan
        self.rng = random.Random(plan.seed)
        self.done: Counter[str] = Counter()
        self.stop = threading.Event()
        kills = [SERVICES[i % len(SERVICES)] for i in range(plan.kills)]  # each service, evenly
        events = [f"kill_{s}" for s in kills]
        events += ["pubsub_restart"] * plan.pubsub_restarts + ["partition"] * plan.partitions
        self.rng.shuffle(events)
        self.events = events
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for event in self.events:
            if self.stop.wait(self.rng.uniform(*self.plan.gap_s)):
                return
            if event.startswith("kill_"):
                service = self.stack.services[event.removeprefix("kill_")]
                if service.poll() is not None:  # still down from the last kill: wait for it
                    self.stop.wait(5.0)
                    service = self.stack.services[event.removeprefix("kill_")]
                try:
                    os.killpg(service.pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue
            elif event == "pubsub_restart":
                emulator = self.stack.emulators.processes[PUBSUB]
                os.killpg(emulator.process.pid, signal.SIGKILL)
                deadline = time.monotonic() + 120
                while self.stack.emulators.processes[PUBSUB] is emulator:
                    if time.monotonic() > deadline or self.stop.wait(0.5):
                        break
            else:
                self.collector.cut()
                self.stop.wait(self.rng.uniform(3.0, 10.0))
                self.collector.heal()
            self.done[event] += 1


def run_chaos(root: Path, plan: Plan) -> Figures:
    """Drop `plan.scenes` tiny scenes into a stack under fire; returns what became of them."""
    saved = dict(os.environ)
    stack: LocalStack | None = None

    def port_of(emulator: str) -> int:
        assert stack is not None, "the stack starts before any service connects"
        return stack.emulators.processes[emulator].port

    try:
        with (
            FaultyHttpProxy(
                lambda: stack.emulators.storage_url if stack else "http://127.0.0.1:0",
                error_rate=plan.gcs_error_rate,
                stall_rate=plan.gcs_stall_rate,
                lost_answer_rate=plan.gcs_lost_answer_rate,
                seed=plan.seed,
            ) as gcs,
            # the collector worker's network: its links to storage, Pub/Sub and the ledger
            TcpProxy(lambda: gcs.port) as to_storage,
            TcpProxy(lambda: port_of(PUBSUB)) as to_pubsub,
            TcpProxy(lambda: port_of(FIRESTORE)) as to_ledger,
        ):
            stack = LocalStack(
                root / "stack",
                list(SERVICES),
                ack_deadline_s=10,
                min_backoff_s=1.0,
                max_backoff_s=5.0,
                extra_env={
                    **TINY_ENV,
                    "BP_LEASE_TTL_S": "10",
                    "STORAGE_EMULATOR_HOST": gcs.url,
                    "BP_COLLECTOR_WORKERS": "1",
                },
                stage_env={
                    "collect": {
                        "STORAGE_EMULATOR_HOST": f"http://{to_storage.address}",
                        "PUBSUB_EMULATOR_HOST": to_pubsub.address,
                        "FIRESTORE_EMULATOR_HOST": to_ledger.address,
                    }
                },
                redrive_every_s=10.0,
                redrive_stalled_after_s=30.0,
            )
            with stack:
                partition = Partition(to_storage, to_pubsub, to_ledger)
                return _under_fire(stack, partition, gcs, plan, root)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _under_fire(
    stack: LocalStack, partition: Partition, gcs: FaultyHttpProxy, plan: Plan, root: Path
) -> Figures:
    crashed: list[BaseException] = []

    def supervise() -> None:
        try:
            stack.wait()
        except BaseException as exc:
            crashed.append(exc)

    threading.Thread(target=supervise, daemon=True).start()
    client = make_storage_client(stack.project)
    ledger = RunLedger(FirestoreLedgerStore(make_firestore_client(stack.project)))
    scene = write_tiny_scene(root / "tiny")
    injector = Injector(stack, partition, plan)
    started = time.monotonic()
    with CommitWatch(client, BUCKET, FIREBASE_BUCKET) as commits:
        runs = drop_scenes(client, BUCKET, scene, [f"chaos-{i:03d}" for i in range(plan.scenes)])
        injector.thread.start()
        states = wait_for_runs(ledger, runs.values(), timeout_s=plan.timeout_s)
        injector.stop.set()
        injector.thread.join(60)
    wall = time.monotonic() - started
    commits.scan()
    assert not crashed, crashed

    dead: dict[str, str] = {}
    lost: list[str] = []
    for scene_id, run_id in runs.items():
        if states[run_id] == "succeeded":
            continue
        record = ledger.get(run_id)
        failed = [
            (name, stage.error)
            for name, stage in (record.stages.items() if record else [])
            if stage.state is StageState.FAILED and stage.error is not None
        ]
        if states[run_id] == "failed" and failed:
            name, error = failed[0]
            dead[run_id] = f"{name}: {error.type}"
        else:
            lost.append(f"{scene_id}/{run_id}: {states[run_id]}")

    duplicated = [f"changed {c}" for c in commits.changed()]
    datasets = client.bucket(FIREBASE_BUCKET)
    for scene_id in runs:
        manifests = [
            b.name
            for b in datasets.list_blobs(prefix=f"datasets/{scene_id}/{ROBOT}/")
            if b.name.endswith("/dataset_manifest.json")
        ]
        if len(manifests) > 1:
            duplicated.append(f"{scene_id}: published {len(manifests)} times")
    leases = lease_report(ledger, runs.values())
    duplicated += [f"{run}/{unit} ran to its end {n} times" for (run, unit), n in
                   leases.succeeded.items() if n > 1]  # fmt: skip
    duplicated += [f"held twice at once: {o}" for o in leases.overlapping]

    faults = Counter(injector.done) + gcs.faults
    faults["collector_partition"] = faults.pop("partition", 0)
    events = stack.supervisor.events if stack.supervisor else None
    restarts = 0
    if events is not None:
        from bp_ops.supervision import read_events

        restarts = sum(1 for e in read_events(events.path, 100_000) if e.event == "restarted")
    return Figures(
        runs=len(runs),
        succeeded=sum(1 for s in states.values() if s == "succeeded"),
        dead_lettered=dead,
        lost=lost,
        duplicated=duplicated,
        faults=+faults,
        wall_s=wall,
        restarts=restarts,
    )
