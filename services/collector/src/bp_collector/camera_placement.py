"""Where a run puts its fixed cameras: on an orbit around the task's work area, or at a point.

A placement is asked per run (submit's `BP_EPISODE_CAMERA_PLACEMENT`, the collector API's
`CameraSpec.placements`) and checked here, whatever the backend: only the fixed cameras
(`overhead`, `front`) can be placed, each at most once and only when it is recorded, with
finite values in ranges that make a view. A camera without a placement keeps its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from bp_common.errors import InvalidInput

PLACEABLE_CAMERAS = ("overhead", "front")
MAX_DISTANCE_M = 10.0
MAX_COORDINATE_M = 100.0
MIN_SEPARATION_M = 0.1

Point = tuple[float, float, float]


class InvalidCameraPlacement(InvalidInput):
    """A camera placement that makes no view, or names a camera that cannot be placed."""


@dataclass(frozen=True)
class Orbit:
    """On a sphere around the work area's centre, looking at it.

    Azimuth is measured from the robot's forward direction (from its base to the work area),
    counter-clockwise seen from above: 0 is beyond the work area facing the robot, 90 to the
    robot's left, 180 behind the robot. Elevation is above the horizontal.
    """

    distance_m: float
    elevation_deg: float
    azimuth_deg: float = 0.0


@dataclass(frozen=True)
class LookAt:
    """At a point of the world frame (Z up, metres), looking at another."""

    position: Point
    target: Point


Placement = Orbit | LookAt


def placement_record(placement: Placement | None) -> dict[str, object] | None:
    """How the episode manifest records a camera's placement (null: the camera's own)."""
    if isinstance(placement, Orbit):
        return {
            "kind": "orbit",
            "distance_m": placement.distance_m,
            "elevation_deg": placement.elevation_deg,
            "azimuth_deg": placement.azimuth_deg,
        }
    if isinstance(placement, LookAt):
        return {
            "kind": "look_at",
            "position": list(placement.position),
            "target": list(placement.target),
        }
    return None


def _refuse(camera: str, why: str) -> InvalidCameraPlacement:
    return InvalidCameraPlacement(f"camera placement for {camera!r}: {why}", camera=camera)


def _check_point(camera: str, name: str, point: Iterable[float]) -> Point:
    values = tuple(float(v) for v in point)
    if len(values) != 3:
        raise _refuse(camera, f"{name} needs 3 coordinates, got {len(values)}")
    if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE_M for v in values):
        raise _refuse(camera, f"{name} {values} must be finite and within {MAX_COORDINATE_M} m")
    return (values[0], values[1], values[2])


def check_placement(camera: str, placement: Placement) -> Placement:
    """The placement if it makes a view of a placeable camera; else InvalidCameraPlacement."""
    if camera not in PLACEABLE_CAMERAS:
        if camera == "wrist":
            raise _refuse(camera, "the wrist camera rides on the hand and cannot be placed")
        raise _refuse(camera, f"only the fixed cameras {PLACEABLE_CAMERAS} can be placed")
    if isinstance(placement, Orbit):
        d, el, az = placement.distance_m, placement.elevation_deg, placement.azimuth_deg
        if not all(math.isfinite(v) for v in (d, el, az)):
            raise _refuse(camera, "distance, elevation and azimuth must be finite")
        if not MIN_SEPARATION_M <= d <= MAX_DISTANCE_M:
            raise _refuse(
                camera, f"distance {d} m is outside [{MIN_SEPARATION_M}, {MAX_DISTANCE_M}] m"
            )
        if not -90.0 <= el <= 90.0:
            raise _refuse(camera, f"elevation {el} degrees is outside [-90, 90]")
        if not -360.0 <= az <= 360.0:
            raise _refuse(camera, f"azimuth {az} degrees is outside [-360, 360]")
        return placement
    position = _check_point(camera, "position", placement.position)
    target = _check_point(camera, "target", placement.target)
    if math.dist(position, target) < MIN_SEPARATION_M:
        raise _refuse(camera, f"position and target are less than {MIN_SEPARATION_M} m apart")
    return LookAt(position, target)


def check_placements(
    placements: Iterable[tuple[str, Placement]], cameras: Iterable[str]
) -> dict[str, Placement]:
    """Each placement checked, at most one per camera and only for the recorded `cameras`."""
    recorded = tuple(cameras)
    out: dict[str, Placement] = {}
    for camera, placement in placements:
        if camera in out:
            raise _refuse(camera, "placed twice")
        checked = check_placement(camera, placement)
        if camera not in recorded:
            raise _refuse(camera, f"not among the recorded cameras {list(recorded)}")
        out[camera] = checked
    return out
