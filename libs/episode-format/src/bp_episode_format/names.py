"""The names the raw episode format fixes: format id, file names, streams and state arrays."""

from __future__ import annotations

FORMAT_NAME = "bp-raw-episode"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
"""Version 2 made the action's gripper column an opening fraction (1 open, 0 closed) for every
hand; in version 1 it was a finger target in metres, 0 closed. Both read alike: larger is more
open, 0 is closed."""
MANIFEST = "episode.json"
STATES = "states.npz"
STREAMS = ("rgb", "depth", "segmentation")
STREAM_FILES = {"rgb": "rgb.mp4", "depth": "depth.mkv", "segmentation": "segmentation.mkv"}
# How RGB is encoded: the LeRobot dataset's own video settings (a keyframe every 2 frames, no
# B-frames), so that the import stage copies the packets into the dataset instead of encoding
# them again. Episodes recorded before carry libx264's defaults (keyframes every 250 frames,
# B-frames) and are re-encoded by the import stage.
RGB_ENCODING = {
    "codec": "libx264",
    "pix_fmt": "yuv420p",
    "crf": 23,
    "preset": "veryfast",
    "gop": 2,
    "bframes": 0,
}
# What each stream decodes to: (H, W, 3) uint8 for RGB, (H, W) uint16 for the others.
DECODE_FORMATS = {"rgb": "rgb24", "depth": "gray16le", "segmentation": "gray16le"}

# Per-frame arrays of states.npz, first axis n_frames (docs/raw-episode-format.md).
STATE_ARRAYS = (
    "frame_index",
    "timestamp",
    "joint_position",
    "joint_velocity",
    "ee_position",
    "ee_quaternion",
    "gripper_opening",
    "action",
    "object_position",
    "object_quaternion",
    "articulation_position",
    "collisions_started",
    "collision_peak_force_n",
)
# One row per contact, first axis M (all contacts at each observation instant).
CONTACT_ARRAYS = (
    "contact_frame",
    "contact_geom_a",
    "contact_geom_b",
    "contact_entity_a",
    "contact_entity_b",
    "contact_force_n",
    "contact_is_collision",
)
# Optional (recorded since the collector knows them; older episodes lack them): each camera's
# pose per frame, (N, C, 3) and (N, C, 4) w,x,y,z, cameras in the manifest's order, in
# MuJoCo's camera axes (x right, y up, looking along -z).
CAMERA_POSE_ARRAYS = ("camera_position", "camera_quaternion")
# Optional (recorded since the collector measures it; older episodes lack it): the contact
# force on each finger, (N, F, 3) float64 newtons in the world frame, fingers in the order of
# the finger joints (`joint_names` after the arm joints): what fingertip sensors would read.
FINGERTIP_FORCE = "fingertip_force_n"
# Optional (recorded since the collector computes them; older episodes lack it): the 2D box of
# every object visible in every camera's frame, from its segmentation, (M, 8) int32 with the
# columns of `boxes.BOX_COLUMNS`, ordered by frame, camera, then object id.
SEGMENTATION_BOXES = "segmentation_boxes"
