"""Benchmark writing LeRobot v3.0: our writer against lerobot 0.6.1 and against encoding alone.

All three write the same episodes (two cameras, 224x224, 30 fps by default; synthetic but
plausible: smooth joint trajectories, textured floor, moving coloured squares), read from the
same memory-mapped arrays, with the same codec settings (H.264, yuv420p, crf 23, preset veryfast,
keyframe every 2 frames, no B-frames):

  (a) ours     bp_import's LeRobotDatasetWriter (stats, parquet, metadata, card), no ground truth
  (b) lerobot  LeRobotDataset.create / add_frame / save_episode / finalize in lerobot 0.6.1, run
               in the conformance tool's Python 3.12 environment; both its recording modes:
               `png` (frames to PNG by 4 writer threads, then encoded; its default path) and
               `streaming` (streaming_encoding=True: frames fed to encoder threads)
  (c) floor    PyAV alone: the same frames into one MP4 per camera, cameras on parallel threads

Frames per second count dataset frames (each holds one image per camera). Each variant runs
`--repeat` times, interleaved, and its fastest run counts (the machine is shared); CPU seconds
(all threads and child processes) are printed too, being less sensitive to other load.
Targets: ours >= 3x lerobot's faster mode, and ours within 1.3x of the floor's time.

    .venv/bin/python benchmarks/import.py [--episodes 8] [--frames 300] [--size 224] [--repeat 3]

Two more modes measure long work on raw episodes written by the collector's own episode writer
(one MuJoCo episode of the tabletop demo scene, its states replayed under other ids, with
generated images, depth and segmentation):

  --memory 100,1000   resident memory of a whole import (validation, metrics, gates, dataset,
                      ground truth, reports, analytics) of each count of episodes, each count in
                      a fresh process, sampled every 50 ms; tiny images (at most 32x32), so
                      1,000 episodes fit the disk. Prints both peaks and the growth
                      per episode. Target: the larger count within 5 % of the smaller.
  --ground-truth      frames/s of the dataset writer alone (RGB only, decoded and encoded
                      again: the baseline), of the writer copying the RGB packets, of the
                      writer with the ground-truth pack (depth, segmentation, boxes, cameras;
                      RGB copied, as the import does), and of the whole import, on the same raw
                      episodes, in the same run; `--profile` adds a cProfile of the
                      ground-truth run (its stream jobs run inline, so one thread sees them).
                      Target: ground truth on >= 500 frames/s.

    .venv/bin/python benchmarks/import.py --memory 100,1000
    .venv/bin/python benchmarks/import.py --ground-truth --episodes 10 --seconds 4 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
LEROBOT_PYTHON = (
    Path(
        os.environ.get(
            "LEROBOT_CONFORMANCE_VENV", Path.home() / ".cache/lerobot-conformance/venv-0.6.1"
        )
    )
    / "bin/python"
)
TARGET_VS_LEROBOT = 3.0
TARGET_VS_FLOOR = 1.3
TARGET_MEMORY_GROWTH = 0.05
CODEC: dict[str, Any] = {"crf": 23, "preset": "veryfast", "g": 2, "bf": 0}


def prepare(folder: Path, episodes: int, frames: int, size: int) -> dict[str, Any]:
    """Render the episodes once into .npy files every variant memory-maps."""
    from bp_import.lerobot.synthetic_episodes import synthetic_episode, synthetic_spec

    folder.mkdir(parents=True, exist_ok=True)
    spec = synthetic_spec(width=size, height=size)
    manifest: dict[str, Any] = {
        "fps": spec.fps,
        "robot_type": spec.robot_type,
        "width": size,
        "height": size,
        "state_names": list(spec.state_names),
        "action_names": list(spec.action_names),
        "cameras": [c.name for c in spec.cameras],
        "episodes": [],
    }
    for index in range(episodes):
        task = ("put the red cube in the bin", "open the top drawer")[index % 2]
        episode = synthetic_episode(spec, frames, seed=index, task=task, ground_truth=False)
        entry: dict[str, Any] = {
            "task": task,
            "state": str(folder / f"{index}_state.npy"),
            "action": str(folder / f"{index}_action.npy"),
            "rgb": {},
        }
        np.save(entry["state"], np.asarray(episode.state, dtype=np.float32))
        np.save(entry["action"], np.asarray(episode.action, dtype=np.float32))
        for name, camera in episode.cameras.items():
            entry["rgb"][name] = str(folder / f"{index}_{name}.npy")
            np.save(entry["rgb"][name], np.stack(list(camera.rgb)))
        manifest["episodes"].append(entry)
    return manifest


def load(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """Memory-mapped episodes, their pages touched so no variant pays for the first read."""
    loaded = []
    for entry in manifest["episodes"]:
        rgb = {name: np.load(path, mmap_mode="r") for name, path in entry["rgb"].items()}
        for frames in rgb.values():
            frames.sum(dtype=np.uint64)
        loaded.append(
            {
                "task": entry["task"],
                "state": np.load(entry["state"]),
                "action": np.load(entry["action"]),
                "rgb": rgb,
            }
        )
    return loaded


def cpu_seconds() -> float:
    """CPU time of this process and its finished children, all threads (encoder threads too)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def total_frames(manifest: dict[str, Any]) -> int:
    return sum(len(np.load(e["state"], mmap_mode="r")) for e in manifest["episodes"])


def run_ours(manifest: dict[str, Any], out: Path) -> tuple[float, float]:
    from bp_import.lerobot.episode_frames import (
        CameraFrames,
        CameraSpec,
        DatasetSpec,
        EpisodeFrames,
    )
    from bp_import.lerobot.video_encoding import VideoSettings
    from bp_import.lerobot.writer import LeRobotDatasetWriter

    spec = DatasetSpec(
        robot_type=manifest["robot_type"],
        fps=manifest["fps"],
        state_names=tuple(manifest["state_names"]),
        action_names=tuple(manifest["action_names"]),
        cameras=tuple(
            CameraSpec(n, manifest["width"], manifest["height"]) for n in manifest["cameras"]
        ),
    )
    episodes = load(manifest)
    settings = VideoSettings(crf=CODEC["crf"], preset=CODEC["preset"], gop=CODEC["g"])
    start, cpu = time.perf_counter(), cpu_seconds()
    writer = LeRobotDatasetWriter(out, spec, video=settings)
    for e in episodes:
        writer.add_episode(
            EpisodeFrames(
                task=e["task"],
                state=e["state"],
                action=e["action"],
                cameras={name: CameraFrames(rgb=frames) for name, frames in e["rgb"].items()},
            )
        )
    writer.finalize()
    return time.perf_counter() - start, cpu_seconds() - cpu


def run_floor(manifest: dict[str, Any], out: Path) -> tuple[float, float]:
    """PyAV alone: every camera's frames, all episodes, into one MP4, cameras in parallel."""
    from concurrent.futures import ThreadPoolExecutor
    from fractions import Fraction

    import av

    episodes = load(manifest)
    fps, width, height = manifest["fps"], manifest["width"], manifest["height"]
    options = {k: str(v) for k, v in CODEC.items()}

    def encode(camera: str) -> None:
        container = av.open(str(out / f"{camera}.mp4"), mode="w")
        stream = container.add_stream("libx264", rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        pts = 0
        for e in episodes:
            for rgb in e["rgb"][camera]:
                frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(rgb), format="rgb24")
                frame.pts, frame.time_base = pts, Fraction(1, fps)
                container.mux(stream.encode(frame))
                pts += 1
        container.mux(stream.encode(None))
        container.close()

    out.mkdir(parents=True, exist_ok=True)
    start, cpu = time.perf_counter(), cpu_seconds()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(encode, manifest["cameras"]))
    return time.perf_counter() - start, cpu_seconds() - cpu


def run_lerobot(manifest: dict[str, Any], out: Path, mode: str) -> tuple[float, float]:
    """Runs inside lerobot's environment (see main): its own recording API, frame by frame."""
    from lerobot.configs.video import RGBEncoderConfig
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    episodes = load(manifest)
    h, w = manifest["height"], manifest["width"]
    features: dict[str, Any] = {
        "observation.state": {
            "dtype": "float32",
            "shape": (len(manifest["state_names"]),),
            "names": manifest["state_names"],
        },
        "action": {
            "dtype": "float32",
            "shape": (len(manifest["action_names"]),),
            "names": manifest["action_names"],
        },
    }
    for camera in manifest["cameras"]:
        features[f"observation.images.{camera}"] = {
            "dtype": "video",
            "shape": (h, w, 3),
            "names": ["height", "width", "channels"],
        }
    encoder = RGBEncoderConfig(
        vcodec="h264",
        crf=CODEC["crf"],
        preset=CODEC["preset"],
        g=CODEC["g"],
        extra_options={"bf": CODEC["bf"]},
    )
    start, cpu = time.perf_counter(), cpu_seconds()
    dataset = LeRobotDataset.create(
        "local/benchmark",
        fps=manifest["fps"],
        features=features,
        root=out,
        robot_type=manifest["robot_type"],
        rgb_encoder=encoder,
        image_writer_threads=4 if mode == "png" else 0,
        streaming_encoding=mode == "streaming",
    )
    for e in episodes:
        for i in range(len(e["state"])):
            frame: dict[str, Any] = {
                "observation.state": e["state"][i],
                "action": e["action"][i],
                "task": e["task"],
            }
            for camera, frames in e["rgb"].items():
                frame[f"observation.images.{camera}"] = np.asarray(frames[i])
            dataset.add_frame(frame)
        dataset.save_episode()
    dataset.finalize()
    return time.perf_counter() - start, cpu_seconds() - cpu


def lerobot_subprocess(manifest_path: Path, out: Path, mode: str) -> tuple[float, float]:
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(out.parent / "hf"),
    }
    done = subprocess.run(
        [str(LEROBOT_PYTHON), __file__, "--lerobot-worker", str(manifest_path), str(out), mode],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"lerobot ({mode}) failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), float(result["cpu_seconds"])


def conformance(root: Path) -> str:
    check = REPO.parent / "shared/tools/lerobot-conformance/check"
    done = subprocess.run([str(check), str(root)], capture_output=True, text=True, check=False)
    return done.stdout.strip().splitlines()[-1] if done.returncode == 0 else "INVALID"


# --- long work (issue 16): memory against the number of episodes, and the ground-truth pack ---


def raw_episodes(folder: Path, count: int, size: int, seconds: float) -> list[Path]:
    """`count` raw episodes written by the collector's own episode writer, tiny images.

    One episode is simulated (MuJoCo, the tabletop demo scene); the others replay its states
    under their own id and seed, with images whose brightness follows the frame number, so every
    frame and episode differs. Each is committed as the collector commits (manifest last).
    """
    from bp_collector.demo_scenes import tabletop_scene
    from bp_collector.mujoco.episode import simulate_episode
    from bp_collector.mujoco.recording import EpisodeWriter
    from bp_scene_contract import read_scene_graph, read_task_config

    graph, config = tabletop_scene("franka_panda")
    template = folder / "template"
    simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        "franka_panda",
        "pick_place_cube",
        0,
        template,
        width=size,
        height=size,
        max_seconds=seconds,
    )
    manifest = json.loads((template / "episode.json").read_text())
    with np.load(template / "states.npz") as npz:
        states = {k: npz[k] for k in npz.files}
    n = int(manifest["n_frames"])
    cameras = tuple(c["name"] for c in manifest["cameras"])
    ramp = np.linspace(0, 255, size)
    segmentation = (np.arange(size * size).reshape(size, size) % 4).astype(np.uint16)
    folders = []
    for index in range(count):
        target = folder / f"episode_{index:05d}"
        writer = EpisodeWriter(target, cameras, size, size, int(manifest["fps"]))
        for i in range(n):
            level = np.full((size, size), (i * 7 + index * 13) % 256)
            rgb = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], level), -1)
            depth = np.full((size, size), 500 + (i + index) % 1000, dtype=np.uint16)
            for camera in cameras:
                writer.add_images(i, camera, rgb.astype(np.uint8), depth, segmentation)
        writer.close_streams()
        writer.write_states(states)
        body = {k: v for k, v in manifest.items() if k != "files"}
        body.update(episode_id=f"{manifest['episode_id']}-{index:05d}", seed=index)
        writer.commit(body)
        folders.append(target)
    return folders


def import_peak(folders: list[Path], out: Path) -> dict[str, float]:
    """One robot's import of `folders` in this process: wall time, frames, peak RSS (MiB)."""
    from bp_import.import_config import LeRobotSettings, QualitySettings
    from bp_import.run_import import import_run

    # Every valid episode enters the dataset: the benchmark is about volume, not quality.
    quality = QualitySettings(
        min_score=0.0,
        require_success=False,
        min_success_rate=0.0,
        min_collision_free_rate=0.0,
        min_pass_rate=0.0,
    )
    import threading

    samples = [rss_mib()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            samples.append(rss_mib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    done = import_run(
        "bench",
        "run-bench",
        {"franka_panda": folders},
        out,
        quality,
        LeRobotSettings(),
        lambda robot: {"pipeline_version": "bench"},
    )
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    summary = done.imports["franka_panda"].summary
    if summary is None:
        raise SystemExit(f"nothing imported: {done.note()}")
    return {
        "episodes": summary.total_episodes,
        "frames": summary.total_frames,
        "seconds": seconds,
        "before_mib": samples[0],
        "peak_rss_mib": max(samples),
    }


def rss_mib() -> float:
    """This process's resident memory now (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def memory(counts: list[int], size: int, seconds: float) -> None:
    """Peak RSS of an import of each count of episodes, each in a fresh process."""
    work = Path(tempfile.mkdtemp(prefix="bp-import-memory-"))
    try:
        started = time.perf_counter()
        folders = raw_episodes(work / "raw", max(counts), size, seconds)
        print(
            f"  {len(folders)} raw episodes written in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
        )
        results = {}
        for count in counts:
            listing = work / f"episodes_{count}.json"
            listing.write_text(json.dumps([str(p) for p in folders[:count]]))
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--memory-worker",
                    str(listing),
                    str(work / f"out_{count}"),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0:
                raise SystemExit(f"import of {count} failed:\n{done.stderr[-3000:]}")
            results[count] = json.loads(done.stdout.strip().splitlines()[-1])
            shutil.rmtree(work / f"out_{count}", ignore_errors=True)
        print(
            f"import of one robot, 2 cameras {size}x{size} with depth and segmentation, "
            f"ground truth on; resident memory of a fresh process per count, sampled every 50 ms"
        )
        for count, r in results.items():
            print(
                f"{count:>6} episodes {int(r['frames']):>8} frames  "
                f"before {r['before_mib']:6.1f} MiB, peak {r['peak_rss_mib']:7.1f} MiB  "
                f"{r['frames'] / r['seconds']:7.1f} frames/s"
            )
        low, high = min(counts), max(counts)
        peak_low, peak_high = results[low]["peak_rss_mib"], results[high]["peak_rss_mib"]
        print(
            f"peak {high} / peak {low}: {peak_high / peak_low:.3f}x "
            f"for {high / low:.0f}x the episodes, "
            f"{(peak_high - peak_low) * 1024 / (high - low):.1f} KiB per episode more "
            f"(target: within {TARGET_MEMORY_GROWTH:.0%})"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


WRITER_MODES = ("writer, encoding", "writer, copying", "ground truth on")


def write_raw(folders: list[Path], out: Path, mode: str) -> tuple[float, int]:
    """The dataset writer on raw episodes as the import reads them: the RGB decoded and encoded
    again (`writer, encoding`), its packets copied (`writer, copying`), or copied with the
    ground-truth pack (depth, segmentation, boxes, cameras: `ground truth on`)."""
    from dataclasses import replace

    from bp_episode_format import read_episode
    from bp_import.episodes.adapter import dataset_spec, episode_frames
    from bp_import.episodes.selection import dataset_layout
    from bp_import.episodes.validation import RawEpisodeManifest
    from bp_import.lerobot.episode_frames import CameraFrames
    from bp_import.lerobot.writer import LeRobotDatasetWriter

    layout = dataset_layout(folders)
    assert layout is not None
    raws = [read_episode(p) for p in folders]
    start = time.perf_counter()
    writer = LeRobotDatasetWriter(
        out / "dataset",
        dataset_spec("franka_panda", layout),
        ground_truth_root=out / "ground_truth" if mode == "ground truth on" else None,
    )
    for raw in raws:
        frames = episode_frames(raw, RawEpisodeManifest.model_validate(raw.manifest))
        if mode != "ground truth on":
            frames = replace(
                frames,
                cameras={
                    n: CameraFrames(
                        rgb=c.rgb, rgb_file=c.rgb_file if mode == "writer, copying" else None
                    )
                    for n, c in frames.cameras.items()
                },
            )
        writer.add_episode(frames)
    summary = writer.finalize()
    return time.perf_counter() - start, summary.total_frames


class InlineExecutor:
    """Runs each submitted job at once on the calling thread (for cProfile)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        from concurrent.futures import Future

        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future

    def map(self, fn: Any, *iterables: Any) -> Any:
        return map(fn, *iterables)

    def shutdown(self, wait: bool = True, **kwargs: Any) -> None:
        pass


def ground_truth_throughput(
    episodes: int, size: int, seconds: float, repeat: int, profile: bool
) -> None:
    """Frames/s of the writer with the ground-truth pack against the writer alone, and of the
    whole import (validation, metrics, reports, analytics), on the same raw episodes."""
    work = Path(tempfile.mkdtemp(prefix="bp-import-gt-"))
    try:
        folders = raw_episodes(work / "raw", episodes, size, seconds)
        best: dict[str, float] = {}
        frames = 0
        for run in range(repeat):
            for name in (*WRITER_MODES, "whole import"):
                out = work / f"{name.replace(' ', '_').replace(',', '')}_{run}"
                if name == "whole import":
                    result = import_peak(folders, out)
                    wall, frames = result["seconds"], int(result["frames"])
                else:
                    wall, frames = write_raw(folders, out, name)
                best[name] = min(best.get(name, wall), wall)
                print(f"  run {run + 1} {name:<17} {frames / wall:8.1f} frames/s", file=sys.stderr)
                shutil.rmtree(out, ignore_errors=True)
        print(
            f"{episodes} raw episodes x {frames // episodes} frames, 2 cameras {size}x{size} "
            f"(rgb, depth, segmentation), {os.cpu_count()} cores; fastest of {repeat} runs"
        )
        for name, wall in best.items():
            print(f"{name:<17} {frames / wall:8.1f} frames/s  ({wall:.2f} s)")
        ratio = best["writer, encoding"] / best["ground truth on"]
        print(
            f"ground truth on (RGB copied) is {ratio:.2f}x"
            " as fast as the writer alone encoding the RGB again"
            " (target: ground truth on >= 500 frames/s)"
        )
        if profile:
            import cProfile
            import pstats

            # cProfile sees one thread: the writer's stream jobs run inline here instead.
            from bp_import.lerobot import writer as writer_module

            pool = getattr(writer_module, "ThreadPoolExecutor")  # noqa: B009
            setattr(writer_module, "ThreadPoolExecutor", InlineExecutor)  # noqa: B010
            try:
                profiler = cProfile.Profile()
                profiler.runcall(write_raw, folders, work / "profiled", "ground truth on")
            finally:
                setattr(writer_module, "ThreadPoolExecutor", pool)  # noqa: B010
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--frames", type=int, default=300, help="frames per episode (10 s)")
    parser.add_argument("--size", type=int, default=224, help="camera width and height")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-lerobot", action="store_true")
    parser.add_argument(
        "--memory",
        metavar="COUNTS",
        help="instead: peak memory of importing each count of raw episodes (e.g. 100,1000)",
    )
    parser.add_argument(
        "--ground-truth",
        action="store_true",
        help="instead: frames/s with the ground-truth pack against the writer alone",
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="raw episode length")
    parser.add_argument("--profile", action="store_true", help="cProfile the ground-truth run")
    args = parser.parse_args()
    if args.memory:
        memory([int(c) for c in args.memory.split(",")], min(args.size, 32), args.seconds)
        return
    if args.ground_truth:
        ground_truth_throughput(args.episodes, args.size, args.seconds, args.repeat, args.profile)
        return
    if not args.skip_lerobot and not LEROBOT_PYTHON.exists():
        raise SystemExit(
            f"{LEROBOT_PYTHON} missing: run ../shared/tools/lerobot-conformance/"
            "check on any dataset once to build it, or pass --skip-lerobot"
        )
    work = Path(tempfile.mkdtemp(prefix="bp-import-bench-"))
    try:
        manifest = prepare(work / "episodes", args.episodes, args.frames, args.size)
        manifest_path = work / "manifest.json"
        manifest_path.write_text(json.dumps(manifest))
        frames = total_frames(manifest)
        times: dict[str, list[tuple[float, float]]] = {"ours": [], "floor": []}
        if not args.skip_lerobot:
            times |= {"lerobot png": [], "lerobot streaming": []}
        for run in range(args.repeat):
            for name in times:
                out = work / f"{name.replace(' ', '_')}_{run}"
                if name == "ours":
                    result = run_ours(manifest, out)
                elif name == "floor":
                    result = run_floor(manifest, out)
                else:
                    result = lerobot_subprocess(manifest_path, out, name.split()[1])
                times[name].append(result)
                print(
                    f"  run {run + 1} {name:<18} {frames / result[0]:8.1f} frames/s, "
                    f"{result[1]:.2f} CPU s",
                    file=sys.stderr,
                )
                if run > 0 or name == "floor":
                    shutil.rmtree(out, ignore_errors=True)
        wall = {name: min(w for w, _ in runs) for name, runs in times.items()}
        cpu = {name: min(c for _, c in runs) for name, runs in times.items()}
        print(
            f"{args.episodes} episodes x {args.frames} frames, "
            f"{len(manifest['cameras'])} cameras {args.size}x{args.size}, "
            f"libx264 crf {CODEC['crf']} {CODEC['preset']} g {CODEC['g']}, "
            f"{os.cpu_count()} cores; fastest of {args.repeat} runs"
        )
        for name in times:
            print(
                f"{name:<18} {frames / wall[name]:8.1f} frames/s  ({wall[name]:.2f} s, "
                f"{cpu[name]:.2f} CPU s)"
            )
        print(
            f"ours / floor       {wall['ours'] / wall['floor']:.2f}x time, "
            f"{cpu['ours'] / cpu['floor']:.2f}x CPU  (target <= {TARGET_VS_FLOOR}x)"
        )
        if not args.skip_lerobot:
            faster = min(("lerobot png", "lerobot streaming"), key=wall.__getitem__)
            print(
                f"lerobot / ours     {wall[faster] / wall['ours']:.2f}x time, "
                f"{cpu[faster] / cpu['ours']:.2f}x CPU against its faster mode ({faster}; "
                f"png {wall['lerobot png'] / wall['ours']:.2f}x, streaming "
                f"{wall['lerobot streaming'] / wall['ours']:.2f}x; "
                f"target >= {TARGET_VS_LEROBOT}x)"
            )
        print(f"conformance of ours: {conformance(work / 'ours_0')}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--memory-worker":
        listing = [Path(p) for p in json.loads(Path(sys.argv[2]).read_text())]
        print(json.dumps(import_peak(listing, Path(sys.argv[3]))))
        raise SystemExit(0)
    if len(sys.argv) == 5 and sys.argv[1] == "--lerobot-worker":
        wall, cpu = run_lerobot(
            json.loads(Path(sys.argv[2]).read_text()), Path(sys.argv[3]), sys.argv[4]
        )
        print(json.dumps({"seconds": wall, "cpu_seconds": cpu}))
    else:
        main()
