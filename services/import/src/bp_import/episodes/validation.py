"""Validation of one raw episode: integrity, schema, shapes, finiteness, time, limits, rotations.

Every check names its failure with a `DefectReason`; a defective episode is reported and left
out of the dataset, and nothing here raises for bad data. What is checked, in order:

1. integrity: the manifest exists, is a `bp-raw-episode` version 1, and every file it lists is
   there with its size and sha256 (`bp_episode_format.read_episode`);
2. schema: the manifest's fields and types (`RawEpisodeManifest`), `n_frames` > 0;
3. states.npz: every array of the format present, with the shape the manifest's names imply
   (N frames, J joints, A action columns, K objects, P articulated joints, C cameras);
4. finiteness: no NaN or infinity in any float array;
5. time: `frame_index` is 0..N-1 and `timestamp` strictly increasing and equal to
   `frame_index / fps` (to 1 microsecond);
6. joint limits: when the manifest records `state.joint_limits`, every joint stays within its
   limits widened by `joint_limit_tolerance`. Episodes recorded without limits get only the
   finiteness check, and their joint-limit margin metric is not computed;
7. quaternions: end-effector, object and camera quaternions have a norm of 1 within
   `quaternion_norm_tolerance`;
8. contacts: contact rows point at existing frames;
9. cameras: each camera's three streams have the manifest's size and exactly N frames (packets
   are counted, nothing is decoded; a stream that cannot be decoded is caught when the dataset
   is written).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import av
import numpy as np
from bp_episode_format import (
    CAMERA_POSE_ARRAYS,
    CONTACT_ARRAYS,
    FINGERTIP_FORCE,
    STATE_ARRAYS,
    STREAMS,
    EpisodeIntegrityError,
    RawEpisode,
    read_episode,
)
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bp_import.import_config import QualitySettings

TIMESTAMP_TOLERANCE_S = 1e-6
_EPISODE_ID = r"^[A-Za-z0-9._-]{1,200}$"
_CAMERA_NAME = r"^[A-Za-z0-9_]{1,64}$"


class DefectReason(StrEnum):
    """Why an episode is invalid; the first eight come from the format's integrity check."""

    NOT_COMMITTED = "not_committed"
    UNREADABLE_MANIFEST = "unreadable_manifest"
    WRONG_FORMAT = "wrong_format"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNSAFE_PATH = "unsafe_path"
    MISSING_FILE = "missing_file"
    SIZE_MISMATCH = "size_mismatch"
    CHECKSUM_MISMATCH = "checksum_mismatch"
    SCHEMA = "schema"
    WRONG_ROBOT = "wrong_robot"
    NO_FRAMES = "no_frames"
    UNREADABLE_STATES = "unreadable_states"
    SHAPE = "shape"
    NON_FINITE = "non_finite"
    TIMESTAMPS = "timestamps"
    JOINT_LIMIT = "joint_limit"
    QUATERNION_NORM = "quaternion_norm"
    CONTACTS = "contacts"
    CAMERA_STREAM = "camera_stream"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class EpisodeDefect:
    """The first problem found in an episode, with what was measured."""

    reason: DefectReason
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {
            "reason": self.reason.value,
            "message": self.message,
            "details": {k: _plain(v) for k, v in self.details.items()},
        }


class EpisodeInvalid(Exception):
    """Raised inside validation only; `validate_episode` turns it into an EpisodeDefect."""

    def __init__(self, reason: DefectReason, message: str, **details: Any) -> None:
        super().__init__(message)
        self.defect = EpisodeDefect(reason, message, details)


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class StreamRecord(_Lenient):
    file: str
    codec: str


class CameraRecord(_Lenient):
    name: str = Field(pattern=_CAMERA_NAME)
    width: int = Field(gt=0, multiple_of=2)
    height: int = Field(gt=0, multiple_of=2)
    fovy_deg: float | None = Field(default=None, gt=0, lt=180)
    streams: dict[str, StreamRecord] = Field(default_factory=dict)


class JointLimits(_Lenient):
    lower: list[float | None]
    upper: list[float | None]


class StateRecord(_Lenient):
    joint_names: list[str] = Field(min_length=1)
    action_names: list[str] = Field(min_length=1)
    object_ids: list[str] = Field(default_factory=list)
    articulation_joints: list[str] = Field(default_factory=list)
    joint_limits: JointLimits | None = None


class CollisionRecord(_Lenient):
    count: int = Field(ge=0)
    peak_force_n: float = Field(default=0.0, ge=0)


class RawEpisodeManifest(_Lenient):
    """The manifest fields the import stage relies on (others are kept but not required)."""

    episode_id: str = Field(pattern=_EPISODE_ID)
    scene_id: str = Field(min_length=1)
    task_id: str = Field(min_length=1)
    task_kind: str = ""
    target: str | None = None
    instructions: list[str] = Field(default_factory=list)
    robot: str = Field(min_length=1)
    seed: int
    fps: int = Field(gt=0, le=1000)
    n_frames: int = Field(ge=0)
    success: bool
    collisions: CollisionRecord
    cameras: list[CameraRecord]
    segmentation_ids: dict[str, str] = Field(default_factory=dict)
    state: StateRecord

    @property
    def task_text(self) -> str:
        """What the dataset stores as the task: the first instruction, else the task id."""
        for line in self.instructions:
            if line.strip():
                return line.strip()
        return self.task_id


@dataclass(frozen=True)
class ValidEpisode:
    """An episode that passed every check, with its numeric arrays loaded."""

    raw: RawEpisode
    manifest: RawEpisodeManifest
    states: dict[str, NDArray[Any]]

    @property
    def n_frames(self) -> int:
        return self.manifest.n_frames


@dataclass(frozen=True)
class EpisodeValidation:
    """The outcome for one episode folder: valid (with arrays) or a defect."""

    source: str
    episode_id: str | None
    manifest: RawEpisodeManifest | None
    valid: ValidEpisode | None
    defect: EpisodeDefect | None

    @property
    def is_valid(self) -> bool:
        return self.valid is not None


def validate_episode(
    path: Path, settings: QualitySettings, robot: str | None = None
) -> EpisodeValidation:
    """Check one episode folder; never raises for what the folder holds."""
    source = path.name
    manifest: RawEpisodeManifest | None = None
    episode_id: str | None = None
    try:
        raw = _read(path)
        episode_id = _episode_id_of(raw.manifest)
        manifest = _schema(raw.manifest)
        if robot is not None and manifest.robot != robot:
            raise EpisodeInvalid(
                DefectReason.WRONG_ROBOT,
                "episode belongs to another robot",
                robot=manifest.robot,
                expected=robot,
            )
        if manifest.n_frames == 0:
            raise EpisodeInvalid(DefectReason.NO_FRAMES, "episode has no frames")
        states = _load_states(raw)
        _check_shapes(manifest, states)
        _check_finite(states)
        _check_time(manifest, states)
        _check_joint_limits(manifest, states, settings.joint_limit_tolerance)
        _check_quaternions(states, settings.quaternion_norm_tolerance)
        _check_contacts(manifest, states)
        _check_cameras(raw, manifest)
    except EpisodeInvalid as invalid:
        return EpisodeValidation(source, episode_id, manifest, None, invalid.defect)
    except Exception as exc:  # whatever else a damaged folder provokes is a defect, not a crash
        defect = EpisodeDefect(DefectReason.UNREADABLE, f"{type(exc).__name__}: {exc}")
        return EpisodeValidation(source, episode_id, manifest, None, defect)
    return EpisodeValidation(
        source, manifest.episode_id, manifest, ValidEpisode(raw, manifest, states), None
    )


def _read(path: Path) -> RawEpisode:
    try:
        return read_episode(path, verify=True)
    except EpisodeIntegrityError as exc:
        details = {k: v for k, v in exc.context.items() if k != "path"}
        raise EpisodeInvalid(DefectReason(exc.problem.value), exc.message, **details) from exc


def _episode_id_of(manifest: dict[str, Any]) -> str | None:
    value = manifest.get("episode_id")
    return value if isinstance(value, str) and re.match(_EPISODE_ID, value) else None


def _schema(document: dict[str, Any]) -> RawEpisodeManifest:
    try:
        manifest = RawEpisodeManifest.model_validate(document)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise EpisodeInvalid(
            DefectReason.SCHEMA, "manifest does not match the format", problems=problems[:10]
        ) from exc
    names = [c.name for c in manifest.cameras]
    if len(set(names)) != len(names):
        raise EpisodeInvalid(DefectReason.SCHEMA, "camera names repeat", cameras=names)
    limits = manifest.state.joint_limits
    joints = len(manifest.state.joint_names)
    if limits is not None and (len(limits.lower) != joints or len(limits.upper) != joints):
        raise EpisodeInvalid(
            DefectReason.SCHEMA, "joint_limits do not name every joint", joints=joints
        )
    if len(manifest.state.action_names) > joints + 1:
        raise EpisodeInvalid(DefectReason.SCHEMA, "more action columns than joints allow")
    return manifest


def _load_states(raw: RawEpisode) -> dict[str, NDArray[Any]]:
    try:
        return raw.states()
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise EpisodeInvalid(
            DefectReason.UNREADABLE_STATES, f"states.npz cannot be read: {exc}"
        ) from exc


def expected_shapes(manifest: RawEpisodeManifest, contacts: int) -> dict[str, tuple[int, ...]]:
    """Each array's shape as the manifest's names and n_frames imply."""
    n, s = manifest.n_frames, manifest.state
    j, a = len(s.joint_names), len(s.action_names)
    k, p, c = len(s.object_ids), len(s.articulation_joints), len(manifest.cameras)
    shapes: dict[str, tuple[int, ...]] = {
        "frame_index": (n,),
        "timestamp": (n,),
        "joint_position": (n, j),
        "joint_velocity": (n, j),
        "ee_position": (n, 3),
        "ee_quaternion": (n, 4),
        "gripper_opening": (n,),
        "action": (n, a),
        "object_position": (n, k, 3),
        "object_quaternion": (n, k, 4),
        "articulation_position": (n, p),
        "collisions_started": (n,),
        "collision_peak_force_n": (n,),
        "camera_position": (n, c, 3),
        "camera_quaternion": (n, c, 4),
        FINGERTIP_FORCE: (n, j - (a - 1), 3),
    }
    shapes.update({name: (contacts,) for name in CONTACT_ARRAYS})
    return shapes


def _check_shapes(manifest: RawEpisodeManifest, states: dict[str, NDArray[Any]]) -> None:
    missing = [name for name in (*STATE_ARRAYS, *CONTACT_ARRAYS) if name not in states]
    if missing:
        raise EpisodeInvalid(
            DefectReason.SHAPE, "states.npz lacks arrays of the format", missing=missing
        )
    contacts = int(np.shape(states["contact_frame"])[0]) if states["contact_frame"].ndim else -1
    for name, shape in expected_shapes(manifest, contacts).items():
        if name in (*CAMERA_POSE_ARRAYS, FINGERTIP_FORCE) and name not in states:
            continue
        array = states[name]
        if array.shape != shape:
            raise EpisodeInvalid(
                DefectReason.SHAPE,
                f"{name} has another shape than the manifest implies",
                array=name,
                shape=list(array.shape),
                expected=list(shape),
            )
        numeric = np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
        if not numeric:
            raise EpisodeInvalid(
                DefectReason.SHAPE, f"{name} is not numeric", array=name, dtype=str(array.dtype)
            )


def _check_finite(states: dict[str, NDArray[Any]]) -> None:
    for name, array in states.items():
        if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
            bad = np.argwhere(~np.isfinite(array))[0].tolist()
            raise EpisodeInvalid(
                DefectReason.NON_FINITE, f"{name} holds NaN or infinity", array=name, first_at=bad
            )


def _check_time(manifest: RawEpisodeManifest, states: dict[str, NDArray[Any]]) -> None:
    n, fps = manifest.n_frames, manifest.fps
    if not np.array_equal(states["frame_index"], np.arange(n)):
        raise EpisodeInvalid(DefectReason.TIMESTAMPS, "frame_index is not 0..n_frames-1")
    timestamps = states["timestamp"].astype(np.float64)
    steps = np.diff(timestamps)
    if np.any(steps <= 0):
        at = int(np.argmax(steps <= 0)) + 1
        raise EpisodeInvalid(
            DefectReason.TIMESTAMPS,
            "timestamps are not strictly increasing",
            frame=at,
            previous=float(timestamps[at - 1]),
            value=float(timestamps[at]),
        )
    drift = np.abs(timestamps - np.arange(n) / fps)
    if drift.max() > TIMESTAMP_TOLERANCE_S:
        at = int(np.argmax(drift))
        raise EpisodeInvalid(
            DefectReason.TIMESTAMPS,
            "timestamps are not frame_index / fps",
            fps=fps,
            frame=at,
            drift_s=float(drift[at]),
        )


def _check_joint_limits(
    manifest: RawEpisodeManifest, states: dict[str, NDArray[Any]], tolerance: float
) -> None:
    limits = manifest.state.joint_limits
    if limits is None:
        return
    q = states["joint_position"].astype(np.float64)
    lower = np.array([-np.inf if v is None else v for v in limits.lower])
    upper = np.array([np.inf if v is None else v for v in limits.upper])
    beyond = np.maximum(lower - q, q - upper)
    worst = np.unravel_index(int(np.argmax(beyond)), beyond.shape)
    if beyond[worst] > tolerance:
        joint = int(worst[1])
        raise EpisodeInvalid(
            DefectReason.JOINT_LIMIT,
            "a joint goes past its limit",
            joint=manifest.state.joint_names[joint],
            frame=int(worst[0]),
            value=float(q[worst]),
            lower=float(lower[joint]),
            upper=float(upper[joint]),
            tolerance=tolerance,
        )


def _check_quaternions(states: dict[str, NDArray[Any]], tolerance: float) -> None:
    for name in ("ee_quaternion", "object_quaternion", "camera_quaternion"):
        if name not in states or states[name].size == 0:
            continue
        deviation = np.abs(np.linalg.norm(states[name].astype(np.float64), axis=-1) - 1.0)
        if deviation.max() > tolerance:
            at = np.unravel_index(int(np.argmax(deviation)), deviation.shape)
            raise EpisodeInvalid(
                DefectReason.QUATERNION_NORM,
                f"{name} is not a unit quaternion",
                array=name,
                at=[int(i) for i in at],
                norm_deviation=float(deviation[at]),
                tolerance=tolerance,
            )


def _check_contacts(manifest: RawEpisodeManifest, states: dict[str, NDArray[Any]]) -> None:
    frames = states["contact_frame"]
    if frames.size and (frames.min() < 0 or frames.max() >= manifest.n_frames):
        raise EpisodeInvalid(
            DefectReason.CONTACTS,
            "contact rows point past the episode",
            first=int(frames.min()),
            last=int(frames.max()),
        )


def _check_cameras(raw: RawEpisode, manifest: RawEpisodeManifest) -> None:
    for camera in manifest.cameras:
        for stream in STREAMS:
            try:
                probe = raw.probe(camera.name, stream)
            except (OSError, av.FFmpegError) as exc:
                raise EpisodeInvalid(
                    DefectReason.CAMERA_STREAM,
                    "stream cannot be opened",
                    camera=camera.name,
                    stream=stream,
                    error=str(exc),
                ) from exc
            if (probe.width, probe.height) != (camera.width, camera.height):
                raise EpisodeInvalid(
                    DefectReason.CAMERA_STREAM,
                    "stream has another size",
                    camera=camera.name,
                    stream=stream,
                    size=[probe.width, probe.height],
                    expected=[camera.width, camera.height],
                )
            if probe.frames != manifest.n_frames:
                raise EpisodeInvalid(
                    DefectReason.CAMERA_STREAM,
                    "stream has another number of frames than the states",
                    camera=camera.name,
                    stream=stream,
                    frames=probe.frames,
                    expected=manifest.n_frames,
                )


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
