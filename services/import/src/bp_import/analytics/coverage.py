"""Generalisation coverage: the variation a dataset's episodes actually contain.

From each valid episode: every free object's start position (frame 0 of `object_position`)
and, from the manifest's `randomization` draw, the object offsets and scales, the light
(intensity, and the direction as azimuth and elevation), the colour scales (mean of the three
channels per object, and the floor's grey) and each camera's position and target offsets.

- **Start poses** per object: the x-y points, their extent and standard deviation.
- **Coverage map** per object: the start x-y points counted in a G x G grid (G = 10) over the
  square of side s = max(extent_x, extent_y, 2 cm) centred on the points' bounding box;
  coverage = occupied cells / G^2.
- **Diversity score** D = (1 / F) * sum over the F recorded factors of H_f / ln B, where a
  factor is one scalar of the draw (an object's dx, dy, dyaw or scale, the light's intensity,
  azimuth or elevation, an object's or the floor's colour scale, a camera's offset along x, y
  or z), B = min(10, n) equal-width bins over the factor's [min, max] across the n episodes,
  and H_f = -sum_b p_b ln p_b the entropy of its values over those bins; a factor that does
  not vary (max - min < 1e-9) has H_f = 0, and D = 0 below two episodes. D is in [0, 1]: 0 when
  nothing varies, 1 when every factor varies and spreads evenly.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bp_import.episodes.validation import RawEpisodeManifest

GRID = 10
MIN_SIDE_M = 0.02
MAX_BINS = 10
CONSTANT = 1e-9
NO_SCALES = "not randomised: no episode records an object scale; objects keep their authored size"


def _draw(manifest: RawEpisodeManifest) -> dict[str, Any]:
    draw = (manifest.model_extra or {}).get("randomization")
    return draw if isinstance(draw, dict) else {}


def randomisation_factors(manifest: RawEpisodeManifest) -> dict[str, float]:
    """Every scalar of one episode's randomisation draw, by a stable name."""
    draw = _draw(manifest)
    factors: dict[str, float] = {}
    for asset, jitter in sorted((draw.get("objects") or {}).items()):
        for key in ("dx", "dy", "dyaw", "scale"):
            if isinstance(jitter, dict) and isinstance(jitter.get(key), int | float):
                factors[f"object.{asset}.{key}"] = float(jitter[key])
    if isinstance(draw.get("light_intensity"), int | float):
        factors["light.intensity"] = float(draw["light_intensity"])
    direction = draw.get("light_direction")
    if isinstance(direction, list | tuple) and len(direction) == 3:
        x, y, z = (float(v) for v in direction)
        factors["light.azimuth_rad"] = math.atan2(y, x)
        factors["light.elevation_rad"] = math.asin(
            max(-1.0, min(1.0, -z / (math.hypot(x, y, z) or 1.0)))
        )
    for asset, scale in sorted((draw.get("colour_scale") or {}).items()):
        if isinstance(scale, list | tuple) and scale:
            factors[f"colour.{asset}"] = float(np.mean(scale))
    floor = draw.get("floor_rgb")
    if isinstance(floor, list | tuple) and floor:
        factors["colour.floor"] = float(floor[0])
    for camera, jitter in sorted((draw.get("cameras") or {}).items()):
        for part in ("position", "target"):
            offset = jitter.get(part) if isinstance(jitter, dict) else None
            if isinstance(offset, list | tuple) and len(offset) == 3:
                for axis, value in zip("xyz", offset, strict=True):
                    factors[f"camera.{camera}.{part}.{axis}"] = float(value)
    return factors


def normalised_entropy(values: Sequence[float]) -> float:
    """H / ln B of the values over B = min(10, n) equal bins of their range (module doc)."""
    x = np.asarray(values, dtype=np.float64)
    bins = min(MAX_BINS, x.size)
    if bins < 2 or float(x.max() - x.min()) < CONSTANT:
        return 0.0
    counts, _ = np.histogram(x, bins=bins, range=(float(x.min()), float(x.max())))
    share = counts[counts > 0] / x.size
    return float(-(share * np.log(share)).sum() / math.log(bins))


def diversity_score(draws: Collection[dict[str, float]]) -> tuple[float, dict[str, float]]:
    """D and each factor's H_f / ln B, over the factors every draw records; `draws` is read
    once per factor (it may be a spool)."""
    if len(draws) < 2:
        return 0.0, {}
    common: set[str] | None = None
    for draw in draws:
        common = set(draw) if common is None else common & draw.keys()
    names = sorted(common or ())
    per_factor = {name: round(normalised_entropy([d[name] for d in draws]), 6) for name in names}
    if not per_factor:
        return 0.0, {}
    return round(float(np.mean(list(per_factor.values()))), 6), per_factor


def coverage_map(points: NDArray[np.float64]) -> dict[str, Any]:
    """The G x G counts of start x-y points, the grid's square and the occupied share."""
    low, high = points.min(axis=0), points.max(axis=0)
    side = max(float((high - low).max()), MIN_SIDE_M)
    centre = (low + high) / 2
    origin = centre - side / 2
    cells = np.clip(((points - origin) / side * GRID).astype(int), 0, GRID - 1)
    counts = np.zeros((GRID, GRID), dtype=int)
    for ix, iy in cells:
        counts[iy, ix] += 1
    return {
        "origin_xy": [round(float(v), 6) for v in origin],
        "side_m": round(side, 6),
        "grid": GRID,
        "counts": counts.tolist(),
        "coverage": round(float((counts > 0).sum()) / GRID**2, 6),
    }


def _distribution(values: Sequence[float]) -> dict[str, Any]:
    x = np.asarray(values, dtype=np.float64)
    return {
        "n": int(x.size),
        "min": round(float(x.min()), 6),
        "max": round(float(x.max()), 6),
        "mean": round(float(x.mean()), 6),
        "std": round(float(x.std()), 6),
        "values": [round(float(v), 6) for v in x],
    }


ObjectStarts = list[tuple[str, list[float]]]


def object_starts(manifest: RawEpisodeManifest, states: Mapping[str, NDArray[Any]]) -> ObjectStarts:
    """Each free object's position at frame 0, by asset."""
    start = states["object_position"][0] if len(states["object_position"]) else []
    return [
        (asset, [float(v) for v in start[k]]) for k, asset in enumerate(manifest.state.object_ids)
    ]


def generalisation_coverage(
    starts: Iterable[ObjectStarts], draws: Collection[dict[str, float]]
) -> dict[str, Any]:
    """Start poses, coverage maps, randomisation distributions and the diversity score, from
    each episode's `object_starts` and `randomisation_factors`."""
    objects: dict[str, list[list[float]]] = {}
    for episode in starts:
        for asset, position in episode:
            objects.setdefault(asset, []).append(position)
    start_poses: dict[str, Any] = {}
    for asset, rows in sorted(objects.items()):
        xyz = np.asarray(rows, dtype=np.float64)
        start_poses[asset] = {
            "episodes": len(rows),
            "xy": [[round(float(x), 6), round(float(y), 6)] for x, y in xyz[:, :2]],
            "extent_m": [round(float(v), 6) for v in np.ptp(xyz, axis=0)],
            "std_m": [round(float(v), 6) for v in xyz.std(axis=0)],
            "coverage_map": coverage_map(xyz[:, :2]),
        }
    score, per_factor = diversity_score(draws)
    names = sorted({name for draw in draws for name in draw})
    factors = {name: _distribution([d[name] for d in draws if name in d]) for name in names}

    def group(prefix: str) -> dict[str, Any]:
        return {k: v for k, v in factors.items() if k.startswith(prefix)}

    scales = {k: v for k, v in factors.items() if k.endswith(".scale")}
    return {
        "episodes": len(draws),
        "object_start_poses": start_poses,
        "object_scales": scales or NO_SCALES,
        "lighting": group("light."),
        "colours": group("colour."),
        "camera_jitter": group("camera."),
        "object_offsets": {k: v for k, v in group("object.").items() if not k.endswith(".scale")},
        "diversity": {
            "score": score,
            "formula": "D = mean over factors f of H_f / ln(B), B = min(10, n) equal bins over "
            "the factor's range, H_f the entropy of its values over those bins; 0 for a factor "
            "that does not vary",
            "per_factor": per_factor,
        },
    }
