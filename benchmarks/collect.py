"""Benchmark the MuJoCo collector on the sample scenes: episodes per hour and success, per robot.

Exports examples/kitchen_table and examples/cabinet with the export stage's own code, then, for
every robot the export kept tasks for and at every image size asked (224x224 and 640x480 by
default), runs episodes over those kept tasks the way the pipeline does (wrist and overhead
cameras recording RGB, depth and segmentation, stopping when the expert is done, at most
10 s), one simulation process per core. In the same run it measures a baseline of the same
episodes without cameras, and prints every figure beside the targets: at least 800 episodes per
hour at 224x224 and at least 80 % success on the kept tasks.

    .venv/bin/python benchmarks/collect.py [--episodes-per-task 2] [--workers 2]
        [--sizes 224x224,640x480] [--robots franka_panda,ur5e] [--scenes kitchen_table]
        [--seeds 1-6]

`--seeds` runs every kept task on those seeds (instead of `--episodes-per-task` seeds from
1000), and each run prints its success per task.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCENES = ("kitchen_table", "cabinet")
TARGET_EPISODES_PER_HOUR = 800
TARGET_SUCCESS = 0.8


@dataclass(frozen=True)
class Job:
    export_dir: str
    task_id: str
    robot: str
    seed: int
    out_dir: str
    width: int
    height: int
    render: bool


def export_scene(name: str, out: Path, robots: list[str]) -> Path:
    from bp_export.export import export_scene as run_export

    folder = out / name
    outputs = run_export(
        REPO / "examples" / name / "scene.usda",
        name,
        environment="local",
        require_embeddings=False,
        robots=robots,
    )
    folder.mkdir(parents=True)
    for file, data in outputs.files.items():
        (folder / file).write_bytes(data)
    return folder


_DOCUMENTS: dict[str, Any] = {}


def run_job(job: Job) -> dict[str, Any]:
    from bp_collector.mujoco.episode import simulate_episode
    from bp_scene_contract import read_scene_graph, read_task_config

    if job.export_dir not in _DOCUMENTS:
        folder = Path(job.export_dir)
        _DOCUMENTS[job.export_dir] = (
            read_scene_graph((folder / "scene_graph.json").read_bytes()),
            read_task_config((folder / "task_config.json").read_bytes()),
        )
    graph, config = _DOCUMENTS[job.export_dir]
    t0 = time.perf_counter()
    result = simulate_episode(
        graph, config, job.robot, job.task_id, job.seed, Path(job.out_dir),
        ("wrist", "overhead"), job.width, job.height, 30, 10.0, render=job.render)
    return {"task": job.task_id, "success": result.success, "reason": result.reason,
            "frames": result.n_frames,
            "wall_s": time.perf_counter() - t0,
            **{f"t_{k}": v for k, v in result.timings_s.items()}}


def _warm(_: int) -> None:
    import bp_collector.mujoco.episode  # noqa: F401


def run_batch(pool: ProcessPoolExecutor, jobs: list[Job]) -> tuple[float, list[dict[str, Any]]]:
    start = time.perf_counter()
    results = list(pool.map(run_job, jobs))
    return time.perf_counter() - start, results


def summarise(wall: float, results: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(results)
    frames = sum(r["frames"] for r in results)
    render = sum(r["t_render"] for r in results)
    return {
        "episodes": n,
        "wall_s": round(wall, 2),
        "episodes_per_hour": round(n / wall * 3600, 1) if wall else None,
        "success_rate": round(sum(r["success"] for r in results) / n, 3) if n else None,
        "mean_episode_s_simulated": round(frames / 30 / n, 2) if n else None,
        "camera_frames_per_s_per_process": round(frames * 2 / render, 1) if render else None,
        "failures": sorted({r["reason"] for r in results if not r["success"]}),
        "per_task": {
            task: f"{sum(r['success'] for r in results if r['task'] == task)}"
            f"/{sum(r['task'] == task for r in results)}"
            for task in sorted({r["task"] for r in results})
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--episodes-per-task", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--sizes", default="224x224,640x480")
    parser.add_argument("--robots", default="franka_panda,ur5e,ur10,fetch,gr1")
    parser.add_argument("--scenes", default=",".join(SCENES))
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument("--seeds", default="", help="seeds as FIRST-LAST (default: from 1000)")
    args = parser.parse_args(argv)
    if args.seeds:
        first, _, last = args.seeds.partition("-")
        seeds = list(range(int(first), int(last or first) + 1))
    else:
        seeds = [1000 + k for k in range(args.episodes_per_task)]

    # One simulation per core: keep Mesa's software rasteriser to one thread per process.
    os.environ.setdefault("LP_NUM_THREADS", "1")
    os.environ.setdefault("MUJOCO_GL", "egl")
    robots = [r for r in args.robots.split(",") if r]
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",") if s]
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores; "
          f"{args.workers} worker process(es)")
    report: dict[str, Any] = {"workers": args.workers, "cpu_count": os.cpu_count(), "runs": []}
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="bp-collect-bench-") as tmp, ProcessPoolExecutor(
        args.workers, mp_context=context
    ) as pool:
        list(pool.map(_warm, range(args.workers)))
        for scene in [s for s in args.scenes.split(",") if s]:
            folder = export_scene(scene, Path(tmp), robots)
            config = json.loads((folder / "task_config.json").read_text())
            for entry in config["robots"]:
                robot, kept = entry["robot"], entry["tasks"]
                if not kept:
                    print(f"\n{scene} / {robot}: the export kept no task")
                    continue
                for width, height in sizes:
                    def jobs(
                        render: bool, tag: str, folder: Path = folder, robot: str = robot,
                        kept: list[str] = kept, scene: str = scene, w: int = width,
                        h: int = height,
                    ) -> list[Job]:
                        return [
                            Job(str(folder), task, robot, seed, str(
                                Path(tmp) / f"{tag}-{scene}-{robot}-{w}-{i}-{seed}"), w, h, render)
                            for i, task in enumerate(kept)
                            for seed in seeds
                        ]

                    recorded = summarise(*run_batch(pool, jobs(True, "full")))
                    run = {"scene": scene, "robot": robot, "size": f"{width}x{height}",
                           "kept_tasks": len(kept), "recorded": recorded}
                    if not args.no_baseline and (width, height) == sizes[0]:
                        run["baseline_no_cameras"] = summarise(*run_batch(pool, jobs(False, "b")))
                    report["runs"].append(run)
                    print(f"\n{scene} / {robot} / {width}x{height}: {recorded['episodes']} "
                          f"episodes over {len(kept)} kept tasks in {recorded['wall_s']} s")
                    print(f"  episodes/hour      {recorded['episodes_per_hour']}")
                    print(f"  success rate       {recorded['success_rate']:.0%}")
                    print(f"  rendering          {recorded['camera_frames_per_s_per_process']} "
                          "camera frames/s per process (RGB + depth + segmentation each)")
                    if "baseline_no_cameras" in run:
                        base = run["baseline_no_cameras"]
                        print(f"  no-camera baseline {base['episodes_per_hour']} episodes/hour")
                    print(f"  success per task   {recorded['per_task']}")
                    if recorded["failures"]:
                        print(f"  failure reasons    {recorded['failures']}")
    print(f"\nload after: {os.getloadavg()[0]:.2f} (1 min)")
    small = [r for r in report["runs"] if r["size"] == "224x224"]
    if small:
        total = sum(r["recorded"]["episodes"] for r in small)
        wall = sum(r["recorded"]["wall_s"] for r in small)
        success = sum(r["recorded"]["success_rate"] * r["recorded"]["episodes"] for r in small)
        report["overall_224"] = {"episodes_per_hour": round(total / wall * 3600, 1),
                                 "success_rate": round(success / total, 3)}
        ok = (report["overall_224"]["episodes_per_hour"] >= TARGET_EPISODES_PER_HOUR
              and report["overall_224"]["success_rate"] >= TARGET_SUCCESS)
        print(f"224x224 over every scene and robot: {report['overall_224']['episodes_per_hour']} "
              f"episodes/hour, {report['overall_224']['success_rate']:.0%} success; targets "
              f"(>= {TARGET_EPISODES_PER_HOUR}/hour, >= {TARGET_SUCCESS:.0%}): "
              f"{'met' if ok else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
