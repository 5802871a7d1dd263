"""Raw episodes for the import tests: recorded by the real collector, then damaged on purpose.

Tests may use bp_collector (only the import service's code may not). Episodes are simulated
with tiny settings: 64x64 images, 30 fps, at most 2 s for the short ones (they end before the
task is done, so they fail it) and 12 s for two that succeed.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from bp_collector.demo_scenes import tabletop_scene
from bp_collector.mujoco.episode import simulate_episode
from bp_collector.mujoco.recording import EpisodeWriter, sha256_file
from bp_common.blobstore import BlobStore
from bp_common.contracts.events import EpisodesCollected, RobotEpisodes
from bp_scene_contract import read_scene_graph, read_task_config

WIDTH = HEIGHT = 64
FPS = 30
ROBOT = "franka_panda"
SCENE_ID = "tabletop"


@dataclass(frozen=True)
class RecordedEpisodes:
    """Originals, never modified: copy them (`copy_episode`) before changing anything."""

    succeeded: tuple[Path, Path]
    failed: tuple[Path, Path]
    one_frame: Path


def record_episodes(root: Path) -> RecordedEpisodes:
    graph, config = tabletop_scene(ROBOT)

    def run(task: str, seed: int, seconds: float) -> Path:
        out = root / f"{task}.s{seed}"
        simulate_episode(
            read_scene_graph(graph),
            read_task_config(config),
            ROBOT,
            task,
            seed,
            out,
            width=WIDTH,
            height=HEIGHT,
            fps=FPS,
            max_seconds=seconds,
        )
        return out

    return RecordedEpisodes(
        succeeded=(run("pick_place_cube", 4, 12.0), run("pick_place_can", 5, 12.0)),
        failed=(run("pick_place_cube", 1, 2.0), run("pick_place_can", 2, 2.0)),
        one_frame=run("pick_place_cube", 3, 1 / FPS),
    )


def record_short_episodes(root: Path, robot: str, seeds: Iterable[int]) -> list[Path]:
    """Episodes of another robot that end (2 s) before the cube is placed: they fail the task."""
    graph, config = tabletop_scene(robot)
    out = []
    for seed in seeds:
        folder = root / f"{robot}.pick_place_cube.s{seed}"
        simulate_episode(
            read_scene_graph(graph),
            read_task_config(config),
            robot,
            "pick_place_cube",
            seed,
            folder,
            width=WIDTH,
            height=HEIGHT,
            fps=FPS,
            max_seconds=2.0,
        )
        out.append(folder)
    return out


def copy_episode(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def manifest_of(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "episode.json").read_text()))


def recommit(folder: Path, manifest: dict[str, Any] | None = None) -> None:
    """What the collector's commit does: list every file with its sha256, manifest last."""
    body = manifest if manifest is not None else manifest_of(folder)
    body["files"] = [
        {
            "path": p.relative_to(folder).as_posix(),
            "sha256": sha256_file(p),
            "size": p.stat().st_size,
        }
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "episode.json"
    ]
    (folder / "episode.json").write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")


def states_of(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "states.npz") as npz:
        return {k: npz[k] for k in npz.files}


def write_states(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    (folder / "states.npz").write_bytes(buffer.getvalue())


def edit_states(change: Callable[[dict[str, np.ndarray]], None]) -> Callable[[Path], None]:
    """A corruption recorded as if the collector had written it (checksums stay right)."""

    def apply(folder: Path) -> None:
        arrays = states_of(folder)
        change(arrays)
        write_states(folder, arrays)
        recommit(folder)

    return apply


def edit_manifest(
    change: Callable[[dict[str, Any]], None], *, checksums: bool = True
) -> Callable[[Path], None]:
    def apply(folder: Path) -> None:
        manifest = manifest_of(folder)
        change(manifest)
        if checksums:
            recommit(folder, manifest)
        else:
            (folder / "episode.json").write_text(json.dumps(manifest))

    return apply


def long_episode(template: Path, target: Path, frames: int, size: int = 16) -> Path:
    """An episode of `frames` frames with tiny images, written by the collector's writer.

    The state cycles through the template's (timestamps stay i / fps); images are gradients
    whose brightness follows the frame number, so every frame differs.
    """
    manifest = manifest_of(template)
    arrays = states_of(template)
    n = arrays["frame_index"].shape[0]
    order = np.arange(frames) % n
    cameras = tuple(c["name"] for c in manifest["cameras"])
    writer = EpisodeWriter(target, cameras, size, size, FPS)
    ramp = np.linspace(0, 255, size, dtype=np.float64)
    for i in range(frames):
        level = (i * 7) % 256
        rgb = np.stack(
            np.broadcast_arrays(ramp[None, :], ramp[:, None], np.full((size, size), level)), -1
        ).astype(np.uint8)
        depth = np.full((size, size), 500 + i % 1000, dtype=np.uint16)
        segmentation = (np.arange(size * size).reshape(size, size) % 4).astype(np.uint16)
        for camera in cameras:
            writer.add_images(i, camera, rgb, depth, segmentation)
    writer.close_streams()
    out: dict[str, np.ndarray] = {}
    for name, array in arrays.items():
        if name.startswith("contact_"):
            out[name] = array[:0]
        elif array.shape[:1] == (n,):
            out[name] = array[order]
    out["frame_index"] = np.arange(frames, dtype=np.int64)
    out["timestamp"] = np.arange(frames) / FPS
    writer.write_states(out)
    for camera in manifest["cameras"]:
        camera["width"] = camera["height"] = size
    manifest.update(n_frames=frames, duration_s=frames / FPS, episode_id=target.name, success=True)
    manifest.pop("files")
    writer.commit(manifest)
    return target


def stage_episodes(
    blobs: BlobStore, run_prefix: str, robot: str, folders: Iterable[Path]
) -> RobotEpisodes:
    """Put episode folders where the submit stage commits them, with the robot's manifest."""
    prefix = f"{run_prefix}episodes/{robot}/"
    listed = []
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            blobs.write_bytes(
                prefix + f"{folder.name}/{path.relative_to(folder).as_posix()}", path.read_bytes()
            )
        listed.append({"episode_id": folder.name, "prefix": f"{folder.name}/"})
    manifest = {
        "format": "bp-robot-episodes",
        "format_version": 1,
        "robot": robot,
        "episodes": listed,
    }
    blobs.write_bytes(prefix + "manifest.json", json.dumps(manifest).encode())
    return RobotEpisodes(
        robot=robot,
        prefix=prefix,
        manifest=prefix + "manifest.json",
        episodes=len(listed),
        succeeded=0,
        collision_free=len(listed),
    )


def episodes_collected(
    scene_id: str, run_id: str, robots: list[RobotEpisodes]
) -> EpisodesCollected:
    return EpisodesCollected(
        scene_id=scene_id,
        run_id=run_id,
        bucket="local",
        episodes_prefix=f"runs/{scene_id}/{run_id}/episodes/",
        robots=robots,
    )
