"""Benchmark the learnability check: its training and evaluation time on the CPU.

Records `--demos` expert demonstrations of the tabletop cube pick-and-place (state only), then
runs `check_learnability` on them with `--held-out` unseen seeds, `--repeat` times; the fastest
run counts (the machine is shared) and CPU seconds are printed too. Target: training plus
evaluation within 120 s on this machine (2 cores), for the default sizes.

    .venv/bin/python benchmarks/learnability.py [--demos 10] [--fps 15] [--held-out 6] [--repeat 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from bp_collector.demo_scenes import tabletop_scene
from bp_collector.learnability.check import check_learnability
from bp_collector.mujoco.backend import MujocoBackend
from bp_collector.mujoco.episode import simulate_episode
from bp_scene_contract import read_scene_graph, read_task_config

TARGET_S = 120.0


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demos", type=int, default=10)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--held-out", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    graph, config = tabletop_scene("franka_panda")
    scene, tasks = read_scene_graph(graph), read_task_config(config)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        folders = []
        for seed in range(args.demos):
            folder = Path(tmp) / f"pick_place_cube.s{seed}"
            simulate_episode(
                scene,
                tasks,
                "franka_panda",
                "pick_place_cube",
                seed,
                folder,
                fps=args.fps,
                max_seconds=12.0,
                render=False,
            )
            folders.append(folder)
        recorded = time.perf_counter() - t0
        runs = []
        for _ in range(args.repeat):
            wall, cpu = time.perf_counter(), cpu_seconds()
            result = check_learnability(
                folders, scene, tasks, "franka_panda", MujocoBackend(), held_out=args.held_out
            )
            runs.append(
                {
                    "wall_s": round(time.perf_counter() - wall, 2),
                    "cpu_s": round(cpu_seconds() - cpu, 2),
                    "training_s": result.tasks[0].training_seconds,
                    "success_rate": result.success_rate,
                    "training_frames": result.tasks[0].training_frames,
                }
            )
    best = min(runs, key=lambda r: r["wall_s"])
    print(json.dumps({"demos_recorded_s": round(recorded, 2), "runs": runs}, indent=2))
    verdict = "within" if best["wall_s"] <= TARGET_S else "OVER"
    print(f"train + evaluate: {best['wall_s']} s ({verdict} the {TARGET_S:.0f} s target)")


if __name__ == "__main__":
    main()
