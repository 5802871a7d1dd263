"""Exact per-feature statistics in LeRobot's layout (min, max, mean, std, count, quantiles).

Numeric features keep their values and use numpy directly. Images are reduced to a per-channel
histogram of their uint8 values, from which every statistic (quantiles included) is exact and
the memory is constant whatever the number of frames. Image statistics are in [0, 1] and shaped
(3, 1, 1); a 1-D feature's are shaped (1,); a vector feature's (D,). `std` is the population
standard deviation (ddof=0); quantiles use numpy's default linear interpolation.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

QUANTILES: dict[str, float] = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
STAT_NAMES: tuple[str, ...] = ("min", "max", "mean", "std", "count", *QUANTILES)

FeatureStats = dict[str, NDArray[Any]]


def numeric_stats(values: NDArray[Any]) -> FeatureStats:
    """Statistics over axis 0 of an (N,) or (N, D) array, in float64 (counts in int64)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"need a non-empty (N,) or (N, D) array, got shape {np.shape(values)}")
    stats: FeatureStats = {
        "min": array.min(axis=0),
        "max": array.max(axis=0),
        "mean": array.mean(axis=0),
        "std": array.std(axis=0),
        "count": np.array([array.shape[0]], dtype=np.int64),
    }
    quantiles = np.quantile(array, list(QUANTILES.values()), axis=0)
    for i, name in enumerate(QUANTILES):
        stats[name] = quantiles[i]
    return stats


class PixelHistogram:
    """Per-channel counts of the 256 values of uint8 RGB frames; exact image statistics."""

    channels = 3

    def __init__(self) -> None:
        self.counts = np.zeros((self.channels, 256), dtype=np.int64)
        self.frames = 0

    def add(self, frame: NDArray[np.uint8]) -> None:
        """Count one (H, W, 3) frame."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != self.channels:
            raise ValueError(f"need an (H, W, 3) uint8 frame, got {frame.shape} {frame.dtype}")
        # Pillow's C histogram is ~3x faster than np.bincount or a sort over the channel planes;
        # per frame it costs a tenth of encoding that frame.
        counts = Image.fromarray(frame).histogram()
        self.counts += np.asarray(counts, dtype=np.int64).reshape(self.channels, 256)
        self.frames += 1

    def merge(self, other: PixelHistogram) -> None:
        self.counts += other.counts
        self.frames += other.frames

    def stats(self) -> FeatureStats:
        """Statistics of the pixel values scaled to [0, 1], each shaped (C, 1, 1)."""
        if self.frames == 0:
            raise ValueError("no frames counted")
        values = np.arange(256, dtype=np.int64)
        per_channel: dict[str, list[float]] = {name: [] for name in STAT_NAMES if name != "count"}
        for counts in self.counts:
            seen = np.flatnonzero(counts)
            n = int(counts.sum())
            total = int(counts @ values)
            squares = int(counts @ (values * values))
            per_channel["min"].append(seen[0] / 255.0)
            per_channel["max"].append(seen[-1] / 255.0)
            per_channel["mean"].append(total / n / 255.0)
            # Exact integer arithmetic before the one division: no cancellation error.
            per_channel["std"].append(float(np.sqrt((n * squares - total * total) / (n * n))) / 255)
            cumulative = np.cumsum(counts)
            for name, q in QUANTILES.items():
                per_channel[name].append(_histogram_quantile(cumulative, n, q) / 255.0)
        stats: FeatureStats = {
            name: np.array(v, dtype=np.float64).reshape(self.channels, 1, 1)
            for name, v in per_channel.items()
        }
        stats["count"] = np.array([self.frames], dtype=np.int64)
        return {name: stats[name] for name in STAT_NAMES}


def _histogram_quantile(cumulative: NDArray[np.int64], n: int, q: float) -> float:
    """np.quantile(sorted values, q) (linear method) read off cumulative histogram counts."""
    position = (n - 1) * q
    lower = int(np.floor(position))
    upper = min(lower + 1, n - 1)
    # The k-th smallest value (0-based) is the first bin whose cumulative count exceeds k.
    low_value = int(np.searchsorted(cumulative, lower, side="right"))
    high_value = int(np.searchsorted(cumulative, upper, side="right"))
    return low_value + (position - lower) * (high_value - low_value)


class NumericAccumulator:
    """Collects one numeric feature's per-episode arrays for exact dataset-wide statistics.

    The values are appended to a file in `spill_dir` (exact quantiles need every value), so
    memory does not grow with the episodes; `stats` reads them back one column at a time.
    """

    def __init__(self, spill_dir: Path, name: str) -> None:
        self.path = spill_dir / f"{name}.bin"
        self.rows = 0
        self._dtype: np.dtype[Any] | None = None
        self._width = 0
        self._vector = False

    def add(self, values: NDArray[Any]) -> None:
        array = np.ascontiguousarray(values)
        if self._dtype is None:
            self._dtype, self._vector = array.dtype, array.ndim == 2
            self._width = array.shape[1] if array.ndim == 2 else 1
        if array.dtype != self._dtype or array.reshape(len(array), -1).shape[1] != self._width:
            raise ValueError(f"{self.path.stem}: episodes differ in dtype or width")
        with self.path.open("ab") as out:
            out.write(array.tobytes())
        self.rows += len(array)

    def stats(self) -> FeatureStats:
        if self._dtype is None or self.rows == 0:
            raise ValueError(f"{self.path.stem}: no values")
        values = np.memmap(self.path, dtype=self._dtype, mode="r", shape=(self.rows, self._width))
        columns = [numeric_stats(np.asarray(values[:, j])) for j in range(self._width)]
        stats: FeatureStats = {
            name: np.concatenate([c[name] for c in columns])
            for name in STAT_NAMES
            if name != "count"
        }
        stats["count"] = columns[0]["count"]
        return {name: stats[name] for name in STAT_NAMES}


def stats_to_json(stats: dict[str, FeatureStats]) -> dict[str, dict[str, Any]]:
    """Nested lists for stats.json / episodes_stats.jsonl (shapes preserved)."""
    return {
        feature: {name: np.asarray(value).tolist() for name, value in by_stat.items()}
        for feature, by_stat in stats.items()
    }


def merge_histograms(histograms: Iterable[PixelHistogram]) -> PixelHistogram:
    merged: PixelHistogram | None = None
    for histogram in histograms:
        if merged is None:
            merged = PixelHistogram()
        merged.merge(histogram)
    if merged is None:
        raise ValueError("no histograms to merge")
    return merged
