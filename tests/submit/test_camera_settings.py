"""A run's camera settings reach the collector's request; placements that make no view are
refused when the settings are read."""

from __future__ import annotations

import json

import pytest
from bp_collector_api import collector_pb2 as pb
from bp_submit.config import SubmitConfig
from bp_submit.stage import camera_spec
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
    spec = camera_spec(SubmitConfig())
    assert list(spec.cameras) == ["wrist", "overhead", "front"]
    assert (spec.width, spec.height) == (640, 480)
    assert list(spec.placements) == [
        pb.CameraPlacement(
            camera="front", orbit=pb.Orbit(distance_m=1.2, elevation_deg=30.0, azimuth_deg=45.0)
        ),
        pb.CameraPlacement(
            camera="overhead",
            look_at=pb.LookAt(
                position=pb.Vec3(x=0.5, y=-0.2, z=1.6), target=pb.Vec3(x=0.5, z=0.75)
            ),
        ),
    ]


def test_without_placements_the_cameras_keep_their_own_places() -> None:
    assert list(camera_spec(SubmitConfig()).placements) == []


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
