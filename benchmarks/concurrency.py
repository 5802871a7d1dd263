"""Benchmark many scenes dropped at once on the local stack, against one delivery at a time.

Drops `--scenes` tiny scenes (a table and a cube, one robot, one task, one episode) at once
through the storage emulator into the services of the local stack, with every message on a
consumed topic published `--copies` times more and 10 s ack deadlines, and waits for every run
to be published. It does this twice in the same run: first with one delivery at a time per
service (the baseline: `BP_WORK_SLOTS=1`, `BP_FLOW_CONTROL_MAX_MESSAGES=1`), then with the
defaults (work slots from each stage's footprint and the machine). For each it prints the time
from the drop to the last publication, per-run latency (p50, p95), runs per hour, the hand-backs
and copies, each service's peak memory, and the correctness counts (runs not succeeded, committed
objects changed, units held twice at once, runs read `succeeded` before publication, events
sent downstream more than once), then the speed-up.

    .venv/bin/python benchmarks/concurrency.py [--scenes 24] [--copies 2] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the harness the concurrency tests use

from bp_common.blobstore.gcs import make_storage_client  # noqa: E402
from bp_common.ledger import RunLedger, StageState  # noqa: E402
from bp_common.ledger.firestore import FirestoreLedgerStore, make_firestore_client  # noqa: E402
from bp_ops.stack import BUCKET, FIREBASE_BUCKET, LocalStack  # noqa: E402
from bp_ops.supervision import read_events  # noqa: E402

from tests.concurrency.harness import (  # noqa: E402
    TINY_ENV,
    CommitWatch,
    Duplicator,
    RunPoller,
    drop_scenes,
    lease_report,
    wait_for_runs,
    write_tiny_scene,
)

STAGES = ["export", "submit", "collect", "import", "upload"]
BASELINE = {"BP_WORK_SLOTS": "1", "BP_FLOW_CONTROL_MAX_MESSAGES": "1"}


@dataclass
class Outcome:
    name: str
    scenes: int
    wall_s: float
    latencies: list[float]
    succeeded: int
    copies: int
    deferred: int
    tenures: int
    overlapping: int
    changed: int
    early: int
    downstream_duplicates: int
    peak_mb: dict[str, int]

    def lines(self) -> list[str]:
        p50 = statistics.median(self.latencies) if self.latencies else float("nan")
        p95 = (
            statistics.quantiles(self.latencies, n=20)[18]
            if len(self.latencies) >= 2
            else float("nan")
        )
        memory = ", ".join(f"{k} {v} MB" for k, v in sorted(self.peak_mb.items()))
        return [
            f"{self.name}: {self.succeeded}/{self.scenes} runs published in {self.wall_s:.0f} s"
            f" ({self.scenes / self.wall_s * 3600:.0f} runs/hour); latency p50 {p50:.0f} s,"
            f" p95 {p95:.0f} s",
            f"  {self.copies} copies sent, {self.deferred} hand-backs, {self.tenures} lease"
            f" tenures; peak memory: {memory}",
            f"  correctness: {self.scenes - self.succeeded} not succeeded, {self.changed} committed"
            f" objects changed, {self.overlapping} units held twice at once, {self.early} runs"
            f" read succeeded before publication, {self.downstream_duplicates} events sent"
            " downstream twice",
        ]


def peak_memory_mb(root: Path) -> dict[str, int]:
    """Each service's peak resident memory (VmHWM), read while the stack still runs."""
    pids: dict[str, int] = {}
    for event in read_events(root / "supervisor.jsonl", limit=10_000):
        if event.event in ("started", "restarted") and event.pid is not None:
            pids[event.service] = event.pid
    peaks = {}
    for service, pid in pids.items():
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[service] = int(line.split()[1]) // 1024
    return peaks


def measure(name: str, scenes: int, copies: int, extra_env: dict[str, str]) -> Outcome:
    saved = dict(os.environ)
    root = Path(tempfile.mkdtemp(prefix="bp-bench-concurrency-"))
    try:
        with LocalStack(
            root,
            STAGES,
            ack_deadline_s=10,
            min_backoff_s=1.0,
            max_backoff_s=5.0,
            extra_env={**TINY_ENV, "BP_LEASE_TTL_S": "10", **extra_env},
        ) as stack:
            threading.Thread(target=stack.wait, daemon=True).start()
            client = make_storage_client(stack.project)
            ledger = RunLedger(FirestoreLedgerStore(make_firestore_client(stack.project)))
            scene = write_tiny_scene(root / "tiny")
            assert stack.status is not None and stack.status_token is not None
            status = f"http://127.0.0.1:{stack.status.port}/"
            with (
                Duplicator(stack.project, copies=copies) as duplicator,
                CommitWatch(client, BUCKET, FIREBASE_BUCKET) as commits,
                RunPoller(status, stack.status_token, client, FIREBASE_BUCKET) as poller,
            ):
                started = time.monotonic()
                dropped_at = time.time()
                runs = drop_scenes(client, BUCKET, scene, [f"b-{i:03d}" for i in range(scenes)])
                states = wait_for_runs(ledger, runs.values(), timeout_s=6 * 3600)
                wall = time.monotonic() - started
            commits.scan()
            latencies = []
            for run_id in runs.values():
                record = ledger.get(run_id)
                upload = record.stages.get("upload") if record else None
                if upload is not None and upload.state is StageState.SUCCEEDED:
                    assert upload.finished_at is not None
                    latencies.append(upload.finished_at.timestamp() - dropped_at)
            leases = lease_report(ledger, runs.values())
            seen = duplicator.seen
            downstream = sum(
                max(0, seen.count(topic, run_id) - 1)
                for run_id in runs.values()
                for topic in ("scenes-exported", "episodes-collected", "datasets-ready")
            )
            return Outcome(
                name=name,
                scenes=scenes,
                wall_s=wall,
                latencies=latencies,
                succeeded=sum(1 for s in states.values() if s == "succeeded"),
                copies=seen.copies,
                deferred=seen.deferred,
                tenures=leases.tenures,
                overlapping=len(leases.overlapping),
                changed=len(commits.changed()),
                early=len(poller.early),
                downstream_duplicates=downstream,
                peak_mb=peak_memory_mb(root),
            )
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    outcomes = []
    if not args.skip_baseline:
        outcomes.append(measure("one at a time", args.scenes, args.copies, BASELINE))
    outcomes.append(measure("defaults", args.scenes, args.copies, {}))
    print(
        f"{args.scenes} scenes at once, every message {args.copies + 1} times, {os.cpu_count()}"
        " cores"
    )
    for outcome in outcomes:
        for line in outcome.lines():
            print(line)
    if len(outcomes) == 2:
        print(f"speed-up: {outcomes[0].wall_s / outcomes[1].wall_s:.2f}x")


if __name__ == "__main__":
    main()
