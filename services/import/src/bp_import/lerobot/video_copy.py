"""RGB already encoded with the dataset's settings goes into its MP4 files as is (a remux).

The collector records each camera's RGB as H.264 with the dataset's own settings (keyframe
every 2 frames, no B-frames, crf 23, veryfast). Such a stream's compressed packets are copied
into the dataset's video file, each re-timestamped to its frame number there, instead of
decoded and encoded again: the dataset's frames are then bit for bit the raw episode's.

A stream is copied only when it provably is what the dataset's encoder would write: H.264,
yuv420p, the camera's size and the dataset's rate, starting on a keyframe, and carrying x264's
own record of its settings (the SEI message in its first packet) equal to the record of an
encoder set up from the dataset's `VideoSettings` (threading aside, which changes no decoded
pixel's meaning, only how the work was split). Episodes are appended to a file only while their
stream headers (SPS/PPS) equal the file's. Anything else is decoded and encoded as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray

from bp_import.lerobot.video_encoding import VideoSettings

_X264_OPTIONS = re.compile(rb"x264 - core [^\x00]*? options: ([^\x00]*)")
# How the encoder split its work; the same bitstream syntax either way.
_THREADING = frozenset({"threads", "lookahead_threads", "sliced_threads", "slices"})


def x264_options(first_packet: bytes) -> dict[str, str] | None:
    """The settings x264 records in a stream's first packet (its SEI), threading left out."""
    found = _X264_OPTIONS.search(first_packet)
    if found is None:
        return None
    pairs = (item.partition("=") for item in found.group(1).decode("ascii", "replace").split())
    return {key: value for key, _, value in pairs if key not in _THREADING}


@lru_cache(maxsize=16)
def _reference_options(settings: VideoSettings, width: int, height: int, fps: int) -> str:
    """What x264 records when set up as the dataset's encoder (one black frame encoded)."""
    context: Any = av.CodecContext.create(settings.codec, "w")
    context.width, context.height, context.pix_fmt = width, height, settings.pix_fmt
    context.time_base = Fraction(1, fps)
    context.options = settings.codec_options()
    frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
    frame.pts = 0
    packets = [*context.encode(frame), *context.encode(None)]
    options = x264_options(bytes(packets[0])) if packets else None
    return repr(sorted(options.items())) if options else ""


def copyable_rgb(path: Path, width: int, height: int, fps: int, settings: VideoSettings) -> bool:
    """Whether `path` holds H.264 that the dataset's encoder would have written, packet for
    packet interchangeable with it, so it can be copied into the dataset's video files."""
    if settings.codec != "libx264":
        return False
    try:
        with av.open(str(path)) as container:
            if len(container.streams) != 1 or not container.streams.video:
                return False
            stream = container.streams.video[0]
            context = stream.codec_context
            if (
                context.name != "h264"
                or context.pix_fmt != settings.pix_fmt
                or (context.width, context.height) != (width, height)
                or stream.average_rate != fps
                or not context.extradata
            ):
                return False
            first = next((p for p in container.demux(stream) if p.size > 0), None)
            if first is None or not first.is_keyframe:
                return False
            options = x264_options(bytes(first))
    except (av.error.FFmpegError, OSError):
        return False
    reference = _reference_options(settings, width, height, fps)
    return options is not None and bool(reference) and repr(sorted(options.items())) == reference


def stream_headers(path: Path) -> bytes:
    """The stream's decoder configuration (avcC: SPS and PPS)."""
    with av.open(str(path)) as container:
        return bytes(container.streams.video[0].codec_context.extradata or b"")


class Mp4Remuxer:
    """Appends whole H.264 streams to one MP4 file; frame k of the file is at exactly k / fps.

    The file takes its stream parameters from the first source (`template`); a source is
    appended only if its headers equal them (`accepts`).
    """

    def __init__(self, path: Path, template: Path, fps: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.fps = fps
        self.frames = 0
        self.payload_bytes = 0
        self._time_base = Fraction(1, fps)
        self._container = av.open(str(path), mode="w")
        with av.open(str(template)) as source:
            stream = source.streams.video[0]
            self.width = stream.codec_context.width
            self.height = stream.codec_context.height
            self.headers = bytes(stream.codec_context.extradata or b"")
            self._stream = self._container.add_stream_from_template(stream)
        self._closed = False

    def accepts(self, source: Path) -> bool:
        return stream_headers(source) == self.headers

    def append(
        self, source: Path, on_frame: Callable[[NDArray[np.uint8]], None] | None = None
    ) -> tuple[int, int]:
        """Copy every packet of `source` after the file's frames; `on_frame` sees each decoded
        frame (RGB) on the way. Returns (packets copied, frames decoded)."""
        packets = decoded = 0
        with av.open(str(source)) as container:
            stream = container.streams.video[0]
            if bytes(stream.codec_context.extradata or b"") != self.headers:
                raise ValueError(f"{source} has other stream headers than {self.path.name}")
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if on_frame is not None:
                    for frame in packet.decode():
                        on_frame(frame.to_ndarray(format="rgb24"))
                        decoded += 1
                # Without B-frames decode order is presentation order: packet i is frame i.
                packet.pts = packet.dts = self.frames + packets
                packet.duration = 1
                packet.time_base = self._time_base
                packet.stream = self._stream
                self.payload_bytes += packet.size
                self._container.mux(packet)
                packets += 1
            if on_frame is not None:
                for frame in stream.codec_context.decode(None):
                    on_frame(frame.to_ndarray(format="rgb24"))
                    decoded += 1
        self.frames += packets
        return packets, decoded

    @property
    def seconds(self) -> float:
        """Presentation time of the next frame (the duration written so far)."""
        return self.frames / self.fps

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._container.close()
