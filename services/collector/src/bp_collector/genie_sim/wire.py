"""The wire facts both ends share: prim paths, robot configurations, poses and image layouts.

Genie Sim's reference says some of these and is silent on others; each choice is recorded in
docs/decisions/0020-genie-sim-protocol.md. Poses are in the world frame, z up, metres; an
orientation travels as a unit quaternion (w, x, y, z) in `Rpy`'s (rw, rx, ry, rz), as Genie
Sim's own client and server send it. RGB is height x width x 3 bytes, depth float32 metres
(0: no return), semantic masks uint32 label ids named by the response's label dictionary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from bp_genie_sim_api import se3_pose_pb2

Vector = Sequence[float] | np.ndarray
"""Coordinates as a sequence or an array."""

OBJECTS_ROOT = "/World/Objects"
"""Where added objects live: Genie Sim's reset removes what is under it."""
CAMERAS_ROOT = "/World/Cameras"
WRIST_CAMERA = "wrist"
"""The one camera added relative to the robot's hand (`is_local`) rather than to the world."""

GRIPPER_OPEN = "open"
GRIPPER_CLOSE = "close"
RECORDING_STARTED = "recording"
RECORDING_STOPPED = "stopped"

RGB_FORMAT = "rgb"
DEPTH_FORMAT = "depth"
SEMANTIC_NAME = "semantic"

ROBOT_LABEL = "robot"
FLOOR_LABEL = "floor"

# Genie Sim's own robots, by the configuration files its data collection loads.
GENIE_SIM_ROBOT_CONFIGS = {
    "g1": "G1_120s.json",
    "g2": "G2_omnipicker_fixed_dual.json",
}
_CONFIG_SUFFIX = ".json"


def robot_config_file(robot: str) -> str:
    """The `robot_cfg_file` init_robot asks for: Genie Sim's name for its own robots, and
    `<robot>.json` for the robots the pipeline models itself."""
    return GENIE_SIM_ROBOT_CONFIGS.get(robot, f"{robot}{_CONFIG_SUFFIX}")


def robot_from_config_file(config_file: str) -> str | None:
    """The robot a `robot_cfg_file` names, or None when it names none."""
    for robot, name in GENIE_SIM_ROBOT_CONFIGS.items():
        if config_file == name:
            return robot
    if config_file.endswith(_CONFIG_SUFFIX) and "/" not in config_file:
        return config_file[: -len(_CONFIG_SUFFIX)] or None
    return None


def _prim_name(name: str) -> str:
    # USD prim names are identifiers: anything else becomes "_"; a leading digit gets one too.
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"_{cleaned}"


def object_prim(asset_id: str) -> str:
    return f"{OBJECTS_ROOT}/{_prim_name(asset_id)}"


def camera_prim(camera: str) -> str:
    return f"{CAMERAS_ROOT}/{_prim_name(camera)}"


def camera_from_prim(prim: str) -> str:
    return prim.rstrip("/").rsplit("/", 1)[-1]


def set_pose(
    message: se3_pose_pb2.SE3RpyPose, position: Vector, quaternion: Vector
) -> se3_pose_pb2.SE3RpyPose:
    """Fill `message` with a position and a (w, x, y, z) quaternion; returns it."""
    message.position.x, message.position.y, message.position.z = (float(v) for v in position)
    w, x, y, z = (float(v) for v in quaternion)
    message.rpy.rw, message.rpy.rx, message.rpy.ry, message.rpy.rz = w, x, y, z
    return message


def read_pose(message: se3_pose_pb2.SE3RpyPose) -> tuple[np.ndarray, np.ndarray]:
    """(position, unit quaternion w, x, y, z) of a pose; a zero quaternion is a ValueError."""
    position = np.array([message.position.x, message.position.y, message.position.z])
    quat = np.array([message.rpy.rw, message.rpy.rx, message.rpy.ry, message.rpy.rz])
    norm = float(np.linalg.norm(quat))
    if not (np.all(np.isfinite(position)) and np.isfinite(norm)) or norm < 1e-9:
        raise ValueError("pose with a non-finite position or a zero quaternion")
    return position, quat / norm


def focal_geometry(fovy_deg: float, width: int, height: int) -> tuple[float, float, float]:
    """(focal length, horizontal aperture, vertical aperture) in millimetres for a pinhole with
    vertical field of view `fovy_deg` and square pixels, as add_camera takes them."""
    vertical = 20.955  # Isaac Sim's default vertical aperture, mm; only the ratios matter.
    focal = vertical / (2.0 * float(np.tan(np.radians(fovy_deg) / 2.0)))
    return focal, vertical * width / height, vertical


def fovy_from_focal(focal_length: float, vertical_aperture: float) -> float:
    return float(np.degrees(2.0 * np.arctan(vertical_aperture / (2.0 * focal_length))))
