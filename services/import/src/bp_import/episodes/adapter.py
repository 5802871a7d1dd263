"""Raw episode -> what the LeRobot writer takes: the robot's `DatasetSpec` and `EpisodeFrames`.

- `observation.state` is the joint positions (`joint_position`, named by `state.joint_names`:
  arm joints, then the fingers); `action` is the commanded arm joint targets and gripper
  (`action`, named by `state.action_names`).
- `observation.contact_force`, when the dataset has it (`contact_force_feature`): the raw
  `fingertip_force_n`, (N, F, 3) newtons in the world frame, flattened finger by finger into
  columns `<finger joint>.fx`, `.fy`, `.fz`.
- The task is the instruction the dataset chose for the episode (`task`), by default its first
  instruction (the task id when it has none).
- Each camera is one video feature from its RGB stream; depth (mm) and segmentation ids go to the
  ground-truth pack, with pinhole intrinsics from the camera's vertical field of view (square
  pixels, centred principal point, as MuJoCo renders) and, when the episode records camera
  poses, camera-to-world extrinsics in OpenCV axes (x right, y down, z forward): one pose for a
  camera that never moves, one per frame otherwise.
- Frames are decoded lazily, one at a time, while the writer encodes them. The stream files go
  along too: RGB recorded with the dataset's video settings is copied into the dataset's videos
  (decoded once, for the image statistics), and depth and segmentation, being lossless FFV1
  already, are copied into the pack; the segmentation is decoded for its 2D boxes only in
  episodes recorded before the collector recorded the boxes (`segmentation_boxes`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from bp_episode_format import (
    BOX_COLUMNS,
    FINGERTIP_FORCE,
    SEGMENTATION_BOXES,
    STATES,
    RawEpisode,
)
from numpy.typing import NDArray

from bp_import.episodes.selection import DatasetLayout
from bp_import.episodes.validation import RawEpisodeManifest
from bp_import.lerobot.episode_frames import (
    CameraFrames,
    CameraIntrinsics,
    CameraSpec,
    DatasetSpec,
    EpisodeFrames,
    ExtraFeature,
)
from bp_import.quality.metrics import rotation_matrices

# MuJoCo cameras look along -z with y up; OpenCV's look along +z with y down.
_MUJOCO_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


CONTACT_FORCE = "observation.contact_force"


def contact_force_feature(layout: DatasetLayout) -> ExtraFeature:
    """The fingers' contact forces as one feature: three columns per finger joint."""
    fingers = layout.joint_names[len(layout.action_names) - 1 :]
    return ExtraFeature(
        key=CONTACT_FORCE,
        names=tuple(f"{finger}.{axis}" for finger in fingers for axis in ("fx", "fy", "fz")),
        description=(
            "Contact force on each finger from the physics, in newtons, in the world frame "
            "(z up): the sum of the full contact forces (normal and friction) that everything "
            "outside the finger exerts on it, as fingertip force sensors would read it; "
            "fingers in the order of the finger joints of observation.state."
        ),
    )


def records_contact_force(episode: Path) -> bool:
    """Whether the episode folder recorded its fingertip forces (episodes before that did not)."""
    with np.load(episode / STATES) as npz:
        return FINGERTIP_FORCE in npz.files


def dataset_spec(robot: str, layout: DatasetLayout, contact_force: bool = False) -> DatasetSpec:
    return DatasetSpec(
        robot_type=robot,
        fps=layout.fps,
        state_names=layout.joint_names,
        action_names=layout.action_names,
        cameras=tuple(CameraSpec(name, width, height) for name, width, height in layout.cameras),
        extra=(contact_force_feature(layout),) if contact_force else (),
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


def recorded_boxes(
    states: dict[str, NDArray[Any]], camera: int, cameras: int, frames: int
) -> NDArray[np.int32] | None:
    """One camera's boxes as the collector recorded them, (M, 7) without the camera column;
    None when the episode has none (recorded before) or they are malformed."""
    boxes = states.get(SEGMENTATION_BOXES)
    if boxes is None or boxes.ndim != 2 or boxes.shape[1] != len(BOX_COLUMNS):
        return None
    boxes = boxes.astype(np.int32, copy=False)
    if len(boxes) and (
        boxes[:, 0].min() < 0
        or boxes[:, 0].max() >= frames
        or boxes[:, 1].min() < 0
        or boxes[:, 1].max() >= cameras
    ):
        return None
    return np.ascontiguousarray(np.delete(boxes[boxes[:, 1] == camera], 1, axis=1))


def episode_frames(
    raw: RawEpisode,
    manifest: RawEpisodeManifest,
    *,
    task: str | None = None,
    contact_force: bool = False,
) -> EpisodeFrames:
    """The episode as the writer takes it; camera streams stay undecoded until iterated."""
    states = raw.states()
    extra: dict[str, NDArray[Any]] = {}
    if contact_force:
        forces = states[FINGERTIP_FORCE]
        extra[CONTACT_FORCE] = forces.reshape(forces.shape[0], -1)
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
            rgb_file=raw.stream_path(camera.name, "rgb"),
            depth_mm=raw.iter_frames(camera.name, "depth"),
            segmentation=raw.iter_frames(camera.name, "segmentation"),
            depth_file=raw.stream_path(camera.name, "depth"),
            segmentation_file=raw.stream_path(camera.name, "segmentation"),
            segmentation_boxes=recorded_boxes(
                states, index, len(manifest.cameras), manifest.n_frames
            ),
            intrinsics=intrinsics,
            camera_to_world=pose,
        )
    return EpisodeFrames(
        task=task or manifest.task_text,
        state=states["joint_position"],
        action=states["action"],
        cameras=cameras,
        timestamps=states["timestamp"],
        source_id=manifest.episode_id,
        segmentation_labels={int(k): v for k, v in manifest.segmentation_ids.items()},
        extra=extra,
    )
