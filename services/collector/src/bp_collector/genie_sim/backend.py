"""Genie Sim behind the backend port: what the connected server offers, and episodes run on it.

The server is asked once what it offers: each robot the backend knows how to drive (the
collector's own robot models, and Genie Sim's G1/G2 family) is offered when the server accepts
it in init_robot. A robot it refuses is a `RobotNotOffered`, a permanent error. A server that
stops answering during an episode costs that attempt only: the backend reconnects, resets and
runs the episode again from the start, a few times, before it gives up with a transient error;
a half-written episode is never committed (its manifest is written last).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

from bp_episode_format import STREAMS
from bp_robot_models import ROBOT_IDS as SUPPORTED_ROBOTS
from bp_scene_contract import SceneGraph, TaskConfig

from bp_collector.backend import Capabilities, EpisodeOrder, EpisodeSummary
from bp_collector.genie_sim import wire
from bp_collector.genie_sim.client import GenieSimClient, GenieSimUnavailable, RobotNotOffered
from bp_collector.genie_sim.episode import run_episode
from bp_collector.mujoco.world import SUPPORTED_CAMERAS

log = logging.getLogger("bp.collector.genie_sim")

# Every camera of an observation travels in one message of at most 16 MB (Genie Sim's limit):
# three cameras of RGB, depth and labels at 640x480 fit.
MAX_IMAGE_SIDE = 640
MAX_FPS = 60
MAX_EPISODE_SECONDS = 120.0
ATTEMPTS = 3
RETRY_PAUSE_S = 2.0
SCENE_GRAPH = "scene_graph.json"
TASK_CONFIG = "task_config.json"


def write_scene_package(scene_dir: Path, graph: SceneGraph, tasks: TaskConfig) -> Path:
    """The scene as the server loads it: `<dir>/<scene>-<digest>/scene_graph.json` with its
    task config beside it, written once per content (atomic), so repeated episodes reuse it."""
    graph_json = graph.model_dump_json(indent=2)
    tasks_json = tasks.model_dump_json(indent=2)
    digest = hashlib.sha256(f"{graph_json}\n{tasks_json}".encode()).hexdigest()[:16]
    folder = scene_dir / f"{wire.object_prim(graph.scene_id).rsplit('/', 1)[-1]}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in ((TASK_CONFIG, tasks_json), (SCENE_GRAPH, graph_json)):
        target = folder / name
        if not target.is_file():
            tmp = target.with_name(f".{name}.{os.getpid()}.tmp")
            tmp.write_text(text)
            tmp.replace(target)
    return (folder / SCENE_GRAPH).resolve()


class GenieSimBackend:
    """Episodes on a Genie Sim server (or `bp genie-sim serve`) at `address`, plaintext."""

    def __init__(
        self,
        address: str,
        scene_dir: Path,
        *,
        attempts: int = ATTEMPTS,
        retry_pause_s: float = RETRY_PAUSE_S,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.address = address
        self.scene_dir = scene_dir
        self.attempts = attempts
        self.retry_pause_s = retry_pause_s
        self.connect_timeout_s = connect_timeout_s
        self._client: GenieSimClient | None = None
        self._capabilities: Capabilities | None = None

    def _connect(self) -> GenieSimClient:
        if self._client is None:
            self._client = GenieSimClient(self.address, connect_timeout_s=self.connect_timeout_s)
        return self._client

    def _drop_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def offered_robots(self) -> tuple[str, ...]:
        """The robots the server accepts, asked one by one with init_robot on an empty stage."""
        client = self._connect()
        offered = []
        for robot in (*SUPPORTED_ROBOTS, *wire.GENIE_SIM_ROBOT_CONFIGS):
            try:
                client.init_robot(robot, "", (0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0), {})
            except RobotNotOffered:
                continue
            offered.append(robot)
        client.reset()
        return tuple(offered)

    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            self._capabilities = Capabilities(
                name="genie-sim",
                robots=self.offered_robots(),
                cameras=SUPPORTED_CAMERAS,
                streams=STREAMS,
                max_image_side=MAX_IMAGE_SIDE,
                max_fps=MAX_FPS,
                max_episode_seconds=MAX_EPISODE_SECONDS,
            )
        return self._capabilities

    def run_episode(self, order: EpisodeOrder, out_dir: Path) -> EpisodeSummary:
        offered = self.capabilities().robots
        if order.robot not in offered:
            raise RobotNotOffered(
                f"the Genie Sim server at {self.address} does not offer robot {order.robot!r};"
                f" it offers {', '.join(offered) or 'none'}",
                robot=order.robot,
            )
        if order.robot not in SUPPORTED_ROBOTS:
            raise RobotNotOffered(
                f"robot {order.robot!r} is offered by the server, but this collector has no"
                " kinematic model to plan its episodes with (docs/decisions/0020)",
                robot=order.robot,
            )
        scene_path = str(write_scene_package(self.scene_dir, order.scene, order.tasks))
        for attempt in range(1, self.attempts + 1):
            try:
                summary = run_episode(self._connect(), order, out_dir, scene_path)
            except GenieSimUnavailable as exc:
                self._drop_client()
                if attempt == self.attempts:
                    raise
                log.warning(
                    "episode %s attempt %d: %s; again on a fresh reset",
                    order.episode_id,
                    attempt,
                    exc,
                )
                time.sleep(self.retry_pause_s)
                continue
            if summary.episode_id != order.episode_id:
                raise RuntimeError(
                    f"episode recorded as {summary.episode_id}, ordered as {order.episode_id}"
                )
            return summary
        raise AssertionError("unreachable: the last attempt returns or raises")

    def close(self) -> None:
        self._drop_client()
