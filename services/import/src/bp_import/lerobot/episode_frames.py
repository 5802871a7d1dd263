"""What the LeRobot writer takes in: one robot's dataset description and its episodes' frames.

These types know nothing of the raw episode format; an adapter turns a raw episode into an
`EpisodeFrames`. Camera streams are iterables of frames (an `(N, H, W, C)` array is one), so a
caller can decode lazily and the writer never holds a whole episode's images.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from bp_common.errors import InvalidInput
from numpy.typing import NDArray

CodebaseVersion = Literal["v3.0", "v2.1"]
VideoCodec = Literal["libx264", "libsvtav1"]

_CAMERA_NAME = re.compile(r"^[A-Za-z0-9_]+$")
TIMESTAMP_TOLERANCE_S = 1e-4


class EpisodeFramesError(InvalidInput):
    """An episode whose arrays disagree with the dataset description or with each other."""


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics in pixels, for an image of `width` x `height`."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_vertical_fov(cls, width: int, height: int, fovy_deg: float) -> CameraIntrinsics:
        """Square pixels, principal point at the image centre (MuJoCo's and most renderers')."""
        f = 0.5 * height / float(np.tan(np.radians(fovy_deg) / 2.0))
        return cls(width=width, height=height, fx=f, fy=f, cx=width / 2.0, cy=height / 2.0)

    def matrix(self) -> list[list[float]]:
        return [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]]


@dataclass(frozen=True)
class CameraSpec:
    """A camera of the dataset: one video feature `observation.images.<name>`."""

    name: str
    width: int
    height: int

    def __post_init__(self) -> None:
        if not _CAMERA_NAME.match(self.name):
            raise EpisodeFramesError("camera name must match [A-Za-z0-9_]+", camera=self.name)
        if self.width <= 0 or self.height <= 0 or self.width % 2 or self.height % 2:
            raise EpisodeFramesError(
                "camera width and height must be positive and even (yuv420p video)",
                camera=self.name,
                width=self.width,
                height=self.height,
            )

    @property
    def video_key(self) -> str:
        return f"observation.images.{self.name}"


@dataclass(frozen=True)
class ExtraFeature:
    """A per-frame float32 vector beside state and action (e.g. `observation.contact_force`),
    with the names of its columns and a sentence saying what it measures, in what unit."""

    key: str
    names: tuple[str, ...]
    description: str

    def __post_init__(self) -> None:
        if not self.names or len(set(self.names)) != len(self.names):
            raise EpisodeFramesError("an extra feature needs distinct column names", key=self.key)


@dataclass(frozen=True)
class DatasetSpec:
    """What every episode of one robot's dataset shares."""

    robot_type: str
    fps: int
    state_names: tuple[str, ...]
    action_names: tuple[str, ...]
    cameras: tuple[CameraSpec, ...] = ()
    extra: tuple[ExtraFeature, ...] = ()

    def __post_init__(self) -> None:
        if self.fps <= 0:
            raise EpisodeFramesError("fps must be positive", robot=self.robot_type, fps=self.fps)
        if not self.state_names or not self.action_names:
            raise EpisodeFramesError(
                "state and action need at least one named column", robot=self.robot_type
            )
        for names, what in ((self.state_names, "state"), (self.action_names, "action")):
            if len(set(names)) != len(names):
                raise EpisodeFramesError(f"{what} names repeat", robot=self.robot_type)
        if len({c.name for c in self.cameras}) != len(self.cameras):
            raise EpisodeFramesError("camera names repeat", robot=self.robot_type)
        reserved = {"observation.state", "action", *(c.video_key for c in self.cameras)}
        keys = [f.key for f in self.extra]
        if len(set(keys)) != len(keys) or reserved & set(keys):
            raise EpisodeFramesError("extra feature keys repeat", robot=self.robot_type)

    def camera(self, name: str) -> CameraSpec:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise EpisodeFramesError(
            "no such camera in the dataset", robot=self.robot_type, camera=name
        )


@dataclass
class CameraFrames:
    """One camera's frames for one episode.

    `rgb`: N frames of (H, W, 3) uint8. `depth_mm`: N frames of (H, W) uint16 millimetres
    (0 = no return). `segmentation`: N frames of (H, W) uint16 entity ids. `camera_to_world`:
    a (4, 4) pose for a fixed camera or (N, 4, 4) for a moving one (OpenCV axes: x right,
    y down, z forward, unless `extrinsics_convention` says otherwise).
    """

    rgb: Iterable[NDArray[np.uint8]]
    depth_mm: Iterable[NDArray[np.uint16]] | None = None
    segmentation: Iterable[NDArray[np.uint16]] | None = None
    intrinsics: CameraIntrinsics | None = None
    camera_to_world: NDArray[np.float64] | None = None
    extrinsics_convention: str = "opencv"
    rgb_file: Path | None = None
    """The RGB frames already stored as H.264 (the raw episode's `rgb.mp4`): when it was encoded
    with the dataset's video settings the writer copies its packets (`lerobot.video_copy`) and
    decodes it only for the image statistics; otherwise it encodes `rgb`."""
    depth_file: Path | None = None
    """The depth frames already stored losslessly (FFV1 gray16le in Matroska, as the raw episode
    format keeps them): the ground-truth pack copies this file instead of encoding `depth_mm`
    again, which it then never iterates."""
    segmentation_file: Path | None = None
    """The same for the segmentation: its frames are still iterated, for the 2D boxes, unless
    `segmentation_boxes` holds them already."""
    segmentation_boxes: NDArray[np.int32] | None = None
    """The 2D boxes of the segmentation, computed when it was recorded: (M, 7) rows of frame,
    object id, x_min, y_min, x_max, y_max, pixels (`bp_episode_format.object_boxes`), so that a
    copied segmentation file need not be decoded at all."""

    @property
    def has_ground_truth(self) -> bool:
        return (
            self.depth_mm is not None
            or self.segmentation is not None
            or self.intrinsics is not None
            or self.camera_to_world is not None
        )


@dataclass
class EpisodeFrames:
    """One episode: per-frame state and action, the task text, and each camera's frames.

    `timestamps`, when given, must be `frame_index / fps` within 1e-4 s: LeRobot decodes video
    at exactly those instants, so an episode recorded at another rate is refused, not resampled.
    """

    task: str
    state: NDArray[np.floating]
    action: NDArray[np.floating]
    cameras: Mapping[str, CameraFrames] = field(default_factory=dict)
    timestamps: NDArray[np.floating] | None = None
    source_id: str | None = None
    segmentation_labels: Mapping[int, str] = field(default_factory=dict)
    extra: Mapping[str, NDArray[np.floating]] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(np.shape(self.state)[0])


@dataclass(frozen=True)
class CheckedEpisode:
    """An episode whose numeric arrays were validated and cast to the dataset's dtypes."""

    frames: EpisodeFrames
    state: NDArray[np.float32]
    action: NDArray[np.float32]
    timestamps: NDArray[np.float32]
    extra: dict[str, NDArray[np.float32]] = field(default_factory=dict)

    @property
    def length(self) -> int:
        return int(self.state.shape[0])


def frame_timestamps(length: int, fps: int) -> NDArray[np.float32]:
    """LeRobot's per-frame `timestamp`: frame_index / fps in float64, stored as float32."""
    return (np.arange(length, dtype=np.float64) / fps).astype(np.float32)


def check_episode(spec: DatasetSpec, episode: EpisodeFrames) -> CheckedEpisode:
    """Validate shapes, finiteness, timestamps and cameras against the spec; cast to float32."""
    where = {"robot": spec.robot_type, "episode": episode.source_id}
    if not episode.task.strip():
        raise EpisodeFramesError("episode has no task text", **where)
    state = _matrix(episode.state, len(spec.state_names), "observation.state", where)
    action = _matrix(episode.action, len(spec.action_names), "action", where)
    n = state.shape[0]
    if n == 0:
        raise EpisodeFramesError("episode has no frames", **where)
    if action.shape[0] != n:
        raise EpisodeFramesError(
            "action and state differ in length",
            state_frames=n,
            action_frames=action.shape[0],
            **where,
        )
    timestamps = frame_timestamps(n, spec.fps)
    if episode.timestamps is not None:
        given = np.asarray(episode.timestamps, dtype=np.float64).reshape(-1)
        if given.shape[0] != n:
            raise EpisodeFramesError("timestamps and state differ in length", **where)
        drift = np.abs(given - np.arange(n) / spec.fps)
        if not np.all(np.isfinite(given)) or drift.max() > TIMESTAMP_TOLERANCE_S:
            raise EpisodeFramesError(
                "timestamps are not frame_index / fps",
                fps=spec.fps,
                max_drift_s=float(np.nanmax(drift)),
                **where,
            )
    missing = sorted({c.name for c in spec.cameras} - set(episode.cameras))
    extra = sorted(set(episode.cameras) - {c.name for c in spec.cameras})
    if missing or extra:
        raise EpisodeFramesError(
            "episode cameras differ from the dataset's", missing=missing, unexpected=extra, **where
        )
    for name, cam in episode.cameras.items():
        pose = cam.camera_to_world
        if pose is not None and np.shape(pose) not in ((4, 4), (n, 4, 4)):
            raise EpisodeFramesError(
                "camera_to_world must be (4, 4) or (N, 4, 4)",
                camera=name,
                shape=np.shape(pose),
                **where,
            )
    wanted = {f.key for f in spec.extra}
    if set(episode.extra) != wanted:
        raise EpisodeFramesError(
            "episode extra features differ from the dataset's",
            missing=sorted(wanted - set(episode.extra)),
            unexpected=sorted(set(episode.extra) - wanted),
            **where,
        )
    vectors: dict[str, NDArray[np.float32]] = {}
    for feature in spec.extra:
        values = _matrix(episode.extra[feature.key], len(feature.names), feature.key, where)
        if values.shape[0] != n:
            raise EpisodeFramesError(f"{feature.key} and state differ in length", **where)
        vectors[feature.key] = values
    return CheckedEpisode(
        frames=episode, state=state, action=action, timestamps=timestamps, extra=vectors
    )


def _matrix(
    values: Sequence[Sequence[float]] | NDArray[np.floating],
    width: int,
    key: str,
    where: dict[str, str | None],
) -> NDArray[np.float32]:
    array = np.asarray(values)
    if array.ndim != 2 or array.shape[1] != width:
        raise EpisodeFramesError(f"{key} must be (N, {width})", shape=array.shape, **where)
    if not np.issubdtype(array.dtype, np.number):
        raise EpisodeFramesError(f"{key} is not numeric", dtype=str(array.dtype), **where)
    cast = np.ascontiguousarray(array, dtype=np.float32)
    if not np.all(np.isfinite(cast)):
        raise EpisodeFramesError(f"{key} has NaN or infinite values (after float32 cast)", **where)
    return cast
