"""The backend port: what a simulator offers, and one episode order run into a raw episode.

A backend owns a simulator. The service plans jobs and validates requests against a backend's
`Capabilities`; a simulation process hands the backend one `EpisodeOrder` at a time, and the
backend writes the episode folder in the raw episode format (bp_episode_format,
docs/raw-episode-format.md), committed by its manifest, and returns its `EpisodeSummary`. A
failed attempt (missed grasp, diverged physics) is still an episode with `success: false`; only
inputs the backend cannot run raise, and a `PermanentError` says retrying cannot help.

Nothing else crosses the port: the service never imports a simulator, and a backend knows
nothing of jobs, gRPC or where its orders come from. Backends are chosen by name through the
registry (bp_collector.backends).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bp_scene_contract import SceneGraph, TaskConfig

from bp_collector.camera_placement import Placement


@dataclass(frozen=True)
class Capabilities:
    """What a backend can run: its robots and cameras, and the limits of one episode."""

    name: str
    """The registry name, e.g. "mujoco"."""
    robots: tuple[str, ...]
    cameras: tuple[str, ...]
    streams: tuple[str, ...]
    """What every camera records (see the raw episode format)."""
    max_image_side: int
    max_fps: int
    max_episode_seconds: float


@dataclass(frozen=True)
class EpisodeOrder:
    """One episode to run: the scene and its tasks, a task, a robot, a seed and the cameras."""

    episode_id: str
    scene: SceneGraph
    tasks: TaskConfig
    task_id: str
    robot: str
    seed: int
    cameras: tuple[str, ...]
    width: int
    height: int
    fps: int
    max_seconds: float
    fovy_deg: float = 0.0
    """Vertical field of view of the fixed cameras, degrees; 0 keeps each camera's own."""
    placements: Mapping[str, Placement] = field(default_factory=dict)
    """Fixed cameras placed for this order (bp_collector.camera_placement); others keep theirs."""


@dataclass(frozen=True)
class EpisodeSummary:
    """What a run recorded, beside the episode folder itself (its manifest says the rest)."""

    episode_id: str
    success: bool
    reason: str
    n_frames: int
    collision_count: int
    peak_collision_force_n: float
    timings_s: Mapping[str, float] = field(default_factory=dict)


class Backend(Protocol):
    """A simulator behind the collector."""

    def capabilities(self) -> Capabilities: ...

    def run_episode(self, order: EpisodeOrder, out_dir: Path) -> EpisodeSummary:
        """Run `order` into the raw episode folder `out_dir`, committed last by its manifest."""
        ...

    def close(self) -> None:
        """Let go of the simulator (a process, a connection); the backend is not used again."""
        ...


def episode_id_for(scene_id: str, task_id: str, robot: str, seed: int) -> str:
    """A stable id, so that re-running the same episode overwrites rather than duplicates."""
    raw = f"{scene_id}.{task_id}.{robot}.s{seed}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", raw)
