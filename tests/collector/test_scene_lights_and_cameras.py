"""A scene's own lights light the world in place of the key light, and its cameras are offered
by name and render from where the scene put them."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pytest
from bp_collector.demo_scenes import tabletop_scene
from bp_collector.jobs.runner import EpisodeDefaults
from bp_collector.mujoco.backend import MujocoBackend
from bp_collector.mujoco.episode import simulate_episode
from bp_collector.mujoco.randomization import RandomizationRanges, draw_randomization
from bp_collector.mujoco.recording import read_episode
from bp_collector.mujoco.world import World, WorldOptions, build_world
from bp_collector.service.servicer import InvalidRequest, Limits, plan_episodes
from bp_collector_api import collector_pb2 as pb
from bp_common.errors import InvalidInput
from bp_scene_contract import read_scene_graph, read_task_config

TASK = "pick_place_cube"
# Turned 60 degrees about x: from the robot's right, looking down across the table.
EYE_QUAT = [math.cos(math.pi / 6), math.sin(math.pi / 6), 0.0, 0.0]
CAMERA = {
    "name": "usd_Eye",
    "usd_path": "/World/Eye",
    "pose": {"position": [0.45, -1.0, 1.4], "orientation": EYE_QUAT},
    "fovy_deg": 40.0,
}
SUN = {
    "usd_path": "/World/Sun",
    "type_name": "DistantLight",
    "pose": {"position": [0.0, 0.0, 0.0], "orientation": [0.9659258, 0.258819, 0.0, 0.0]},
    "intensity": 3000.0,
}
LAMP = {
    "usd_path": "/World/Lamp",
    "type_name": "SphereLight",
    "pose": {"position": [0.3, 0.2, 2.0], "orientation": [1.0, 0.0, 0.0, 0.0]},
    "intensity": 1000.0,
}
DOME = {**LAMP, "usd_path": "/World/Sky", "type_name": "DomeLight", "intensity": 1.0}


def _documents(**extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    graph, config = tabletop_scene("franka_panda")
    return {**copy.deepcopy(graph), **extra}, copy.deepcopy(config)


def _world(graph: dict[str, Any], config: dict[str, Any], cameras: tuple[str, ...] = ()) -> World:
    g, c = read_scene_graph(graph), read_task_config(config)
    rand = draw_randomization(0, [], [], cameras, RandomizationRanges.none())
    options = WorldOptions(cameras)
    return build_world(g, c.assignment("franka_panda"), c.task(TASK), options, rand)


def _lights(model: mujoco.MjModel) -> dict[str, int]:
    return {model.light(i).name: i for i in range(model.nlight)}


def test_the_scene_lights_replace_the_key_light_sharing_its_intensity() -> None:
    world = _world(*_documents(lights=[SUN, LAMP, DOME]))
    model = world.model
    lights = _lights(model)
    assert set(lights) == {"light/World/Sun", "light/World/Lamp"}  # the dome is the ambient
    sun, lamp = lights["light/World/Sun"], lights["light/World/Lamp"]
    # 0.7 (the undrawn key intensity) shared 3:1 by the authored intensities.
    assert model.light_diffuse[sun][0] == pytest.approx(0.525)
    assert model.light_diffuse[lamp][0] == pytest.approx(0.175)
    assert model.light_type[sun] == mujoco.mjtLightType.mjLIGHT_DIRECTIONAL
    # The sun shines along its -z: turned 30 degrees about x from straight down.
    assert np.allclose(model.light_dir[sun], [0.0, 0.5, -math.sqrt(3) / 2], atol=1e-6)
    assert model.light_type[lamp] == mujoco.mjtLightType.mjLIGHT_POINT
    assert np.allclose(model.light_pos[lamp], [0.3, 0.2, 2.0])
    plain = _world(*_documents()).model
    assert set(_lights(plain)) == {"key"}


def test_a_scene_camera_is_offered_by_name_and_stands_where_the_scene_put_it() -> None:
    world = _world(*_documents(cameras=[CAMERA]), cameras=("wrist", "usd_Eye"))
    model = world.model
    cam = model.camera("cam/usd_Eye").id
    assert np.allclose(model.cam_pos[cam], [0.45, -1.0, 1.4])
    assert np.allclose(model.cam_quat[cam], EYE_QUAT, atol=1e-6)
    assert model.cam_fovy[cam] == pytest.approx(40.0)
    with pytest.raises(InvalidInput, match="unknown camera 'usd_Eye'"):
        _world(*_documents(), cameras=("usd_Eye",))


def test_the_collector_accepts_a_scene_camera_only_for_a_scene_that_has_it() -> None:
    def plan(graph: dict[str, Any], config: dict[str, Any]) -> int:
        request = pb.StartCollectionRequest(
            job_key="k",
            robot="franka_panda",
            scene_graph_json=json.dumps(graph).encode(),
            task_config_json=json.dumps(config).encode(),
            episodes_per_task=1,
            camera=pb.CameraSpec(cameras=["wrist", "usd_Eye"], width=64, height=64),
        )
        offer = MujocoBackend().capabilities()
        planned, _, _ = plan_episodes(request, offer, Limits(), EpisodeDefaults())
        return len(planned)

    assert plan(*_documents(cameras=[CAMERA])) == 2
    with pytest.raises(InvalidRequest, match="unknown cameras \\['usd_Eye'\\]"):
        plan(*_documents())


def test_the_episode_records_its_lights_and_renders_the_scene_camera(tmp_path: Path) -> None:
    graph, config = _documents(cameras=[CAMERA], lights=[SUN])
    simulate_episode(
        read_scene_graph(graph),
        read_task_config(config),
        "franka_panda",
        TASK,
        seed=2,
        out_dir=tmp_path / "episode",
        cameras=("usd_Eye",),
        width=32,
        height=24,
        fps=10,
        max_seconds=0.2,
        ranges=RandomizationRanges.none(),
    )
    episode = read_episode(tmp_path / "episode", verify=True)
    [camera] = episode.manifest["cameras"]
    assert (camera["name"], camera["fovy_deg"]) == ("usd_Eye", pytest.approx(40.0))
    assert np.allclose(episode.states()["camera_position"][:, 0], [0.45, -1.0, 1.4])
    [light] = episode.manifest["lights"]
    assert light["name"] == "light/World/Sun" and light["type"] == "directional"
    assert light["diffuse"] == pytest.approx(0.7)
    # The table fills the middle of the scene camera's image.
    seg = episode.segmentation("usd_Eye")[0]
    table = int(next(k for k, v in episode.manifest["segmentation_ids"].items() if v == "table"))
    assert seg[12, 16] == table
