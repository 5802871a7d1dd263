"""Device check of a Genie Sim server: one episode per robot it offers, with timings.

For a GPU host running Genie Sim (Isaac Sim with cuRobo) beside the collector, not for CI; it
runs against `bp genie-sim serve` too. Prints what the server offers, then per robot the
episode's verdict, frames and where the time went (set-up calls, server calls, planning on the
twin, encoding), and the frames per second the whole round trip sustained.

    benchmarks/genie_sim_check.sh EXPORT_DIR [--address 127.0.0.1:50051] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", type=Path, help="an export folder (bp export)")
    parser.add_argument(
        "--address", default=os.environ.get("BP_GENIE_SIM_ADDRESS", "127.0.0.1:50051")
    )
    parser.add_argument("--scene-dir", type=Path, default=None, help="[BP_GENIE_SIM_SCENE_DIR]")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=224, help="image width and height")
    parser.add_argument("--fps", type=int, default=30)
    args = parser.parse_args()

    from bp_collector.backend import EpisodeOrder, episode_id_for
    from bp_collector.genie_sim.backend import GenieSimBackend
    from bp_scene_contract import read_scene_graph, read_task_config

    graph = read_scene_graph((args.export_dir / "scene_graph.json").read_bytes())
    tasks = read_task_config((args.export_dir / "task_config.json").read_bytes())
    env_dir = os.environ.get("BP_GENIE_SIM_SCENE_DIR")
    scene_dir = args.scene_dir or (Path(env_dir) if env_dir else Path(tempfile.mkdtemp()))
    backend = GenieSimBackend(args.address, scene_dir)
    t0 = time.perf_counter()
    offer = backend.capabilities()
    asked = time.perf_counter() - t0
    print(f"server {args.address}: robots {', '.join(offer.robots)} (asked in {asked:.1f}s)")
    out_root = Path(tempfile.mkdtemp(prefix="genie-sim-check-"))
    rows = []
    try:
        for assignment in tasks.robots:
            if not assignment.tasks:
                continue
            if assignment.robot not in offer.robots:
                print(f"{assignment.robot:<13} not offered by the server")
                continue
            task_id = assignment.tasks[0]
            order = EpisodeOrder(
                episode_id=episode_id_for(graph.scene_id, task_id, assignment.robot, 0),
                scene=graph,
                tasks=tasks,
                task_id=task_id,
                robot=assignment.robot,
                seed=0,
                cameras=("wrist", "overhead"),
                width=args.size,
                height=args.size,
                fps=args.fps,
                max_seconds=args.seconds,
            )
            summary = backend.run_episode(order, out_root / order.episode_id)
            t = summary.timings_s
            rows.append({"robot": assignment.robot, "task": task_id, **t})
            verdict = "success" if summary.success else "failure"
            print(
                f"{assignment.robot:<13} {task_id:<28} {verdict:<8} {summary.n_frames:>4} frames"
                f"  total {t['total']:6.1f}s  set-up {t['setup']:5.1f}s"
                f"  server {t['server']:6.1f}s  plan {t['plan']:5.1f}s  encode {t['encode']:5.1f}s"
                f"  {summary.n_frames / t['total']:5.1f} frames/s"
            )
    finally:
        backend.close()
    print(json.dumps(rows, indent=2))
    print(f"episodes in {out_root}")
    return 0 if rows else 1


if __name__ == "__main__":
    sys.exit(main())
