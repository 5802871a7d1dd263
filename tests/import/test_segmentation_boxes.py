"""Boxes from segmentation: one per visible object, tight around its pixels."""

from __future__ import annotations

import numpy as np
from bp_episode_format import object_boxes


def numpy_boxes(ids: np.ndarray) -> dict[int, tuple[int, int, int, int, int]]:
    out = {}
    for object_id in np.unique(ids):
        if object_id == 0:
            continue
        rows, cols = np.nonzero(ids == object_id)
        out[int(object_id)] = (cols.min(), rows.min(), cols.max(), rows.max(), rows.size)
    return out


def as_dict(ids: np.ndarray) -> dict[int, tuple[int, int, int, int, int]]:
    return {b.object_id: (b.x_min, b.y_min, b.x_max, b.y_max, b.pixels) for b in object_boxes(ids)}


def test_overlapping_and_split_objects() -> None:
    ids = np.zeros((40, 60), dtype=np.uint16)
    ids[5:20, 10:30] = 3
    ids[15:35, 25:50] = 4  # occludes part of 3
    ids[38:40, 0:2] = 3  # a far-away fragment of 3 widens its box
    ids[0, 59] = 7  # a single pixel
    boxes = as_dict(ids)
    assert boxes == numpy_boxes(ids)
    assert boxes[3] == (0, 5, 29, 39, int((ids == 3).sum()))
    assert boxes[7] == (59, 0, 59, 0, 1)


def test_large_ids_and_random_masks_match_numpy() -> None:
    rng = np.random.default_rng(8)
    ids = rng.choice(
        np.array([0, 1, 65535, 40000, 123], dtype=np.uint16),
        size=(300, 200),
        p=[0.5, 0.2, 0.1, 0.1, 0.1],
    )
    assert as_dict(ids) == numpy_boxes(ids)


def test_background_only_gives_no_boxes() -> None:
    assert object_boxes(np.zeros((8, 8), dtype=np.uint16)) == []
