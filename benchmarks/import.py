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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--frames", type=int, default=300, help="frames per episode (10 s)")
    parser.add_argument("--size", type=int, default=224, help="camera width and height")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-lerobot", action="store_true")
    args = parser.parse_args()
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
    if len(sys.argv) == 5 and sys.argv[1] == "--lerobot-worker":
        wall, cpu = run_lerobot(
            json.loads(Path(sys.argv[2]).read_text()), Path(sys.argv[3]), sys.argv[4]
        )
        print(json.dumps({"seconds": wall, "cpu_seconds": cpu}))
    else:
        main()
