"""Benchmark the MuJoCo collector: episodes per hour, physics real-time factor, success rate.

Runs 10 s pick-and-place episodes with two cameras (wrist, overhead) at 224x224 recording RGB,
depth and segmentation, one simulation process per core, and in the same run a baseline of the
same episodes without cameras (physics, expert and state recording only), then prints both and
their ratio. Uses the export stage's sample scene examples/kitchen_table when it is there, else a
built-in table scene with a cube and a can (or any export output given with --scene-dir).

    .venv/bin/python benchmarks/collect.py [--episodes 20] [--workers 2] [--scene-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TARGET_EPISODES_PER_HOUR = 400
TARGET_SUCCESS = 0.8


@dataclass(frozen=True)
class Job:
    scene: str
    task_id: str
    robot: str
    seed: int
    out_dir: str
    seconds: float
    width: int
    height: int
    render: bool


def load_scene(robot: str, scene_dir: Path | None = None
               ) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """An exported scene (scene_graph.json + task_config.json), else the built-in table."""
    folder = scene_dir or REPO / "examples" / "kitchen_table"
    graph_file, config_file = folder / "scene_graph.json", folder / "task_config.json"
    if graph_file.is_file() and config_file.is_file():
        graph = json.loads(graph_file.read_text())
        config = json.loads(config_file.read_text())
        if any(r.get("robot") == robot for r in config.get("robots", [])):
            return str(folder), graph, config
    if scene_dir is not None:
        raise SystemExit(f"{scene_dir} has no scene_graph.json and task_config.json for {robot}")
    from bp_collector.demo_scenes import tabletop_scene

    graph, config = tabletop_scene(robot)
    return "built-in tabletop (table, cube, can)", graph, config


_SCENE: dict[str, Any] = {}


def _worker_init(robot: str, scene_dir: Path | None) -> None:
    from bp_scene_contract import read_scene_graph, read_task_config

    _, graph, config = load_scene(robot, scene_dir)
    _SCENE["graph"], _SCENE["config"] = read_scene_graph(graph), read_task_config(config)


def run_job(job: Job) -> dict[str, Any]:
    from bp_collector.mujoco.episode import simulate_episode

    t0 = time.perf_counter()
    result = simulate_episode(
        _SCENE["graph"], _SCENE["config"], job.robot, job.task_id, job.seed,
        Path(job.out_dir), ("wrist", "overhead"), job.width, job.height, 30, job.seconds,
        stop_when_done=False, render=job.render)
    return {"success": result.success, "reason": result.reason, "frames": result.n_frames,
            "collisions": result.collision_count, "wall_s": time.perf_counter() - t0,
            **{f"t_{k}": v for k, v in result.timings_s.items()}}


def run_batch(jobs: list[Job], workers: int, robot: str, scene_dir: Path | None
              ) -> tuple[float, list[dict[str, Any]]]:
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_init,
                             initargs=(robot, scene_dir)) as pool:
        # Warm the workers up (imports, GL context) outside the timed region.
        list(pool.map(_noop, range(workers)))
        start = time.perf_counter()
        results = list(pool.map(run_job, jobs))
        return time.perf_counter() - start, results


def _noop(_: int) -> None:
    import bp_collector.mujoco.episode  # noqa: F401


def summarise(name: str, wall: float, results: list[dict[str, Any]], seconds: float,
              cameras: int) -> dict[str, Any]:
    n = len(results)
    frames = sum(r["frames"] for r in results)
    physics = sum(r["t_physics"] for r in results)
    render = sum(r["t_render"] for r in results)
    return {
        "name": name,
        "episodes": n,
        "wall_s": round(wall, 2),
        "episodes_per_hour": round(n / wall * 3600, 1),
        "success_rate": round(sum(r["success"] for r in results) / n, 3),
        "simulated_s": round(frames / 30, 1),
        "real_time_factor_end_to_end": round(frames / 30 / wall, 2),
        "physics_real_time_factor_per_process": (round(frames / 30 / physics, 1)
                                                 if physics else None),
        "camera_frames_per_s_per_process": round(frames * cameras / render, 1) if render else None,
        "mean_episode_wall_s": round(statistics.mean(r["wall_s"] for r in results), 2),
        "mean_seconds_per_episode": seconds,
        "failures": sorted({r["reason"] for r in results if not r["success"]}),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--baseline-episodes", type=int, default=None,
                        help="episodes for the no-camera baseline (default: same as --episodes)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=224)
    parser.add_argument("--height", type=int, default=224)
    parser.add_argument("--robot", default="franka_panda")
    parser.add_argument("--scene-dir", type=Path, default=None,
                        help="an export output folder (default: examples/kitchen_table when it "
                             "has scene_graph.json, else a built-in table scene)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)

    # One simulation per core: keep Mesa's software rasteriser to one thread per process.
    os.environ.setdefault("LP_NUM_THREADS", "1")
    os.environ.setdefault("MUJOCO_GL", "egl")
    scene_name, _, config = load_scene(args.robot, args.scene_dir)
    assigned = next(r["tasks"] for r in config["robots"] if r["robot"] == args.robot)
    tasks = [t["task_id"] for t in config["tasks"]
             if t["kind"] == "pick_place" and t["task_id"] in assigned]
    if not tasks:
        print("no pick-and-place task in the scene", file=sys.stderr)
        return 2
    baseline_n = args.baseline_episodes or args.episodes
    with tempfile.TemporaryDirectory(prefix="bp-collect-bench-") as tmp:
        def jobs(n: int, render: bool, tag: str) -> list[Job]:
            return [Job(scene_name, tasks[i % len(tasks)], args.robot, i,
                        str(Path(tmp) / f"{tag}-{i:04d}"), args.seconds, args.width,
                        args.height, render) for i in range(n)]

        wall_b, base = run_batch(jobs(baseline_n, False, "baseline"), args.workers, args.robot,
                                 args.scene_dir)
        wall_r, full = run_batch(jobs(args.episodes, True, "full"), args.workers, args.robot,
                                 args.scene_dir)
        size = sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file()
                   and "full-" in str(f))
    recorded = summarise("2 cameras x (RGB + depth + segmentation)", wall_r, full, args.seconds, 2)
    baseline = summarise("baseline: physics + expert + state, no cameras", wall_b, base,
                         args.seconds, 0)
    report = {
        "scene": scene_name, "robot": args.robot, "tasks": tasks, "workers": args.workers,
        "cpu_count": os.cpu_count(), "image": f"{args.width}x{args.height}",
        "episode_seconds": args.seconds, "recorded": recorded, "baseline": baseline,
        "ratio_recorded_to_baseline_throughput": round(
            recorded["episodes_per_hour"] / baseline["episodes_per_hour"], 3),
        "mean_episode_size_mb": round(size / max(1, args.episodes) / 1e6, 2),
        "targets": {"episodes_per_hour": TARGET_EPISODES_PER_HOUR,
                    "success_rate": TARGET_SUCCESS},
    }
    print(f"scene: {scene_name}; robot {args.robot}; {len(tasks)} pick-and-place tasks; "
          f"{args.workers} worker process(es) on {os.cpu_count()} cores")
    for block in (recorded, baseline):
        print(f"\n{block['name']}: {block['episodes']} episodes of {args.seconds:g} s "
              f"in {block['wall_s']} s")
        print(f"  episodes/hour               {block['episodes_per_hour']}")
        print(f"  success rate                {block['success_rate']:.0%}")
        print(f"  real-time factor (overall)  {block['real_time_factor_end_to_end']}x")
        print(f"  physics real-time factor    {block['physics_real_time_factor_per_process']}x "
              "per process (physics steps alone)")
        if block["camera_frames_per_s_per_process"]:
            print(f"  rendering                   {block['camera_frames_per_s_per_process']} "
                  "camera frames/s per process (RGB+depth+seg each)")
        if block["failures"]:
            print(f"  failure reasons             {block['failures']}")
    print(f"\nrecorded / baseline throughput: {report['ratio_recorded_to_baseline_throughput']}")
    print(f"episode size on disk: {report['mean_episode_size_mb']} MB")
    ok = (recorded["episodes_per_hour"] >= TARGET_EPISODES_PER_HOUR
          and recorded["success_rate"] >= TARGET_SUCCESS)
    print(f"targets (>= {TARGET_EPISODES_PER_HOUR} episodes/hour, >= {TARGET_SUCCESS:.0%} "
          f"success): {'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
