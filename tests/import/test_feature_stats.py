"""Statistics are exact: they equal numpy computed over every value, whatever the layout."""

from __future__ import annotations

import numpy as np
import pytest
from bp_import.lerobot.feature_stats import QUANTILES, STAT_NAMES, PixelHistogram, numeric_stats


def numpy_image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """The definition: every pixel of every frame, scaled to [0, 1], per channel."""
    pixels = frames.reshape(-1, 3).astype(np.float64) / 255.0
    stats = {
        "min": pixels.min(0),
        "max": pixels.max(0),
        "mean": pixels.mean(0),
        "std": pixels.std(0),
    }
    for name, q in QUANTILES.items():
        stats[name] = np.quantile(pixels, q, axis=0)
    return {k: v.reshape(3, 1, 1) for k, v in stats.items()}


def test_image_stats_from_histograms_equal_numpy_over_every_pixel() -> None:
    rng = np.random.default_rng(3)
    # Skewed, clipped and sparse channels: quantiles fall between distinct values.
    frames = np.stack(
        [
            np.clip(rng.normal(40, 30, (37, 29)), 0, 255),
            rng.integers(200, 256, (37, 29)),
            np.where(rng.random((37, 29)) < 0.97, 0, 255),
        ],
        axis=-1,
    )
    frames = np.stack([np.roll(frames, k, axis=0) for k in range(7)]).astype(np.uint8)
    histogram = PixelHistogram()
    for frame in frames:
        histogram.add(frame)
    stats = histogram.stats()
    assert list(stats) == list(STAT_NAMES)
    for name, expected in numpy_image_stats(frames).items():
        assert stats[name].shape == (3, 1, 1)
        np.testing.assert_allclose(stats[name], expected, rtol=0, atol=1e-12, err_msg=name)
    assert stats["count"].tolist() == [7]


def test_merged_histograms_give_the_stats_of_all_frames_together() -> None:
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (5, 8, 6, 3), dtype=np.uint8)
    b = rng.integers(0, 100, (3, 8, 6, 3), dtype=np.uint8)
    left, right = PixelHistogram(), PixelHistogram()
    for frame in a:
        left.add(frame)
    for frame in b:
        right.add(frame)
    left.merge(right)
    expected = numpy_image_stats(np.concatenate([a, b]))
    for name, value in expected.items():
        np.testing.assert_allclose(left.stats()[name], value, rtol=0, atol=1e-12)
    assert left.stats()["count"].tolist() == [8]


def test_numeric_stats_keep_lerobot_shapes() -> None:
    rng = np.random.default_rng(5)
    vector = rng.normal(size=(50, 4)).astype(np.float32)
    stats = numeric_stats(vector)
    assert {k: v.shape for k, v in stats.items()} == {
        **dict.fromkeys(STAT_NAMES, (4,)),
        "count": (1,),
    }
    np.testing.assert_array_equal(stats["q90"], np.quantile(vector.astype(np.float64), 0.9, 0))
    scalar = numeric_stats(np.arange(10, dtype=np.int64))
    assert scalar["mean"].shape == (1,) and scalar["mean"][0] == 4.5
    assert scalar["count"].tolist() == [10]


def test_a_single_frame_has_quantiles_equal_to_its_value() -> None:
    stats = numeric_stats(np.array([[1.5, -2.0]], dtype=np.float32))
    for name in QUANTILES:
        assert stats[name].tolist() == [1.5, -2.0]
    assert stats["std"].tolist() == [0.0, 0.0]


def test_histogram_refuses_non_rgb_frames() -> None:
    with pytest.raises(ValueError, match="uint8"):
        PixelHistogram().add(np.zeros((4, 4, 3), dtype=np.float32))
