"""2D bounding boxes of every object in a segmentation image (uint16 entity ids per pixel).

The collector records them with each episode (`SEGMENTATION_BOXES` in states.npz) and the
import stage computes them the same way from a segmentation it has to decode anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

BACKGROUND_ID = 0
# The columns of states.npz's `segmentation_boxes` (M, 8) int32: one row per object visible in
# one camera's frame; `camera` indexes the manifest's cameras.
BOX_COLUMNS = ("frame", "camera", "object_id", "x_min", "y_min", "x_max", "y_max", "pixels")
# Above this many (row x id) bins, ids are first renumbered densely (a sort) before counting.
_DENSE_BIN_LIMIT = 4_000_000


@dataclass(frozen=True)
class ObjectBox:
    """Pixel box of one entity: inclusive bounds, x = column, y = row, and its pixel count."""

    object_id: int
    x_min: int
    y_min: int
    x_max: int
    y_max: int
    pixels: int


def object_boxes(
    segmentation: NDArray[np.uint16], ignore: frozenset[int] = frozenset({BACKGROUND_ID})
) -> list[ObjectBox]:
    """One box per id present in the image (ids in `ignore` skipped), sorted by id."""
    if segmentation.ndim != 2:
        raise ValueError(f"segmentation must be (H, W), got {segmentation.shape}")
    height, width = segmentation.shape
    ids = segmentation.astype(np.int64, copy=False)
    top = int(ids.max(initial=0)) + 1
    if top * max(height, width) > _DENSE_BIN_LIMIT:
        present_ids, dense = np.unique(ids, return_inverse=True)
        dense = dense.reshape(height, width)
    else:
        present_ids, dense = np.arange(top), ids
    labels = len(present_ids)
    # Counting (row, id) and (column, id) pairs finds every id's rows and columns in two passes.
    per_row = np.bincount(
        (np.arange(height)[:, None] * labels + dense).ravel(), minlength=height * labels
    ).reshape(height, labels)
    per_col = np.bincount(
        (np.arange(width)[None, :] * labels + dense).ravel(), minlength=width * labels
    ).reshape(width, labels)
    pixels = per_row.sum(axis=0)
    boxes: list[ObjectBox] = []
    for label in np.flatnonzero(pixels):
        object_id = int(present_ids[label])
        if object_id in ignore:
            continue
        rows = np.flatnonzero(per_row[:, label])
        cols = np.flatnonzero(per_col[:, label])
        boxes.append(
            ObjectBox(
                object_id=object_id,
                x_min=int(cols[0]),
                y_min=int(rows[0]),
                x_max=int(cols[-1]),
                y_max=int(rows[-1]),
                pixels=int(pixels[label]),
            )
        )
    return boxes
