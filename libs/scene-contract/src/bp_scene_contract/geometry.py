"""Points, boxes and poses of the pipeline's world frame, as both scene documents write them.

World frame: Z up, right-handed, metres. Orientation quaternions are (w, x, y, z).
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]


class ContractModel(BaseModel):
    """Every model of the contract: immutable, finite numbers only, and no undeclared field.

    An unknown field is refused rather than ignored: within a schema version a reader that does
    not know a field cannot know whether it changes the meaning of the ones it does know.
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, use_attribute_docstrings=True
    )


class Box(ContractModel):
    """An axis-aligned box in world coordinates, `min` corner to `max` corner."""

    min: Vec3
    max: Vec3

    @property
    def size(self) -> Vec3:
        return (self.max[0] - self.min[0], self.max[1] - self.min[1], self.max[2] - self.min[2])

    @property
    def centre(self) -> Vec3:
        return (
            (self.min[0] + self.max[0]) / 2,
            (self.min[1] + self.max[1]) / 2,
            (self.min[2] + self.max[2]) / 2,
        )

    def overlaps(self, other: Box, margin: float = 0.0) -> bool:
        """True when the boxes, each grown by `margin`, share volume."""
        return all(
            self.min[i] - margin < other.max[i] and other.min[i] - margin < self.max[i]
            for i in range(3)
        )

    def overlaps_xy(self, other: Box, margin: float = 0.0) -> bool:
        return all(
            self.min[i] - margin < other.max[i] and other.min[i] - margin < self.max[i]
            for i in range(2)
        )

    def contains_point(self, point: Vec3, tolerance: float = 0.0) -> bool:
        return all(self.min[i] - tolerance <= point[i] <= self.max[i] + tolerance for i in range(3))

    def xy_area(self) -> float:
        sx, sy, _ = self.size
        return sx * sy

    def distance_xy_to_point(self, x: float, y: float) -> float:
        """Horizontal distance from (x, y) to the box footprint (0 inside it)."""
        dx = max(self.min[0] - x, 0.0, x - self.max[0])
        dy = max(self.min[1] - y, 0.0, y - self.max[1])
        return math.hypot(dx, dy)


def _ordered(box: Box) -> Box:
    if any(lo > hi for lo, hi in zip(box.min, box.max, strict=True)):
        raise ValueError(f"box min {box.min} exceeds max {box.max}")
    return box


OrderedBox = Annotated[Box, AfterValidator(_ordered)]
"""A box as the documents carry it: no coordinate of `min` above the same one of `max`.
(Planning may compute empty boxes on its way; a document never holds one.)"""


class Pose(ContractModel):
    """A position and an orientation quaternion (w, x, y, z)."""

    position: Vec3
    orientation: Quat
