"""Seeded domain randomisation: what varies between episodes of one task, drawn from a seed.

The draw is a plain value object, so an episode can be reproduced exactly from its seed and the
manifest can record what was drawn. The ranges are documented in docs/domain-randomisation.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import mujoco
import numpy as np

FloorTexture = Literal["none", "checker", "gradient"]
FLOOR_TEXTURES: tuple[FloorTexture, ...] = ("checker", "gradient")
FLOOR_TILE_M = 0.25
"""Side of one checker square at the middle of its range."""


@dataclass(frozen=True)
class RandomizationRanges:
    """Half-widths of the uniform ranges; zero everywhere turns randomisation off.

    Scales (`colour`, `object_mass`, `object_friction`, `floor_texture_contrast`) are relative:
    a value is multiplied by a factor drawn from [1 - half, 1 + half].
    """

    object_xy_m: float = 0.02
    object_yaw_rad: float = 0.35
    light_direction: float = 0.3
    light_intensity: float = 0.25
    colour: float = 0.15
    camera_position_m: float = 0.02
    camera_target_m: float = 0.02
    object_mass: float = 0.2
    object_friction: float = 0.15
    floor_texture_contrast: float = 0.3
    floor_tile_m: float = 0.1

    @classmethod
    def none(cls) -> RandomizationRanges:
        return cls(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class ObjectJitter:
    """A free object's draw: pose offsets, and factors on its mass (and inertia) and friction."""

    dx: float
    dy: float
    dyaw: float
    mass_scale: float = 1.0
    friction_scale: float = 1.0


@dataclass(frozen=True)
class CameraJitter:
    position: tuple[float, float, float]
    target: tuple[float, float, float]


@dataclass(frozen=True)
class FloorTextureDraw:
    """A MuJoCo builtin texture on the floor: `rgb1` is the floor colour, `rgb2` the second."""

    builtin: FloorTexture = "none"
    rgb2: tuple[float, float, float] = (0.55, 0.55, 0.5225)
    tile_m: float = FLOOR_TILE_M


@dataclass(frozen=True)
class DomainRandomization:
    """One episode's draw: object pose offsets, masses and friction, lighting, colours, the
    floor's texture and camera offsets."""

    seed: int
    objects: dict[str, ObjectJitter] = field(default_factory=dict)
    light_direction: tuple[float, float, float] = (0.0, 0.0, -1.0)
    light_intensity: float = 0.7
    colour_scale: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    floor_rgb: tuple[float, float, float] = (0.55, 0.55, 0.55)
    cameras: dict[str, CameraJitter] = field(default_factory=dict)
    floor_texture: FloorTextureDraw = field(default_factory=FloorTextureDraw)

    def object_jitter(self, asset_id: str) -> ObjectJitter:
        return self.objects.get(asset_id, ObjectJitter(0.0, 0.0, 0.0))

    def camera_jitter(self, camera: str) -> CameraJitter:
        return self.cameras.get(camera, CameraJitter((0.0, 0.0, 0.0), (0.0, 0.0, 0.0)))

    def colour(self, asset_id: str, rgb: Iterable[float]) -> tuple[float, float, float]:
        scale = self.colour_scale.get(asset_id, (1.0, 1.0, 1.0))
        r, g, b = (float(np.clip(c * s, 0.0, 1.0)) for c, s in zip(rgb, scale, strict=True))
        return (r, g, b)

    def apply_physics(self, spec: mujoco.MjSpec, bodies: Mapping[str, str]) -> None:
        """Scale each free object's mass and sliding friction by its draw, before compiling.

        `bodies` maps asset ids to their body names. Every geom of the body (and of bodies
        under it) is scaled, mass and density alike, so the compiler derives a body mass and an
        inertia scaled by the same factor; an explicit inertial is scaled the same way.
        """
        for asset_id, body_name in bodies.items():
            jitter = self.object_jitter(asset_id)
            mass, friction = jitter.mass_scale, jitter.friction_scale
            if mass == 1.0 and friction == 1.0:
                continue
            body = spec.body(body_name)
            for geom in body.find_all(mujoco.mjtObj.mjOBJ_GEOM):
                if not np.isnan(geom.mass):
                    geom.mass = geom.mass * mass
                geom.density = geom.density * mass
                geom.friction[0] = geom.friction[0] * friction
            for inner in [body, *body.find_all(mujoco.mjtObj.mjOBJ_BODY)]:
                if inner.explicitinertial:
                    inner.mass = inner.mass * mass
                    inner.inertia = np.asarray(inner.inertia) * mass
                    inner.fullinertia = np.asarray(inner.fullinertia) * mass

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


def _uniform3(rng: np.random.Generator, half: float) -> tuple[float, float, float]:
    x, y, z = (float(v) for v in rng.uniform(-half, half, size=3))
    return (x, y, z)


def _scale(rng: np.random.Generator, half: float) -> float:
    return float(1.0 + rng.uniform(-half, half))


def draw_randomization(
    seed: int,
    free_objects: Iterable[str],
    all_objects: Iterable[str],
    cameras: Iterable[str],
    ranges: RandomizationRanges | None = None,
) -> DomainRandomization:
    """Draw one episode's randomisation from `seed`; the same inputs always give the same draw.

    Later additions draw after the earlier ones, so a seed keeps its object poses, light,
    colours and camera offsets from before mass, friction and textures were drawn.
    """
    r = ranges or RandomizationRanges()
    rng = np.random.default_rng(seed)
    free = sorted(free_objects)
    poses = {
        asset_id: (
            float(rng.uniform(-r.object_xy_m, r.object_xy_m)),
            float(rng.uniform(-r.object_xy_m, r.object_xy_m)),
            float(rng.uniform(-r.object_yaw_rad, r.object_yaw_rad)),
        )
        for asset_id in free
    }
    direction = np.array([0.0, 0.0, -1.0]) + np.array(_uniform3(rng, r.light_direction))
    direction[2] = min(direction[2], -0.5)
    direction /= np.linalg.norm(direction)
    lx, ly, lz = (float(v) for v in direction)
    intensity = float(0.7 + rng.uniform(-r.light_intensity, r.light_intensity))
    colours = {asset_id: _scale3(rng, r.colour) for asset_id in sorted(all_objects)}
    grey = float(0.55 + rng.uniform(-r.colour, r.colour))
    floor_rgb = (grey, grey, grey * 0.95)
    camera_draws = {
        name: CameraJitter(_uniform3(rng, r.camera_position_m), _uniform3(rng, r.camera_target_m))
        for name in sorted(cameras)
    }
    mass_scale = {asset_id: _scale(rng, r.object_mass) for asset_id in free}
    friction_scale = {asset_id: _scale(rng, r.object_friction) for asset_id in free}
    objects = {
        asset_id: ObjectJitter(*poses[asset_id], mass_scale[asset_id], friction_scale[asset_id])
        for asset_id in free
    }
    builtin = FLOOR_TEXTURES[int(rng.integers(len(FLOOR_TEXTURES)))]
    contrast = _scale3(rng, r.floor_texture_contrast)
    tile_m = float(FLOOR_TILE_M + rng.uniform(-r.floor_tile_m, r.floor_tile_m))
    r2, g2, b2 = (float(np.clip(c * s, 0.0, 1.0)) for c, s in zip(floor_rgb, contrast, strict=True))
    texture = (
        FloorTextureDraw(builtin, (r2, g2, b2), tile_m)
        if r.floor_texture_contrast > 0
        else FloorTextureDraw()
    )
    return DomainRandomization(
        seed=seed,
        objects=objects,
        light_direction=(lx, ly, lz),
        light_intensity=intensity,
        colour_scale=colours,
        floor_rgb=floor_rgb,
        cameras=camera_draws,
        floor_texture=texture,
    )


def _scale3(rng: np.random.Generator, half: float) -> tuple[float, float, float]:
    a, b, c = (float(v) for v in 1.0 + rng.uniform(-half, half, size=3))
    return (a, b, c)
