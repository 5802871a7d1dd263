"""The pipeline world frame, and conversion of a stage's coordinates into it.

The pipeline frame is Z up, right-handed, in metres. A Z-up stage only needs its units scaled by
`metersPerUnit`; a Y-up stage is also turned +90 degrees about X, so a stage point (x, y, z)
becomes (x, -z, y). Matrices follow usd-core's row-vector convention (p' = p * M), so a stage
world matrix `W` maps into the pipeline frame as `W * to_pipeline`.

Object orientations are reported in the same spirit: an object's own axes follow its stage's
convention (a mug in a Y-up stage has its local +Y up), so they are converted too, and an
upright, unrotated object has the identity orientation whatever the stage's up axis. Cameras
and lights keep USD's fixed local convention (looking down local -Z), so their orientation is
the plain rotation of their local axes into the pipeline frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pxr import Gf

from bp_export.scene.model import Box3, Quat, Vec3

PIPELINE_FRAME: dict[str, str] = {"up_axis": "z", "units": "m", "handedness": "right"}

UpAxis = Literal["Y", "Z"]

_Y_UP_TO_Z_UP = Gf.Matrix4d(
    1.0, 0.0, 0.0, 0.0,
    0.0, 0.0, 1.0, 0.0,
    0.0, -1.0, 0.0, 0.0,
    0.0, 0.0, 0.0, 1.0,
)  # fmt: skip


@dataclass(frozen=True)
class StageFrame:
    """How a stage measures space: which axis is up and how long one unit is."""

    up_axis: UpAxis
    meters_per_unit: float

    @property
    def upright_to_local(self) -> Gf.Matrix4d:
        """Rotation from an object's converted (Z-up) axes to its own stage-convention axes."""
        return _Y_UP_TO_Z_UP.GetInverse() if self.up_axis == "Y" else Gf.Matrix4d(1.0)

    @property
    def to_pipeline(self) -> Gf.Matrix4d:
        """Row-vector matrix taking stage world coordinates to the pipeline frame."""
        scale = Gf.Matrix4d().SetScale(Gf.Vec3d(self.meters_per_unit))
        if self.up_axis == "Y":
            return _Y_UP_TO_Z_UP * scale
        return scale


def to_pipeline(stage_world: Gf.Matrix4d, frame: StageFrame) -> Gf.Matrix4d:
    """A prim's stage world matrix expressed in the pipeline frame."""
    return stage_world * frame.to_pipeline


def object_orientation(stage_world: Gf.Matrix4d, frame: StageFrame) -> Quat:
    """An object's orientation in the pipeline frame, its own axes converted like the world's."""
    return rotation_of(frame.upright_to_local * stage_world * frame.to_pipeline)


def transform_point(matrix: Gf.Matrix4d, point: Vec3 | Gf.Vec3d | Gf.Vec3f) -> Vec3:
    p = matrix.Transform(Gf.Vec3d(point[0], point[1], point[2]))
    return (float(p[0]), float(p[1]), float(p[2]))


def transform_direction(matrix: Gf.Matrix4d, direction: Vec3 | Gf.Vec3d) -> Vec3:
    """A direction carried by the matrix and normalised (scale does not change where it points)."""
    d = matrix.TransformDir(Gf.Vec3d(direction[0], direction[1], direction[2]))
    length = d.GetLength()
    if length == 0.0 or not math.isfinite(length):
        return (0.0, 0.0, 0.0)
    return (float(d[0] / length), float(d[1] / length), float(d[2] / length))


def position_of(matrix: Gf.Matrix4d) -> Vec3:
    t = matrix.ExtractTranslation()
    return (float(t[0]), float(t[1]), float(t[2]))


def matrix_is_finite(matrix: Gf.Matrix4d) -> bool:
    return all(math.isfinite(matrix[r][c]) for r in range(4) for c in range(4))


def rotation_of(matrix: Gf.Matrix4d) -> Quat:
    """The proper rotation closest to the matrix's linear part, as a unit quaternion (w, x, y, z).

    Scale and shear are removed with a polar decomposition, so the result is always a valid
    orientation. A mirroring matrix (negative scale, common in exported scenes) is read as a
    negative scale along the prim's local X axis. The sign is fixed so that w >= 0, which makes
    equal orientations compare equal.
    """
    rows = np.array([[matrix[r][c] for c in range(3)] for r in range(3)], dtype=float)
    if np.linalg.det(rows) < 0:
        rows[0] = -rows[0]
    linear = rows.T
    u, _, vt = np.linalg.svd(linear)
    if np.linalg.det(u @ vt) < 0:
        u[:, -1] = -u[:, -1]
    return _quaternion_from_rotation(u @ vt)


def _quaternion_from_rotation(r: np.ndarray) -> Quat:
    trace = r[0, 0] + r[1, 1] + r[2, 2]
    if trace > 0:
        s = math.sqrt(trace + 1.0) * 2
        q = (0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s)
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = math.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2]) * 2
        q = ((r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s)
    elif r[1, 1] > r[2, 2]:
        s = math.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2]) * 2
        q = ((r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s)
    else:
        s = math.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1]) * 2
        q = ((r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s)
    norm = math.sqrt(sum(c * c for c in q))
    w, x, y, z = (float(c / norm) for c in q)
    if w < 0 or (w == 0 and next((c for c in (x, y, z) if c != 0), 0.0) < 0):
        w, x, y, z = -w, -x, -y, -z
    return (w, x, y, z)


def aligned_box(local_range: Gf.Range3d, local_to_pipeline: Gf.Matrix4d) -> Box3:
    """The axis-aligned pipeline-frame box around a box given in some local space."""
    aligned = Gf.BBox3d(local_range, local_to_pipeline).ComputeAlignedRange()
    lo, hi = aligned.GetMin(), aligned.GetMax()
    return Box3((lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2]))


def oriented_size(local_range: Gf.Range3d, local_to_pipeline: Gf.Matrix4d) -> Vec3:
    """Extents of a local box along its own (scaled) axes, in metres."""
    size = local_range.GetSize()
    lengths = [
        Gf.Vec3d(
            local_to_pipeline[r][0], local_to_pipeline[r][1], local_to_pipeline[r][2]
        ).GetLength()
        for r in range(3)
    ]
    return (size[0] * lengths[0], size[1] * lengths[1], size[2] * lengths[2])


def stage_point_to_pipeline(frame: StageFrame, point: Vec3) -> Vec3:
    """A point given in the stage's own axes and units, in the pipeline frame."""
    return transform_point(frame.to_pipeline, point)


def pipeline_point_to_stage(frame: StageFrame, point: Vec3) -> Vec3:
    return transform_point(frame.to_pipeline.GetInverse(), point)


def stage_rotation_to_pipeline(frame: StageFrame, rotation: Quat) -> Quat:
    """An object orientation given in the stage's axes, as `object_orientation` reports it."""
    w, x, y, z = rotation
    matrix = Gf.Matrix4d().SetRotate(Gf.Quatd(w, Gf.Vec3d(x, y, z)))
    return object_orientation(matrix, frame)


def pipeline_rotation_to_stage(frame: StageFrame, rotation: Quat) -> Quat:
    w, x, y, z = rotation
    matrix = Gf.Matrix4d().SetRotate(Gf.Quatd(w, Gf.Vec3d(x, y, z)))
    return rotation_of(
        frame.upright_to_local.GetInverse() * matrix * frame.to_pipeline.GetInverse()
    )
