"""The raw episode streams: depth and segmentation survive encoding bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bp_collector.mujoco.recording import EpisodeWriter, read_episode
from bp_common.errors import InvalidInput
from bp_episode_format import SEGMENTATION_BOXES, object_boxes


def test_depth_and_segmentation_round_trip_losslessly_and_rgb_closely(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n, h, w = 6, 24, 32
    depth = rng.integers(0, 65536, size=(n, h, w), dtype=np.uint16)
    depth[0, 0, 0], depth[0, 0, 1] = 0, 65535
    seg = rng.integers(0, 40, size=(n, h, w), dtype=np.uint16)
    rgb = np.zeros((n, h, w, 3), dtype=np.uint8)
    rgb[:, :, : w // 2] = (200, 30, 30)
    rgb[:, :, w // 2 :] = (20, 40, 220)
    writer = EpisodeWriter(tmp_path / "ep", ("front",), w, h, fps=30)
    for i in range(n):
        writer.add_images(i, "front", rgb[i], depth[i], seg[i])
    writer.close_streams()
    writer.write_states({"frame_index": np.arange(n), "timestamp": np.arange(n) / 30})
    writer.commit(
        {
            "episode_id": "roundtrip",
            "n_frames": n,
            "cameras": [{"name": "front", "width": w, "height": h}],
        }
    )

    episode = read_episode(tmp_path / "ep")
    assert np.array_equal(episode.depth_mm("front"), depth)
    assert np.array_equal(episode.segmentation("front"), seg)
    decoded = episode.rgb("front").astype(int)
    assert decoded.shape == rgb.shape
    assert np.abs(decoded - rgb.astype(int)).mean() < 6  # Lossy H.264, but close.


def test_the_boxes_recorded_are_those_of_the_decoded_segmentation(tmp_path: Path) -> None:
    n, h, w = 4, 16, 20
    seg = np.zeros((n, h, w), dtype=np.uint16)
    for i in range(n):
        seg[i, 2 + i : 7 + i, 3:9] = 5
        seg[i, 10:14, 1 + 2 * i : 4 + 2 * i] = 9
    cameras = ("wrist", "front")
    writer = EpisodeWriter(tmp_path / "ep", cameras, w, h, fps=30)
    blank = np.zeros((h, w, 3), dtype=np.uint8)
    for i in range(n):
        writer.add_images(i, "wrist", blank, seg[i], seg[i])
        writer.add_images(i, "front", blank, seg[i], seg[::-1][i])
    writer.close_streams()
    writer.write_states({"frame_index": np.arange(n)})
    writer.commit(
        {
            "episode_id": "boxes",
            "n_frames": n,
            "cameras": [{"name": c, "width": w, "height": h} for c in cameras],
        }
    )

    episode = read_episode(tmp_path / "ep")
    expected = [
        (i, c, b.object_id, b.x_min, b.y_min, b.x_max, b.y_max, b.pixels)
        for i in range(n)
        for c, camera in enumerate(cameras)
        for b in object_boxes(episode.segmentation(camera)[i])
    ]
    assert episode.states()[SEGMENTATION_BOXES].tolist() == [list(row) for row in expected]
    assert len(expected) == 2 * n * 2


def test_odd_image_sizes_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="even"):
        EpisodeWriter(tmp_path / "odd", ("front",), 63, 48, fps=30)
