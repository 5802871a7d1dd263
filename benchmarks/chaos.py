"""Chaos at a large count on the local stack: how many runs survive, against how many faults.

Drops `--scenes` tiny scenes (a table and a cube, one robot, one episode) at once into the
services of the local stack, and while they are in flight injects, one at a time at random
moments: `--kills` SIGKILLs spread evenly over export, submit, the collector worker, import and
upload (push and pull), `--pubsub-restarts` kills of the Pub/Sub emulator (the stack starts it
again, empty, makes its topics again and drives the runs on), and `--partitions` cuts of the
collector worker's network (storage, Pub/Sub and the ledger) for 3 to 10 s; all along, a share
of the storage requests get a 503 (`--gcs-error-rate`), stall 2 s and drop (`--gcs-stall-rate`)
or reach the server and lose their answer (`--gcs-lost-answer-rate`) through a fault-injecting
proxy in front of fake-gcs-server. The scenario is tests/chaos/scenario.py, as the CI test runs
it at a small count.

It prints kills, faults (by kind), runs, lost (runs neither published nor dead-lettered with a
typed reason) and duplicated (second publications, stage units run to their end twice,
committed objects changed). Target: at least 200 faults, 0 lost, 0 duplicated.

    .venv/bin/python benchmarks/chaos.py [--scenes 24] [--kills 40] [--pubsub-restarts 4]
        [--partitions 8] [--gcs-error-rate 0.05] [--gcs-stall-rate 0.02]
        [--gcs-lost-answer-rate 0.0] [--seed 16]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the scenario the chaos test runs

from tests.chaos.scenario import Plan, run_chaos  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes", type=int, default=24)
    parser.add_argument("--kills", type=int, default=40)
    parser.add_argument("--pubsub-restarts", type=int, default=4)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--gcs-error-rate", type=float, default=0.05)
    parser.add_argument("--gcs-stall-rate", type=float, default=0.02)
    parser.add_argument("--gcs-lost-answer-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    plan = Plan(
        scenes=args.scenes,
        kills=args.kills,
        pubsub_restarts=args.pubsub_restarts,
        partitions=args.partitions,
        gcs_error_rate=args.gcs_error_rate,
        gcs_stall_rate=args.gcs_stall_rate,
        gcs_lost_answer_rate=args.gcs_lost_answer_rate,
        seed=args.seed,
        timeout_s=4 * 3600,
    )
    figures = run_chaos(Path(tempfile.mkdtemp(prefix="bp-bench-chaos-")), plan)
    print(f"{args.scenes} scenes under fire, {os.cpu_count()} cores")
    for line in figures.lines():
        print(line)
    total = sum(figures.faults.values())
    met = total >= 200 and not figures.lost and not figures.duplicated
    print(f"target (>= 200 faults, 0 lost, 0 duplicated): {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
