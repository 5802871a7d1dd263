"""Benchmark collection's scaling from 1 to 2 workers, and model a fleet for 1,000 scenes a day.

Measures: the kitchen sample's kept tasks for each robot asked, recorded the way the pipeline
records them (wrist and overhead cameras, RGB, depth and segmentation), first by one simulation
process and then by two, each running one episode at a time (one shard per simulation process,
the unit a collector worker runs). Prints episodes per hour for each and the scaling efficiency
(episodes per hour with 2 over twice that with 1; target at least 0.85).

Models: `--scenes-per-day` scenes (1,000) arriving at random over `--window-h` hours of the day,
each planning the sample's episodes per scene (robots x kept tasks x `--episodes-per-task`),
cut into shards of `--episodes-per-shard`, served first come first served by a fleet of
workers. Episode times are drawn from the ones measured here (one process); export, import
and upload take their measured seconds. It finds the smallest fleet whose p95 scene-to-dataset
latency is under the target (2 h), and prints workers, machines, p50/p95 latency and the cost
at `--machine-price` per machine-hour (a list price the caller states, with its date).

    .venv/bin/python benchmarks/fleet.py [--robots franka_panda,ur5e,ur10,fetch] [--episodes 8]
        [--size 224x224] [--scenes-per-day 1000] [--window-h 10] [--episodes-per-task 10]
        [--episodes-per-shard 5] [--workers-per-machine 2] [--machine-price 0.067]
        [--machine "e2-standard-2, us-central1, on demand, list price of 2025"]
"""

from __future__ import annotations

import argparse
import heapq
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the collection benchmark's episodes
from collect import Job, export_scene, run_batch

TARGET_EFFICIENCY = 0.85
TARGET_P95_H = 2.0
SCENE = "kitchen_table"


@dataclass(frozen=True)
class Throughput:
    workers: int
    episodes: int
    wall_s: float
    episode_s: list[float]
    succeeded: int

    @property
    def per_hour(self) -> float:
        return self.episodes / self.wall_s * 3600


@dataclass(frozen=True)
class Workload:
    """What one scene asks of the fleet, and the stages around collection."""

    episodes_per_scene: int
    episodes_per_shard: int
    export_s: float
    import_s_per_episode: float
    upload_s: float


@dataclass(frozen=True)
class FleetDay:
    workers: int
    p50_h: float
    p95_h: float
    busy_h: float
    """Worker-hours of simulation the day needed."""
    last_done_h: float
    """When the last scene's dataset was out, from the start of the day."""


def measure(jobs: list[Job], workers: int) -> Throughput:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        # Warm up: one episode per robot and process (imports, robot models, hulls); what a
        # process still loads for the first time after this counts against it.
        first = {job.robot: job for job in jobs}
        warm = [replace(j, out_dir=f"{j.out_dir}-warm") for j in first.values()]
        run_batch(
            pool, [replace(j, out_dir=f"{j.out_dir}{k}") for j in warm for k in range(workers)]
        )
        wall, results = run_batch(pool, jobs)
    return Throughput(
        workers=workers,
        episodes=len(results),
        wall_s=wall,
        episode_s=[float(r["wall_s"]) for r in results],
        succeeded=sum(1 for r in results if r["success"]),
    )


def simulate_day(
    workers: int,
    workload: Workload,
    episode_s: list[float],
    arrivals_h: list[float],
    rng: random.Random,
) -> FleetDay:
    """One day of scenes through `workers` shard workers, first come first served."""
    free = [0.0] * workers  # when each worker is next free, in seconds of the day
    heapq.heapify(free)
    latencies: list[float] = []
    busy = 0.0
    last = 0.0
    for arrival in sorted(a * 3600 for a in arrivals_h):
        ready = arrival + workload.export_s
        done = ready
        left = workload.episodes_per_scene
        while left > 0:
            n = min(left, workload.episodes_per_shard)
            left -= n
            took = sum(rng.choice(episode_s) for _ in range(n))
            start = max(heapq.heappop(free), ready)
            heapq.heappush(free, start + took)
            busy += took
            done = max(done, start + took)
        out = done + workload.import_s_per_episode * workload.episodes_per_scene + workload.upload_s
        latencies.append(out - arrival)
        last = max(last, out)
    cuts = statistics.quantiles(latencies, n=100)
    return FleetDay(workers, cuts[49] / 3600, cuts[94] / 3600, busy / 3600, last / 3600)


def smallest_fleet(
    workload: Workload, episode_s: list[float], arrivals_h: list[float], target_h: float
) -> FleetDay:
    """The fewest workers whose p95 latency is under the target (the same day for each)."""
    low, high = 1, 1
    while _day(high, workload, episode_s, arrivals_h).p95_h >= target_h:
        low, high = high + 1, high * 2
    while low < high:
        middle = (low + high) // 2
        if _day(middle, workload, episode_s, arrivals_h).p95_h < target_h:
            high = middle
        else:
            low = middle + 1
    return _day(high, workload, episode_s, arrivals_h)


def _day(
    workers: int, workload: Workload, episode_s: list[float], arrivals: list[float]
) -> FleetDay:
    # The same draws for every fleet size: sizes are compared on one day, not on luck.
    return simulate_day(workers, workload, episode_s, arrivals, random.Random(7))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--robots", default="franka_panda,ur5e,ur10,fetch")
    parser.add_argument("--episodes", type=int, default=8, help="episodes per measurement")
    parser.add_argument("--size", default="224x224")
    parser.add_argument("--scenes-per-day", type=int, default=1000)
    parser.add_argument(
        "--window-h", type=float, default=10.0, help="the hours of the day in which scenes arrive"
    )
    parser.add_argument("--episodes-per-task", type=int, default=10)
    parser.add_argument("--episodes-per-shard", type=int, default=5)
    parser.add_argument("--workers-per-machine", type=int, default=2)
    parser.add_argument(
        "--machine-price", type=float, default=0.067, help="US dollars per machine-hour"
    )
    parser.add_argument(
        "--machine",
        default="e2-standard-2 (2 vCPU, 8 GB), us-central1, "
        "on demand; list price as of 2025, check before relying on it",
    )
    parser.add_argument("--export-s", type=float, default=9.2)
    parser.add_argument("--import-s-per-episode", type=float, default=1.26)
    parser.add_argument("--upload-s", type=float, default=0.7)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    os.environ.setdefault("LP_NUM_THREADS", "1")
    os.environ.setdefault("MUJOCO_GL", "egl")
    width, height = (int(v) for v in args.size.split("x"))
    robots = [r for r in args.robots.split(",") if r]
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bp-fleet-bench-") as tmp:
        folder = export_scene(SCENE, Path(tmp), robots)
        config = json.loads((folder / "task_config.json").read_text())
        kept = [(e["robot"], t) for e in config["robots"] for t in e["tasks"]]
        if not kept:
            print("the export kept no task for these robots", file=sys.stderr)
            return 1
        cycle = [kept[k % len(kept)] for k in range(args.episodes)]
        jobs = [
            Job(str(folder), task, robot, 2000 + k, str(Path(tmp) / f"e{k}"), width, height, True)
            for k, (robot, task) in enumerate(cycle)
        ]
        # Two first: whatever stays warm on disk (hull cache, page cache) then helps one as well.
        two = measure([replace(j, out_dir=j.out_dir + "-2") for j in jobs], 2)
        one = measure(jobs, 1)
    print(f"load after: {os.getloadavg()[0]:.2f} (1 min)")
    efficiency = two.per_hour / (2 * one.per_hour)
    for t in (one, two):
        print(
            f"{t.workers} worker(s): {t.episodes} episodes in {t.wall_s:.1f} s, "
            f"{t.per_hour:.0f} episodes/hour, {t.succeeded}/{t.episodes} succeeded"
        )
    verdict = "met" if efficiency >= TARGET_EFFICIENCY else "NOT met"
    print(
        f"scaling efficiency 1 -> 2 workers: {efficiency:.2f} "
        f"(target >= {TARGET_EFFICIENCY}: {verdict})"
    )

    per_scene = len(kept) * args.episodes_per_task
    workload = Workload(
        per_scene, args.episodes_per_shard, args.export_s, args.import_s_per_episode, args.upload_s
    )
    rng = random.Random(11)
    arrivals = [rng.uniform(0, args.window_h) for _ in range(args.scenes_per_day)]
    fleet = smallest_fleet(workload, one.episode_s, arrivals, TARGET_P95_H)
    machines = -(-fleet.workers // args.workers_per_machine)
    # The fleet scales to zero after the day's work: machines run until the last dataset is out.
    cost = machines * fleet.last_done_h * args.machine_price
    print(
        f"\nmodel: {args.scenes_per_day} scenes over {args.window_h:g} h, {per_scene} episodes "
        f"each ({len(kept)} kept robot-tasks x {args.episodes_per_task}), shards of "
        f"{args.episodes_per_shard}, mean episode {statistics.mean(one.episode_s):.1f} s"
    )
    print(
        f"  fleet for p95 < {TARGET_P95_H:g} h: {fleet.workers} workers on {machines} "
        f"machines ({args.workers_per_machine} per machine)"
    )
    print(f"  latency scene -> dataset: p50 {fleet.p50_h:.2f} h, p95 {fleet.p95_h:.2f} h")
    print(
        f"  simulation {fleet.busy_h:.0f} worker-hours; last dataset out at "
        f"{fleet.last_done_h:.1f} h"
    )
    print(
        f"  cost: {machines} x {fleet.last_done_h:.1f} h x ${args.machine_price}/h = "
        f"${cost:,.0f} per day ({args.machine})"
    )
    if args.json:
        report = {
            "measured": [t.__dict__ | {"per_hour": t.per_hour} for t in (one, two)],
            "efficiency": efficiency,
            "model": fleet.__dict__ | {"machines": machines, "cost_usd": cost},
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
