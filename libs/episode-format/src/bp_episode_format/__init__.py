"""The raw episode format (version 1): its names and layout, and a reader that verifies it.

The collector's backends write episodes (MuJoCo: `bp_collector.mujoco.recording`); the import
stage reads them. Both take the format's names from here, so writer and reader cannot drift
apart. The format itself is described in docs/raw-episode-format.md:

    episode.json                         manifest, written last; lists every file with sha256
    states.npz                           per-frame state, action and contact arrays
    cameras/<name>/rgb.mp4               H.264, yuv420p, a keyframe every 2 frames, no B-frames
    cameras/<name>/depth.mkv             FFV1 gray16le, millimetres, 0 = no return (lossless)
    cameras/<name>/segmentation.mkv      FFV1 gray16le, entity ids (lossless)
"""

from __future__ import annotations

from bp_episode_format.boxes import BOX_COLUMNS, ObjectBox, object_boxes
from bp_episode_format.names import (
    CAMERA_POSE_ARRAYS,
    CONTACT_ARRAYS,
    DECODE_FORMATS,
    FINGERTIP_FORCE,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST,
    READABLE_VERSIONS,
    RGB_ENCODING,
    SEGMENTATION_BOXES,
    STATE_ARRAYS,
    STATES,
    STREAM_FILES,
    STREAMS,
)
from bp_episode_format.reader import (
    EpisodeIntegrityError,
    IntegrityProblem,
    RawEpisode,
    StreamProbe,
    read_episode,
    sha256_file,
)

__all__ = [
    "BOX_COLUMNS",
    "CAMERA_POSE_ARRAYS",
    "CONTACT_ARRAYS",
    "DECODE_FORMATS",
    "FINGERTIP_FORCE",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MANIFEST",
    "READABLE_VERSIONS",
    "RGB_ENCODING",
    "SEGMENTATION_BOXES",
    "STATES",
    "STATE_ARRAYS",
    "STREAMS",
    "STREAM_FILES",
    "EpisodeIntegrityError",
    "IntegrityProblem",
    "ObjectBox",
    "RawEpisode",
    "StreamProbe",
    "object_boxes",
    "read_episode",
    "sha256_file",
]
