"""Raw episode format (version 1): write an episode directory, and read it back verified.

Layout (see docs/raw-episode-format.md):
    episode.json                         manifest, written last; lists every file with sha256
    states.npz                           per-frame state, action and contact arrays
    cameras/<name>/rgb.mp4               H.264, yuv420p
    cameras/<name>/depth.mkv             FFV1 gray16le, millimetres, 0 = no return (lossless)
    cameras/<name>/segmentation.mkv      FFV1 gray16le, entity ids (lossless)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from bp_common.errors import InvalidInput

FORMAT_NAME = "bp-raw-episode"
FORMAT_VERSION = 1
MANIFEST = "episode.json"
STATES = "states.npz"
STREAMS = ("rgb", "depth", "segmentation")
STREAM_FILES = {"rgb": "rgb.mp4", "depth": "depth.mkv", "segmentation": "segmentation.mkv"}


class EpisodeIntegrityError(InvalidInput):
    """An episode directory whose files are missing, altered or of an unknown format."""


class _VideoStream:
    def __init__(self, path: Path, codec: str, pix_fmt: str, width: int, height: int, fps: int,
                 options: dict[str, str]) -> None:
        self.container = av.open(str(path), mode="w")
        stream = self.container.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width = width
        stream.height = height
        stream.pix_fmt = pix_fmt
        stream.options = dict[str, object](options)
        self.stream = stream
        self.in_format = "rgb24" if pix_fmt == "yuv420p" else "gray16le"

    def write(self, index: int, image: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(image, format=self.in_format)
        frame.pts = index
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def stream_spec(stream: str) -> dict[str, Any]:
    """How each stream is stored; recorded in the manifest so readers need no guessing."""
    if stream == "rgb":
        return {"file": STREAM_FILES[stream], "codec": "libx264", "pix_fmt": "yuv420p",
                "crf": 23, "preset": "veryfast", "lossless": False}
    if stream == "depth":
        return {"file": STREAM_FILES[stream], "codec": "ffv1", "pix_fmt": "gray16le",
                "unit": "mm", "invalid_value": 0, "lossless": True}
    return {"file": STREAM_FILES[stream], "codec": "ffv1", "pix_fmt": "gray16le",
            "ids": "see segmentation_ids", "lossless": True}


class EpisodeWriter:
    """Streams camera frames to their encoders as they arrive; the manifest commits the episode."""

    def __init__(self, out_dir: Path, cameras: tuple[str, ...], width: int, height: int,
                 fps: int) -> None:
        if width % 2 or height % 2:
            raise InvalidInput("image width and height must be even for yuv420p video",
                               width=width, height=height)
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        # An episode is rewritten whole: first un-commit any earlier one, then drop its files
        # so that none of them is listed in the new manifest.
        (out_dir / MANIFEST).unlink(missing_ok=True)
        (out_dir / STATES).unlink(missing_ok=True)
        if (out_dir / "cameras").is_dir():
            shutil.rmtree(out_dir / "cameras")
        self.streams: dict[tuple[str, str], _VideoStream] = {}
        for camera in cameras:
            folder = out_dir / "cameras" / camera
            folder.mkdir(parents=True, exist_ok=True)
            self.streams[(camera, "rgb")] = _VideoStream(
                folder / STREAM_FILES["rgb"], "libx264", "yuv420p", width, height, fps,
                {"crf": "23", "preset": "veryfast", "threads": "1"})
            for stream in ("depth", "segmentation"):
                self.streams[(camera, stream)] = _VideoStream(
                    folder / STREAM_FILES[stream], "ffv1", "gray16le", width, height, fps,
                    {"threads": "1"})

    def add_images(self, index: int, camera: str, rgb: np.ndarray, depth_mm: np.ndarray,
                   segmentation: np.ndarray) -> None:
        self.streams[(camera, "rgb")].write(index, rgb)
        self.streams[(camera, "depth")].write(index, depth_mm)
        self.streams[(camera, "segmentation")].write(index, segmentation)

    def close_streams(self) -> None:
        for stream in self.streams.values():
            stream.close()

    def write_states(self, arrays: dict[str, np.ndarray]) -> None:
        with open(self.out_dir / STATES, "wb") as fh:
            np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]

    def commit(self, manifest: dict[str, Any]) -> Path:
        """Checksum every file and write the manifest atomically, last."""
        files = []
        for path in sorted(self.out_dir.rglob("*")):
            if path.is_file() and path.name != MANIFEST and not path.name.endswith(".tmp"):
                files.append({"path": path.relative_to(self.out_dir).as_posix(),
                              "sha256": sha256_file(path), "size": path.stat().st_size})
        body = dict(manifest)
        body["format"] = FORMAT_NAME
        body["format_version"] = FORMAT_VERSION
        body["files"] = files
        target = self.out_dir / MANIFEST
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, target)
        return target


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class RawEpisode:
    """A verified episode directory; arrays are decoded on demand."""

    path: Path
    manifest: dict[str, Any]

    @property
    def n_frames(self) -> int:
        return int(self.manifest["n_frames"])

    @property
    def cameras(self) -> list[str]:
        return [c["name"] for c in self.manifest["cameras"]]

    def states(self) -> dict[str, np.ndarray]:
        with np.load(self.path / STATES) as npz:
            return {k: npz[k] for k in npz.files}

    def _decode(self, camera: str, stream: str) -> np.ndarray:
        if camera not in self.cameras:
            raise KeyError(f"no camera {camera!r} in episode {self.manifest['episode_id']}")
        fmt = "rgb24" if stream == "rgb" else "gray16le"
        path = self.path / "cameras" / camera / STREAM_FILES[stream]
        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format=fmt) for f in container.decode(video=0)]
        return np.stack(frames)

    def rgb(self, camera: str) -> np.ndarray:
        """(n_frames, height, width, 3) uint8."""
        return self._decode(camera, "rgb")

    def depth_mm(self, camera: str) -> np.ndarray:
        """(n_frames, height, width) uint16 millimetres; 0 where nothing was seen."""
        return self._decode(camera, "depth")

    def segmentation(self, camera: str) -> np.ndarray:
        """(n_frames, height, width) uint16 ids, named by the manifest's segmentation_ids."""
        return self._decode(camera, "segmentation")


def read_episode(path: Path, verify: bool = True) -> RawEpisode:
    """Open an episode directory; with `verify`, every listed file's size and sha256 must match."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise EpisodeIntegrityError("episode has no manifest (never committed)", path=path)
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as exc:
        raise EpisodeIntegrityError(f"unreadable manifest: {exc}", path=path) from exc
    if manifest.get("format") != FORMAT_NAME:
        raise EpisodeIntegrityError("not a raw episode manifest", path=path)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise EpisodeIntegrityError(
            f"unsupported raw episode format_version {manifest.get('format_version')}", path=path)
    if verify:
        for entry in manifest["files"]:
            file = path / entry["path"]
            if not file.is_file():
                raise EpisodeIntegrityError("file listed in the manifest is missing", path=path,
                                            file=entry["path"])
            if file.stat().st_size != entry["size"]:
                raise EpisodeIntegrityError("file size differs from the manifest", path=path,
                                            file=entry["path"])
            if sha256_file(file) != entry["sha256"]:
                raise EpisodeIntegrityError("file checksum differs from the manifest", path=path,
                                            file=entry["path"])
    return RawEpisode(path=path, manifest=manifest)
