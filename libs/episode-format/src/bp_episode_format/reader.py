"""Open a raw episode directory, verify it against its manifest, and decode it on demand."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

import av
import numpy as np
from bp_common.errors import InvalidInput
from numpy.typing import NDArray

from bp_episode_format.names import (
    DECODE_FORMATS,
    FORMAT_NAME,
    MANIFEST,
    READABLE_VERSIONS,
    STATES,
    STREAM_FILES,
)


class IntegrityProblem(StrEnum):
    """Why a directory is not a whole, unaltered episode of a format this reader knows."""

    NOT_COMMITTED = "not_committed"
    UNREADABLE_MANIFEST = "unreadable_manifest"
    WRONG_FORMAT = "wrong_format"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNSAFE_PATH = "unsafe_path"
    MISSING_FILE = "missing_file"
    SIZE_MISMATCH = "size_mismatch"
    CHECKSUM_MISMATCH = "checksum_mismatch"


class EpisodeIntegrityError(InvalidInput):
    """An episode directory whose files are missing, altered or of an unknown format."""

    def __init__(self, message: str, problem: IntegrityProblem, **context: Any) -> None:
        super().__init__(message, **context)
        self.problem = problem


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class StreamProbe:
    """What a stream's container says without decoding a frame (packets are counted)."""

    frames: int
    width: int
    height: int
    codec: str


@dataclass(frozen=True)
class RawEpisode:
    """A (verified) episode directory; arrays and frames are decoded on demand."""

    path: Path
    manifest: dict[str, Any]

    @property
    def episode_id(self) -> str:
        return str(self.manifest["episode_id"])

    @property
    def n_frames(self) -> int:
        return int(self.manifest["n_frames"])

    @property
    def cameras(self) -> list[str]:
        return [c["name"] for c in self.manifest["cameras"]]

    def camera(self, name: str) -> dict[str, Any]:
        for camera in self.manifest["cameras"]:
            if camera["name"] == name:
                return dict(camera)
        raise KeyError(f"no camera {name!r} in episode {self.manifest['episode_id']}")

    def states(self) -> dict[str, np.ndarray]:
        with np.load(self.path / STATES) as npz:
            return {k: npz[k] for k in npz.files}

    def stream_path(self, camera: str, stream: str) -> Path:
        if camera not in self.cameras:
            raise KeyError(f"no camera {camera!r} in episode {self.manifest['episode_id']}")
        return self.path / "cameras" / camera / STREAM_FILES[stream]

    def iter_frames(self, camera: str, stream: str) -> Iterator[NDArray[Any]]:
        """Frames one at a time: (H, W, 3) uint8 for rgb, (H, W) uint16 otherwise."""
        fmt = DECODE_FORMATS[stream]
        with av.open(str(self.stream_path(camera, stream))) as container:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format=fmt)

    def frames_at(self, camera: str, stream: str, indices: Iterable[int]) -> list[NDArray[Any]]:
        """The frames at `indices` (in increasing order), decoding no further than the last."""
        wanted = sorted(set(indices))
        fmt = DECODE_FORMATS[stream]
        found: list[NDArray[Any]] = []
        if not wanted:
            return found
        with av.open(str(self.stream_path(camera, stream))) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index == wanted[len(found)]:
                    found.append(frame.to_ndarray(format=fmt))
                    if len(found) == len(wanted):
                        break
        return found

    def probe(self, camera: str, stream: str) -> StreamProbe:
        """Counts the stream's packets (one per frame for these codecs) without decoding."""
        with av.open(str(self.stream_path(camera, stream))) as container:
            video = container.streams.video[0]
            frames = sum(1 for packet in container.demux(video) if packet.size > 0)
            return StreamProbe(
                frames=frames,
                width=video.codec_context.width,
                height=video.codec_context.height,
                codec=video.codec_context.name,
            )

    def _decode(self, camera: str, stream: str) -> np.ndarray:
        return np.stack(list(self.iter_frames(camera, stream)))

    def rgb(self, camera: str) -> np.ndarray:
        """(n_frames, height, width, 3) uint8."""
        return self._decode(camera, "rgb")

    def depth_mm(self, camera: str) -> np.ndarray:
        """(n_frames, height, width) uint16 millimetres; 0 where nothing was seen."""
        return self._decode(camera, "depth")

    def segmentation(self, camera: str) -> np.ndarray:
        """(n_frames, height, width) uint16 ids, named by the manifest's segmentation_ids."""
        return self._decode(camera, "segmentation")


def _safe_relative(name: object) -> bool:
    if not isinstance(name, str) or not name or "\\" in name:
        return False
    parts = PurePosixPath(name).parts
    return not PurePosixPath(name).is_absolute() and ".." not in parts and "" not in parts


def read_episode(path: Path, verify: bool = True) -> RawEpisode:
    """Open an episode directory; with `verify`, every listed file's size and sha256 must match."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise EpisodeIntegrityError(
            "episode has no manifest (never committed)", IntegrityProblem.NOT_COMMITTED, path=path
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EpisodeIntegrityError(
            f"unreadable manifest: {exc}", IntegrityProblem.UNREADABLE_MANIFEST, path=path
        ) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise EpisodeIntegrityError("not a raw episode manifest", IntegrityProblem.WRONG_FORMAT,
                                    path=path)
    if manifest.get("format_version") not in READABLE_VERSIONS:
        raise EpisodeIntegrityError(
            f"unsupported raw episode format_version {manifest.get('format_version')}",
            IntegrityProblem.UNSUPPORTED_VERSION,
            path=path,
        )
    files = manifest.get("files")
    if not isinstance(files, list) or not all(isinstance(e, dict) for e in files):
        raise EpisodeIntegrityError(
            "manifest has no list of files", IntegrityProblem.UNREADABLE_MANIFEST, path=path
        )
    for entry in files:
        if not _safe_relative(entry.get("path")):
            raise EpisodeIntegrityError(
                "manifest lists a path outside the episode",
                IntegrityProblem.UNSAFE_PATH,
                path=path,
                file=entry.get("path"),
            )
    if verify:
        for entry in files:
            file = path / entry["path"]
            if not file.is_file():
                raise EpisodeIntegrityError(
                    "file listed in the manifest is missing",
                    IntegrityProblem.MISSING_FILE,
                    path=path,
                    file=entry["path"],
                )
            if file.stat().st_size != entry.get("size"):
                raise EpisodeIntegrityError(
                    "file size differs from the manifest",
                    IntegrityProblem.SIZE_MISMATCH,
                    path=path,
                    file=entry["path"],
                )
            if sha256_file(file) != entry.get("sha256"):
                raise EpisodeIntegrityError(
                    "file checksum differs from the manifest",
                    IntegrityProblem.CHECKSUM_MISMATCH,
                    path=path,
                    file=entry["path"],
                )
    return RawEpisode(path=path, manifest=manifest)
