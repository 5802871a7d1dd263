"""A run's camera settings reach its shards and, through them, the simulator's placements;
placements that make no view are refused when the settings are read."""

from __future__ import annotations

import json

import pytest
from bp_collector.camera_placement import LookAt, Orbit
from bp_collector.shards.stage import placements
from bp_common.contracts.events import CollectionShard
from bp_submit.config import SubmitConfig
from bp_submit.stage import camera_settings
from pydantic import ValidationError


def test_camera_placements_from_the_environment_reach_the_collector_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BP_EPISODE_CAMERAS", "wrist, overhead, front")
    monkeypatch.setenv("BP_EPISODE_WIDTH", "640")
    monkeypatch.setenv("BP_EPISODE_HEIGHT", "480")
    placement = {
        "front": {"distance_m": 1.2, "elevation_deg": 30, "azimuth_deg": 45},
        "overhead": {"position": [0.5, -0.2, 1.6], "look_at": [0.5, 0.0, 0.75]},
    }
    monkeypatch.setenv("BP_EPISODE_CAMERA_PLACEMENT", json.dumps(placement))
    camera = camera_settings(SubmitConfig())
    assert camera.cameras == ["wrist", "overhead", "front"]
    assert (camera.width, camera.height) == (640, 480)
    shard = CollectionShard(
        scene_id="kitchen",
        run_id="run-" + "0" * 20,
        bucket="b",
        shard_id="ur5e.000-pick.00000",
        export_manifest="runs/kitchen/run/export/export_manifest.json",
        export_manifest_sha256="0" * 64,
        robot="ur5e",
        task_id="pick",
        first_episode=0,
        episodes=1,
        run_seed=1,
        backend="mujoco",
        camera=camera,
        max_episode_seconds=10,
    )
    received = CollectionShard.model_validate_json(shard.model_dump_json())  # over the wire
    assert placements(received, ("wrist", "overhead", "front")) == {
        "front": Orbit(distance_m=1.2, elevation_deg=30.0, azimuth_deg=45.0),
        "overhead": LookAt(position=(0.5, -0.2, 1.6), target=(0.5, 0.0, 0.75)),
    }


def test_without_placements_the_cameras_keep_their_own_places() -> None:
    assert camera_settings(SubmitConfig()).placements == {}


@pytest.mark.parametrize(
    "placement",
    [
        {"wrist": {"distance_m": 1.0, "elevation_deg": 30}},
        {"front": {"distance_m": 0.0, "elevation_deg": 30}},
        {"front": {"distance_m": 1.0, "elevation_deg": 120}},
        {"front": {"distance_m": 1.0}},
        {"overhead": {"position": [0.5, 0.0, 1.0], "look_at": [0.5, 0.0, 1.0]}},
        {"overhead": {"position": [0.5, 0.0], "look_at": [0.5, 0.0, 0.7]}},
        {"overhead": {"position": [0.5, 0.0, 1.0], "look_at": [0.5, 0.0, 0.7], "roll": 3}},
    ],
)
def test_placements_that_make_no_view_are_refused_when_the_settings_are_read(
    monkeypatch: pytest.MonkeyPatch, placement: dict[str, object]
) -> None:
    monkeypatch.setenv("BP_EPISODE_CAMERA_PLACEMENT", json.dumps(placement))
    with pytest.raises(ValidationError, match="episode_camera_placement"):
        SubmitConfig()
