"""The genie-sim backend against `bp genie-sim serve`: a real server process on 127.0.0.1.

End to end: what the server offers, an episode recorded through Genie Sim's protocol that
reads back like a MuJoCo one and gets the same verdict as the MuJoCo backend on the same seed.
Failures: the server down at start, killed mid-episode (retried on a fresh reset), answering
something unexpected, and lacking the robot asked for; none of them commits an episode.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from bp_collector.backend import EpisodeOrder, episode_id_for
from bp_collector.demo_scenes import cabinet_scene, tabletop_scene
from bp_collector.genie_sim.backend import GenieSimBackend
from bp_collector.genie_sim.client import (
    GenieSimUnavailable,
    RobotNotOffered,
    UnexpectedAnswer,
    check_address,
)
from bp_collector.genie_sim.server.listener import GenieSimServer
from bp_collector.genie_sim.server.scene import Observed, SimulatedScene
from bp_collector.mujoco.backend import MujocoBackend
from bp_collector.mujoco.recording import MANIFEST, read_episode
from bp_collector.mujoco.rendering import CameraImages
from bp_common.errors import UnsafeConfiguration
from bp_robot_models import ROBOT_IDS
from bp_scene_contract import read_scene_graph, read_task_config

from tests.collector.conftest import FPS, HEIGHT, WIDTH
from tests.collector.genie_sim_server import ServerProcess, free_port


def order(
    task: str = "pick_place_cube", robot: str = "franka_panda", seed: int = 3, scene: str = "table"
) -> EpisodeOrder:
    graph, config = (tabletop_scene if scene == "table" else cabinet_scene)("franka_panda")
    g, c = read_scene_graph(graph), read_task_config(config)
    return EpisodeOrder(
        episode_id=episode_id_for(g.scene_id, task, robot, seed),
        scene=g,
        tasks=c,
        task_id=task,
        robot=robot,
        seed=seed,
        cameras=("wrist", "overhead"),
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        max_seconds=10.0,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(free_port(), tmp_path_factory.mktemp("server") / "serve.log")
    yield process
    process.stop()


@pytest.fixture
def backend(server: ServerProcess, tmp_path: Path) -> Iterator[GenieSimBackend]:
    made = GenieSimBackend(server.address, tmp_path / "scenes", retry_pause_s=0.1)
    yield made
    made.close()


def test_the_backend_lists_the_robots_and_cameras_the_server_offers(
    backend: GenieSimBackend,
) -> None:
    offer = backend.capabilities()
    assert offer.name == "genie-sim"
    # The MuJoCo-backed server has the collector's robots; Genie Sim's G1/G2 it refuses.
    assert offer.robots == ROBOT_IDS
    assert offer.cameras == ("wrist", "overhead", "front")


@pytest.mark.parametrize(
    ("task", "scene"), [("pick_place_cube", "table"), ("open_door", "cabinet")]
)
def test_the_same_task_and_seed_gets_the_same_verdict_through_genie_sim_and_mujoco(
    backend: GenieSimBackend, tmp_path: Path, task: str, scene: str
) -> None:
    wanted = order(task, scene=scene)
    through_genie = backend.run_episode(wanted, tmp_path / "genie")
    through_mujoco = MujocoBackend().run_episode(wanted, tmp_path / "mujoco")
    assert through_genie.success == through_mujoco.success
    assert through_genie.episode_id == through_mujoco.episode_id == wanted.episode_id
    assert through_genie.n_frames == through_mujoco.n_frames

    genie, mujoco = (read_episode(tmp_path / name) for name in ("genie", "mujoco"))
    # Import can tell the two apart only by the simulator that recorded them (and contact forces).
    assert set(genie.manifest) == set(mujoco.manifest)
    assert genie.manifest["simulator"]["name"] == "genie-sim"
    for key in ("state", "segmentation_ids", "cameras", "task_id", "fps", "n_frames"):
        assert genie.manifest[key] == mujoco.manifest[key], key
    with (
        np.load(tmp_path / "genie" / "states.npz") as a,
        np.load(tmp_path / "mujoco" / "states.npz") as b,
    ):
        # Contact forces come from MuJoCo's own contact solver; the part of Genie Sim's protocol
        # the backend speaks reports none, so its episodes leave the optional array out.
        assert set(b.files) - set(a.files) == {"fingertip_force_n"}
        assert set(a.files) <= set(b.files)
        for name in a.files:
            assert a[name].dtype == b[name].dtype, name
        # The same expert on the same physics: the arm follows the same path.
        for name in ("joint_position", "object_position", "articulation_position"):
            assert a[name].shape == b[name].shape, name
            assert np.allclose(a[name], b[name], atol=1e-3), name
    for camera in genie.cameras:
        assert (tmp_path / "genie" / "cameras" / camera / "rgb.mp4").stat().st_size > 0


def test_a_server_that_is_down_at_start_is_a_transient_error(tmp_path: Path) -> None:
    down = GenieSimBackend(f"127.0.0.1:{free_port()}", tmp_path, connect_timeout_s=1.0)
    with pytest.raises(GenieSimUnavailable, match="no Genie Sim server answers") as caught:
        down.capabilities()
    assert not caught.value.permanent


def test_a_robot_the_server_lacks_is_a_clear_permanent_error(
    backend: GenieSimBackend, tmp_path: Path
) -> None:
    with pytest.raises(RobotNotOffered, match="does not offer robot 'g2'") as caught:
        backend.run_episode(order(robot="g2"), tmp_path / "episode")
    assert caught.value.permanent
    assert "franka_panda" in caught.value.message
    assert not (tmp_path / "episode" / MANIFEST).exists()


def test_a_server_killed_mid_episode_costs_only_that_attempt(tmp_path: Path) -> None:
    port = free_port()
    first = ServerProcess(port, tmp_path / "first.log")
    backend = GenieSimBackend(first.address, tmp_path / "scenes", connect_timeout_s=60.0)
    out = tmp_path / "episode"
    try:
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(backend.run_episode, order(), out)
            deadline = time.monotonic() + 120
            while not (out / "cameras").is_dir():  # recording has started
                assert time.monotonic() < deadline and not running.done()
                time.sleep(0.05)
            time.sleep(0.5)
            first.kill()
            assert not (out / MANIFEST).exists()
            second = ServerProcess(port, tmp_path / "second.log")
            try:
                summary = running.result(timeout=300)
            finally:
                second.stop()
    finally:
        backend.close()
        first.kill()
    # Retried from a fresh reset, the whole episode recorded again and committed once.
    assert summary.success
    episode = read_episode(out)
    assert episode.manifest["n_frames"] == summary.n_frames


def test_a_server_that_never_comes_back_ends_in_a_transient_error_and_no_episode(
    tmp_path: Path,
) -> None:
    server = ServerProcess(free_port(), tmp_path / "serve.log")
    backend = GenieSimBackend(
        server.address, tmp_path / "scenes", attempts=2, retry_pause_s=0.1, connect_timeout_s=1
    )
    out = tmp_path / "episode"
    backend.capabilities()

    def kill_when_recording() -> None:
        while not (out / "cameras").is_dir():
            time.sleep(0.02)
        server.kill()

    killer = threading.Thread(target=kill_when_recording, daemon=True)
    killer.start()
    try:
        with pytest.raises(GenieSimUnavailable) as caught:
            backend.run_episode(order(), out)
    finally:
        server.kill()
        backend.close()
    assert not caught.value.permanent
    assert not (out / MANIFEST).exists()


class _CroppedImages(SimulatedScene):
    """A scene whose cameras deliver images two columns narrower than they were set up."""

    def observe(
        self, joints: bool, prims: list[str], gripper: bool, cameras: list[str], images: bool
    ) -> Observed:
        seen = super().observe(joints, prims, gripper, cameras, images)
        cropped = tuple(
            (camera, CameraImages(i.rgb[:, 2:], i.depth_mm[:, 2:], i.segmentation[:, 2:]))
            for camera, i in seen.images
        )
        return replace(seen, images=cropped)


def test_an_unexpected_answer_is_a_permanent_error_and_commits_nothing(tmp_path: Path) -> None:
    server = GenieSimServer(scene=_CroppedImages())
    server.start()
    backend = GenieSimBackend(server.address, tmp_path / "scenes")
    try:
        with pytest.raises(UnexpectedAnswer, match="rgb image") as caught:
            backend.run_episode(order(), tmp_path / "episode")
    finally:
        backend.close()
        server.stop()
    assert caught.value.permanent
    assert not (tmp_path / "episode" / MANIFEST).exists()


def test_plaintext_to_genie_sim_stays_on_loopback_outside_local() -> None:
    assert check_address("127.0.0.1:50051", "production") == "127.0.0.1:50051"
    assert check_address("localhost:50051", "staging") == "localhost:50051"
    assert check_address("10.1.2.3:50051", "local") == "10.1.2.3:50051"
    with pytest.raises(UnsafeConfiguration, match="only on the worker's loopback"):
        check_address("10.1.2.3:50051", "production")
    with pytest.raises(UnsafeConfiguration, match="not host:port"):
        check_address("genie-sim", "local")


def test_the_protocol_server_listens_on_loopback_and_refuses_elsewhere_outside_local() -> None:
    with pytest.raises(UnsafeConfiguration, match="loopback only"):
        GenieSimServer("0.0.0.0", 0, env="production")
    server = GenieSimServer()
    try:
        assert server.host == "127.0.0.1"
    finally:
        server.stop()


def test_the_episode_manifest_names_the_server_it_was_recorded_on(
    backend: GenieSimBackend, server: ServerProcess, tmp_path: Path
) -> None:
    wanted = order("pick_place_can", seed=5)
    summary = backend.run_episode(wanted, tmp_path / "episode")
    manifest = json.loads((tmp_path / "episode" / MANIFEST).read_text())
    assert manifest["simulator"]["server"] == server.address
    assert manifest["success"] == summary.success
    assert manifest["outcome"]["reason"] == summary.reason
