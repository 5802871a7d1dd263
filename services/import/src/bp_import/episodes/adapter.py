"""Raw episode -> what the LeRobot writer takes: the robot's `DatasetSpec` and `EpisodeFrames`.

- `observation.state` is the joint positions (`joint_position`, named by `state.joint_names`:
  arm joints, then the fingers); `action` is the commanded arm joint targets and gripper
  (`action`, named by `state.action_names`).
- The task is the episode's first instruction (the task id when it has none).
- Each camera is one video feature from its RGB stream; depth (mm) and segmentation ids go to the
  ground-truth pack, with pinhole intrinsics from the camera's vertical field of view (square
  pixels, centred principal point, as MuJoCo renders) and, when the episode records camera
  poses, camera-to-world extrinsics in OpenCV axes (x right, y down, z forward): one pose for a
  camera that never moves, one per frame otherwise.
- Frames are decoded lazily, one at a time, while the writer encodes them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from bp_episode_format import RawEpisode
from numpy.typing import NDArray

from bp_import.episodes.selection import DatasetLayout
from bp_import.episodes.validation import RawEpisodeManifest
from bp_import.lerobot.episode_frames import (
    CameraFrames,
    CameraIntrinsics,
    CameraSpec,
    DatasetSpec,
    EpisodeFrames,
)
from bp_import.quality.metrics import rotation_matrices

# MuJoCo cameras look along -z with y up; OpenCV's look along +z with y down.
_MUJOCO_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


def dataset_spec(robot: str, layout: DatasetLayout) -> DatasetSpec:
    return DatasetSpec(
        robot_type=robot,
        fps=layout.fps,
        state_names=layout.joint_names,
        action_names=layout.action_names,
        cameras=tuple(CameraSpec(name, width, height) for name, width, height in layout.cameras),
    )


def camera_to_world(positions: NDArray[Any], quaternions: NDArray[Any]) -> NDArray[np.float64]:
    """(N, 4, 4) OpenCV-axes poses from MuJoCo camera positions and orientations; (4, 4) when
    every frame has the same pose."""
    n = positions.shape[0]
    poses = np.tile(np.eye(4), (n, 1, 1))
    poses[:, :3, :3] = rotation_matrices(quaternions) @ _MUJOCO_TO_OPENCV
    poses[:, :3, 3] = positions
    if n and np.allclose(poses, poses[0], atol=1e-9, rtol=0):
        return np.asarray(poses[0])
    return poses


def episode_frames(raw: RawEpisode, manifest: RawEpisodeManifest) -> EpisodeFrames:
    """The episode as the writer takes it; camera streams stay undecoded until iterated."""
    states = raw.states()
    cameras: dict[str, CameraFrames] = {}
    for index, camera in enumerate(manifest.cameras):
        pose = None
        if "camera_position" in states and "camera_quaternion" in states:
            pose = camera_to_world(
                states["camera_position"][:, index], states["camera_quaternion"][:, index]
            )
        intrinsics = (
            CameraIntrinsics.from_vertical_fov(camera.width, camera.height, camera.fovy_deg)
            if camera.fovy_deg is not None
            else None
        )
        cameras[camera.name] = CameraFrames(
            rgb=raw.iter_frames(camera.name, "rgb"),
            depth_mm=raw.iter_frames(camera.name, "depth"),
            segmentation=raw.iter_frames(camera.name, "segmentation"),
            intrinsics=intrinsics,
            camera_to_world=pose,
        )
    return EpisodeFrames(
        task=manifest.task_text,
        state=states["joint_position"],
        action=states["action"],
        cameras=cameras,
        timestamps=states["timestamp"],
        source_id=manifest.episode_id,
        segmentation_labels={int(k): v for k, v in manifest.segmentation_ids.items()},
    )
