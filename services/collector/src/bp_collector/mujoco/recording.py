"""Raw episode format (version 1): write an episode directory; the manifest commits it.

The format's names and its verifying reader live in `bp_episode_format` (the import stage reads
episodes with it); they are re-exported here for the collector's callers. Layout (see
docs/raw-episode-format.md):
    episode.json                         manifest, written last; lists every file with sha256
    states.npz                           per-frame state, action and contact arrays
    cameras/<name>/rgb.mp4               H.264, yuv420p, a keyframe every 2 frames, no B-frames
    cameras/<name>/depth.mkv             FFV1 gray16le, millimetres, 0 = no return (lossless)
    cameras/<name>/segmentation.mkv      FFV1 gray16le, entity ids (lossless)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import av
import numpy as np
from bp_common.errors import InvalidInput
from bp_episode_format import (
    BOX_COLUMNS,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    RGB_ENCODING,
    SEGMENTATION_BOXES,
    STATES,
    STREAM_FILES,
    STREAMS,
    EpisodeIntegrityError,
    RawEpisode,
    object_boxes,
    read_episode,
    sha256_file,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST",
    "STATES",
    "STREAMS",
    "STREAM_FILES",
    "EpisodeIntegrityError",
    "EpisodeWriter",
    "RawEpisode",
    "read_episode",
    "sha256_file",
    "stream_spec",
]


class _VideoStream:
    def __init__(
        self,
        path: Path,
        codec: str,
        pix_fmt: str,
        width: int,
        height: int,
        fps: int,
        options: dict[str, str],
    ) -> None:
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
        return {"file": STREAM_FILES[stream], **RGB_ENCODING, "lossless": False}
    if stream == "depth":
        return {
            "file": STREAM_FILES[stream],
            "codec": "ffv1",
            "pix_fmt": "gray16le",
            "unit": "mm",
            "invalid_value": 0,
            "lossless": True,
        }
    return {
        "file": STREAM_FILES[stream],
        "codec": "ffv1",
        "pix_fmt": "gray16le",
        "ids": "see segmentation_ids",
        "lossless": True,
    }


class EpisodeWriter:
    """Streams camera frames to their encoders as they arrive; the manifest commits the episode."""

    def __init__(
        self, out_dir: Path, cameras: tuple[str, ...], width: int, height: int, fps: int
    ) -> None:
        if width % 2 or height % 2:
            raise InvalidInput(
                "image width and height must be even for yuv420p video", width=width, height=height
            )
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        # An episode is rewritten whole: first un-commit any earlier one, then drop its files
        # so that none of them is listed in the new manifest.
        (out_dir / MANIFEST).unlink(missing_ok=True)
        (out_dir / STATES).unlink(missing_ok=True)
        if (out_dir / "cameras").is_dir():
            shutil.rmtree(out_dir / "cameras")
        self.streams: dict[tuple[str, str], _VideoStream] = {}
        self.cameras = cameras
        # Every visible object's box in every frame: the import stage's ground truth needs
        # them, and here the segmentation is at hand without decoding it again.
        self._boxes: list[tuple[int, ...]] = []
        for camera in cameras:
            folder = out_dir / "cameras" / camera
            folder.mkdir(parents=True, exist_ok=True)
            self.streams[(camera, "rgb")] = _VideoStream(
                folder / STREAM_FILES["rgb"],
                str(RGB_ENCODING["codec"]),
                str(RGB_ENCODING["pix_fmt"]),
                width,
                height,
                fps,
                {
                    "crf": str(RGB_ENCODING["crf"]),
                    "preset": str(RGB_ENCODING["preset"]),
                    "g": str(RGB_ENCODING["gop"]),
                    "bf": str(RGB_ENCODING["bframes"]),
                    "threads": "1",
                },
            )
            for stream in ("depth", "segmentation"):
                self.streams[(camera, stream)] = _VideoStream(
                    folder / STREAM_FILES[stream],
                    "ffv1",
                    "gray16le",
                    width,
                    height,
                    fps,
                    {"threads": "1"},
                )

    def add_images(
        self,
        index: int,
        camera: str,
        rgb: np.ndarray,
        depth_mm: np.ndarray,
        segmentation: np.ndarray,
    ) -> None:
        self.streams[(camera, "rgb")].write(index, rgb)
        self.streams[(camera, "depth")].write(index, depth_mm)
        self.streams[(camera, "segmentation")].write(index, segmentation)
        which = self.cameras.index(camera)
        self._boxes += [
            (index, which, b.object_id, b.x_min, b.y_min, b.x_max, b.y_max, b.pixels)
            for b in object_boxes(segmentation)
        ]

    def close_streams(self) -> None:
        for stream in self.streams.values():
            stream.close()

    def write_states(self, arrays: dict[str, np.ndarray]) -> None:
        """states.npz: the simulator's arrays, and the segmentation boxes when there are cameras."""
        if self.cameras:
            boxes = np.array(sorted(self._boxes), dtype=np.int32).reshape(-1, len(BOX_COLUMNS))
            arrays = {**arrays, SEGMENTATION_BOXES: boxes}
        with open(self.out_dir / STATES, "wb") as fh:
            np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]

    def commit(self, manifest: dict[str, Any]) -> Path:
        """Checksum every file and write the manifest atomically, last."""
        files = []
        for path in sorted(self.out_dir.rglob("*")):
            if path.is_file() and path.name != MANIFEST and not path.name.endswith(".tmp"):
                files.append(
                    {
                        "path": path.relative_to(self.out_dir).as_posix(),
                        "sha256": sha256_file(path),
                        "size": path.stat().st_size,
                    }
                )
        body = dict(manifest)
        body["format"] = FORMAT_NAME
        body["format_version"] = FORMAT_VERSION
        body["files"] = files
        target = self.out_dir / MANIFEST
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, target)
        return target
