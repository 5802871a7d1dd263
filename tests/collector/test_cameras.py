"""Fixed cameras stand where a run places them, keep their own places otherwise, and refuse
placements that make no view; the episode records where they stood."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pytest
from bp_collector.camera_placement import (
    InvalidCameraPlacement,
    LookAt,
    Orbit,
    Placement,
    check_placements,
)
from bp_collector.demo_scenes import tabletop_scene
from bp_collector.mujoco.episode import simulate_episode
from bp_collector.mujoco.randomization import RandomizationRanges, draw_randomization
from bp_collector.mujoco.recording import read_episode
from bp_collector.mujoco.world import World, WorldOptions, build_world, work_area
from bp_scene_contract import read_scene_graph, read_task_config

TASK = "pick_place_cube"


def _scene() -> tuple[Any, Any]:
    graph, config = tabletop_scene("franka_panda")
    return read_scene_graph(graph), read_task_config(config)


def _world(cameras: tuple[str, ...], placements: dict[str, Placement]) -> World:
    graph, config = _scene()
    rand = draw_randomization(0, [], [], cameras, RandomizationRanges.none())
    options = WorldOptions(cameras, placements=placements)
    return build_world(graph, config.assignment("franka_panda"), config.task(TASK), options, rand)


def _pose(world: World, camera: str) -> tuple[np.ndarray, np.ndarray]:
    """The camera's position and viewing direction (its -z axis) in the world."""
    model = world.model
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    cam = model.camera(world.camera_name(camera)).id
    return data.cam_xpos[cam].copy(), -data.cam_xmat[cam].reshape(3, 3)[:, 2]


def _frame() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The work area's centre, the robot's forward direction and its left."""
    graph, config = _scene()
    centre = work_area(graph, config.task(TASK))
    base = config.assignment("franka_panda").base_pose
    assert base is not None
    forward = centre - np.array(base.position)
    forward[2] = 0.0
    forward /= np.linalg.norm(forward)
    return centre, forward, np.cross([0.0, 0.0, 1.0], forward)


def test_cameras_without_a_placement_keep_their_own_places() -> None:
    world = _world(("overhead", "front"), {})
    centre, forward, _ = _frame()
    overhead, looking = _pose(world, "overhead")
    assert np.allclose(overhead, centre + forward * 0.3 + [0.0, 0.0, 0.8])
    assert np.allclose(looking, (centre - overhead) / np.linalg.norm(centre - overhead))
    front, _ = _pose(world, "front")
    assert np.allclose(front, centre + forward * 0.9 + [0.0, 0.0, 0.45])


def test_an_orbit_places_the_camera_around_the_work_area_looking_at_it() -> None:
    world = _world(("wrist", "front"), {"front": Orbit(1.2, 30.0, 90.0)})
    centre, _, left = _frame()
    position, looking = _pose(world, "front")
    offset = position - centre
    assert np.linalg.norm(offset) == pytest.approx(1.2)
    assert math.degrees(math.asin(offset[2] / 1.2)) == pytest.approx(30.0)
    horizontal = offset[:2] / np.linalg.norm(offset[:2])
    assert np.allclose(horizontal, left[:2])  # azimuth 90: on the robot's left
    assert np.allclose(looking, -offset / 1.2)
    # Image up stays up for the third-person view.
    cam = world.model.camera("cam/front").id
    data = mujoco.MjData(world.model)
    mujoco.mj_forward(world.model, data)
    assert data.cam_xmat[cam].reshape(3, 3)[2, 1] > 0


def test_a_look_at_places_the_camera_at_a_point_looking_at_another() -> None:
    world = _world(("overhead",), {"overhead": LookAt((0.2, -0.6, 1.6), (0.5, 0.0, 0.75))})
    position, looking = _pose(world, "overhead")
    assert np.allclose(position, [0.2, -0.6, 1.6])
    towards = np.array([0.3, 0.6, -0.85])
    assert np.allclose(looking, towards / np.linalg.norm(towards))


@pytest.mark.parametrize(
    ("camera", "placement", "cameras", "message"),
    [
        ("wrist", Orbit(1.0, 30.0), ("wrist",), "rides on the hand"),
        ("thermal", Orbit(1.0, 30.0), ("thermal",), "only the fixed cameras"),
        ("front", Orbit(1.0, 30.0), ("wrist", "overhead"), "not among the recorded cameras"),
        ("front", Orbit(0.0, 30.0), ("front",), "distance 0.0 m"),
        ("front", Orbit(1.0, 95.0), ("front",), "elevation 95.0"),
        ("front", Orbit(float("nan"), 30.0), ("front",), "finite"),
        ("overhead", LookAt((0.5, 0.0, 1.0), (0.5, 0.0, 1.05)), ("overhead",), "apart"),
        ("overhead", LookAt((0.0, 0.0, math.inf), (0.0, 0.0, 0.0)), ("overhead",), "finite"),
    ],
)
def test_placements_that_make_no_view_are_refused_with_a_permanent_error(
    camera: str, placement: Placement, cameras: tuple[str, ...], message: str
) -> None:
    with pytest.raises(InvalidCameraPlacement, match=message) as caught:
        check_placements([(camera, placement)], cameras)
    assert caught.value.permanent and caught.value.context == {"camera": camera}


def test_a_camera_placed_twice_is_refused_and_so_is_a_world_built_with_a_bad_placement() -> None:
    twice = [("front", Orbit(1.0, 30.0)), ("front", Orbit(2.0, 30.0))]
    with pytest.raises(InvalidCameraPlacement, match="placed twice"):
        check_placements(twice, ("front",))
    with pytest.raises(InvalidCameraPlacement, match="rides on the hand"):
        _world(("wrist",), {"wrist": Orbit(1.0, 30.0)})


def test_the_episode_records_the_placement_and_the_camera_where_it_stood(tmp_path: Path) -> None:
    graph, config = _scene()
    placement = LookAt((1.3, 0.4, 1.2), (0.45, -0.05, 0.75))
    simulate_episode(
        graph,
        config,
        "franka_panda",
        TASK,
        seed=1,
        out_dir=tmp_path / "episode",
        cameras=("wrist", "front"),
        width=32,
        height=24,
        fps=10,
        max_seconds=0.3,
        ranges=RandomizationRanges.none(),
        placements={"front": placement},
    )
    episode = read_episode(tmp_path / "episode", verify=True)
    records = {c["name"]: c for c in episode.manifest["cameras"]}
    assert records["front"]["placement"] == {
        "kind": "look_at",
        "position": [1.3, 0.4, 1.2],
        "target": [0.45, -0.05, 0.75],
    }
    assert records["wrist"]["placement"] is None
    states = episode.states()
    front = episode.cameras.index("front")
    assert np.allclose(states["camera_position"][:, front], [1.3, 0.4, 1.2])
    # The recorded extrinsics aim the camera's -z axis at the target.
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, states["camera_quaternion"][0, front])
    towards = np.array([0.45 - 1.3, -0.05 - 0.4, 0.75 - 1.2])
    assert np.allclose(-rot.reshape(3, 3)[:, 2], towards / np.linalg.norm(towards))
    # And the intrinsics beside them: image size and field of view.
    assert (records["front"]["width"], records["front"]["height"]) == (32, 24)
    assert records["front"]["fovy_deg"] == pytest.approx(58.0)
