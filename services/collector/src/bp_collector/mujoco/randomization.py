"""Seeded domain randomisation: what varies between episodes of one task, drawn from a seed.

The draw is a plain value object, so an episode can be reproduced exactly from its seed and the
manifest can record what was drawn.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RandomizationRanges:
    """Half-widths of the uniform ranges; zero everywhere turns randomisation off."""

    object_xy_m: float = 0.02
    object_yaw_rad: float = 0.35
    light_direction: float = 0.3
    light_intensity: float = 0.25
    colour: float = 0.15
    camera_position_m: float = 0.02
    camera_target_m: float = 0.02

    @classmethod
    def none(cls) -> RandomizationRanges:
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class ObjectJitter:
    dx: float
    dy: float
    dyaw: float


@dataclass(frozen=True)
class CameraJitter:
    position: tuple[float, float, float]
    target: tuple[float, float, float]


@dataclass(frozen=True)
class DomainRandomization:
    """One episode's draw: object pose offsets, lighting, colours and camera offsets."""

    seed: int
    objects: dict[str, ObjectJitter] = field(default_factory=dict)
    light_direction: tuple[float, float, float] = (0.0, 0.0, -1.0)
    light_intensity: float = 0.7
    colour_scale: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    floor_rgb: tuple[float, float, float] = (0.55, 0.55, 0.55)
    cameras: dict[str, CameraJitter] = field(default_factory=dict)

    def object_jitter(self, asset_id: str) -> ObjectJitter:
        return self.objects.get(asset_id, ObjectJitter(0.0, 0.0, 0.0))

    def camera_jitter(self, camera: str) -> CameraJitter:
        return self.cameras.get(camera, CameraJitter((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)))

    def colour(self, asset_id: str, rgb: Iterable[float]) -> tuple[float, float, float]:
        scale = self.colour_scale.get(asset_id, (1.0, 1.0, 1.0))
        r, g, b = (float(np.clip(c * s, 0.0, 1.0)) for c, s in zip(rgb, scale, strict=True))
        return (r, g, b)

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def _uniform3(rng: np.random.Generator, half: float) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in rng.uniform(-half, half, size=3))
    return (x, y, z)


def draw_randomization(
    seed: int,
    free_objects: Iterable[str],
    all_objects: Iterable[str],
    cameras: Iterable[str],
    ranges: RandomizationRanges | None = None,
) -> DomainRandomization:
    """Draw one episode's randomisation from `seed`; the same inputs always give the same draw."""
    r = ranges or RandomizationRanges()
    rng = np.random.default_rng(seed)
    objects = {
        asset_id: ObjectJitter(
            dx=float(rng.uniform(-r.object_xy_m, r.object_xy_m)),
            dy=float(rng.uniform(-r.object_xy_m, r.object_xy_m)),
            dyaw=float(rng.uniform(-r.object_yaw_rad, r.object_yaw_rad)),
        )
        for asset_id in sorted(free_objects)
    }
    direction = np.array([0.0, 0.0, -1.0]) + np.array(_uniform3(rng, r.light_direction))
    direction[2] = min(direction[2], -0.5)
    direction /= np.linalg.norm(direction)
    lx, ly, lz = (float(v) for v in direction)
    intensity = float(0.7 + rng.uniform(-r.light_intensity, r.light_intensity))
    colours = {asset_id: _scale3(rng, r.colour) for asset_id in sorted(all_objects)}
    grey = float(0.55 + rng.uniform(-r.colour, r.colour))
    camera_draws = {
        name: CameraJitter(_uniform3(rng, r.camera_position_m), _uniform3(rng, r.camera_target_m))
        for name in sorted(cameras)
    }
    return DomainRandomization(
        seed=seed,
        objects=objects,
        light_direction=(lx, ly, lz),
        light_intensity=intensity,
        colour_scale=colours,
        floor_rgb=(grey, grey, grey * 0.95),
        cameras=camera_draws,
    )


def _scale3(rng: np.random.Generator, half: float) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in 1.0 + rng.uniform(-half, half, size=3))
    return (a, b, c)
