"""Video files for datasets: RGB to MP4 (H.264 or AV1) with exact timestamps, uint16 to FFV1.

Every frame gets `pts = frame number` in a 1/fps time base, so frame k of a file is presented at
exactly k / fps; LeRobot v3.0 then finds an episode's frame at `from_timestamp + timestamp`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from bp_import.lerobot.episode_frames import VideoCodec

# libav logs every encoder summary at INFO; keep the stage's logs readable.
logging.getLogger("libav").setLevel(logging.WARNING)

_CANONICAL_CODEC: dict[str, str] = {"libx264": "h264", "libsvtav1": "av1"}


@dataclass(frozen=True)
class VideoSettings:
    """How RGB cameras are encoded. Defaults: H.264, yuv420p, a keyframe every 2 frames.

    `gop` 2 is LeRobot's default: training reads random frames, and a decoder must start at the
    keyframe before each one. H.264 is written without B-frames: reordered frames start a file
    at a negative decode time, and joining a one-frame file (which has none) with such files
    (LeRobot's v2.1 -> v3.0 converter does) yields non-increasing decode times that no MP4
    muxer accepts. With a keyframe every 2 frames B-frames would save almost nothing anyway.
    `threads` 0 lets the codec pick; cameras are also encoded in parallel by the writer.
    """

    codec: VideoCodec = "libx264"
    crf: int = 23
    preset: str | int = "veryfast"
    gop: int = 2
    pix_fmt: str = "yuv420p"
    threads: int = 0

    @classmethod
    def av1(cls, crf: int = 30, preset: int = 12, gop: int = 2) -> VideoSettings:
        """SVT-AV1 with LeRobot's default quality and speed."""
        return cls(codec="libsvtav1", crf=crf, preset=preset, gop=gop)

    @property
    def canonical_codec(self) -> str:
        """The name a decoder reports (`h264`, `av1`): what info.json's `video.codec` holds."""
        return _CANONICAL_CODEC[self.codec]

    def codec_options(self) -> dict[str, str]:
        options = {"g": str(self.gop), "crf": str(self.crf), "preset": str(self.preset)}
        options.update(self.extra_options())
        if self.codec == "libsvtav1" and self.threads:
            options["svtav1-params"] = f"lp={self.threads}"
        elif self.threads:
            options["threads"] = str(self.threads)
        return options

    def extra_options(self) -> dict[str, str]:
        """Options beyond LeRobot's structured fields (its `video.extra_options`)."""
        return {"bf": "0"} if self.codec == "libx264" else {}

    def info_fields(self) -> dict[str, Any]:
        """The encoder settings as LeRobot records them in a video feature's `info`."""
        return {
            "video.g": self.gop,
            "video.crf": self.crf,
            "video.preset": self.preset,
            "video.fast_decode": 0,
            "video.video_backend": "pyav",
            "video.extra_options": dict(self.extra_options()),
        }


class Mp4Encoder:
    """Appends RGB frames to one MP4 file; frame k is presented at exactly k / fps."""

    def __init__(
        self, path: Path, width: int, height: int, fps: int, settings: VideoSettings
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if settings.codec == "libsvtav1":
            # SVT-AV1 prints its whole configuration to stderr unless told to log errors only.
            os.environ.setdefault("SVT_LOG", "1")
        self.path = path
        self.fps = fps
        self.width = width
        self.height = height
        self.frames = 0
        # Compressed bytes handed to the muxer so far: the file's size without its index.
        self.payload_bytes = 0
        self._container = av.open(str(path), mode="w")
        stream = self._container.add_stream(
            settings.codec, rate=fps, options=settings.codec_options()
        )
        stream.width = width
        stream.height = height
        stream.pix_fmt = settings.pix_fmt
        stream.codec_context.time_base = Fraction(1, fps)
        self._stream = stream
        self._closed = False

    def encode(self, rgb: NDArray[np.uint8]) -> None:
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(
                f"frame {self.frames} of {self.path.name}: expected "
                f"({self.height}, {self.width}, 3) uint8, got {rgb.shape} {rgb.dtype}"
            )
        # Wrapping the array (no copy) is safe: encode() converts it to yuv420p before it returns.
        frame = av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames
        frame.time_base = Fraction(1, self.fps)
        self._mux(self._stream.encode(frame))
        self.frames += 1

    def _mux(self, packets: list[Any]) -> None:
        self.payload_bytes += sum(packet.size for packet in packets)
        self._container.mux(packets)

    @property
    def seconds(self) -> float:
        """Presentation time of the next frame (the duration written so far)."""
        return self.frames / self.fps

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._mux(self._stream.encode(None))
        self._container.close()


class LosslessEncoder:
    """Appends uint16 (H, W) frames (depth in mm, segmentation ids) to FFV1 in Matroska.

    Matroska's time base is 1 ms, so frame k is presented at round(1000 k / fps) ms; the frame
    order, not the clock, is what readers use.
    """

    def __init__(self, path: Path, width: int, height: int, fps: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.width = width
        self.height = height
        self.fps = fps
        self.frames = 0
        self._container = av.open(str(path), mode="w", format="matroska")
        stream = self._container.add_stream(
            "ffv1", rate=fps, options={"level": "3", "slicecrc": "1"}
        )
        stream.width = width
        stream.height = height
        stream.pix_fmt = "gray16le"
        stream.codec_context.time_base = Fraction(1, fps)
        self._stream = stream
        self._closed = False

    def encode(self, values: NDArray[np.uint16]) -> None:
        if values.shape != (self.height, self.width) or values.dtype != np.uint16:
            raise ValueError(
                f"frame {self.frames} of {self.path.name}: expected "
                f"({self.height}, {self.width}) uint16, got {values.shape} "
                f"{values.dtype}"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(values), format="gray16le")
        frame.pts = self.frames
        frame.time_base = Fraction(1, self.fps)
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._container.mux(self._stream.encode(None))
        self._container.close()


def is_lossless_stream(path: Path, width: int, height: int) -> bool:
    """Whether `path` is already what `LosslessEncoder` writes: one FFV1 gray16le video of
    `width` x `height` in Matroska (so it can be copied instead of decoded and encoded again)."""
    try:
        with av.open(str(path)) as container:
            if "matroska" not in container.format.name or len(container.streams) != 1:
                return False
            context = container.streams.video[0].codec_context
            return (
                context.name == "ffv1"
                and context.pix_fmt == "gray16le"
                and (context.width, context.height) == (width, height)
            )
    except (av.error.FFmpegError, IndexError):
        return False


def read_lossless_frames(path: Path) -> NDArray[np.uint16]:
    """All frames of an FFV1 gray16le file as an (N, H, W) uint16 array."""
    with av.open(str(path)) as container:
        frames = [
            frame.to_ndarray(format="gray16le")
            for frame in container.decode(container.streams.video[0])
        ]
    if not frames:
        return np.zeros((0, 0, 0), dtype=np.uint16)
    return np.stack(frames).astype(np.uint16, copy=False)


def decoded_presentation_times(path: Path) -> list[float]:
    """Presentation time in seconds of every decoded frame of a video file, in decode order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        time_base = stream.time_base
        assert time_base is not None
        return [
            float(frame.pts * time_base)
            for frame in container.decode(stream)
            if frame.pts is not None
        ]
