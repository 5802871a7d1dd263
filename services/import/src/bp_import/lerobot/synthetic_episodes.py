"""Synthetic but physically plausible episodes for tests and benchmarks of the LeRobot writer.

Joints follow minimum-jerk moves between random waypoints (smooth position, velocity and
acceleration); the action is the next frame's joint target. Each camera sees coloured squares
gliding over a shaded floor, with matching depth (mm) and segmentation ids, so the RGB video,
depth and masks agree pixel for pixel. Streams are rendered lazily, frame by frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bp_import.lerobot.episode_frames import (
    CameraFrames,
    CameraIntrinsics,
    CameraSpec,
    DatasetSpec,
    EpisodeFrames,
)

ARM_JOINTS = ("joint1", "joint2", "joint3", "joint4", "joint5", "joint6", "joint7")
FLOOR_ID = 1
FIRST_OBJECT_ID = 3


def synthetic_spec(
    robot_type: str = "franka_panda",
    fps: int = 30,
    width: int = 96,
    height: int = 64,
    cameras: tuple[str, ...] = ("overhead", "wrist"),
) -> DatasetSpec:
    return DatasetSpec(
        robot_type=robot_type,
        fps=fps,
        state_names=(*ARM_JOINTS, "finger_left", "finger_right"),
        action_names=(*ARM_JOINTS, "gripper"),
        cameras=tuple(CameraSpec(name, width, height) for name in cameras),
    )


def minimum_jerk(
    start: NDArray[np.float64], end: NDArray[np.float64], steps: int
) -> NDArray[np.float64]:
    """Positions of a minimum-jerk move from start to end over `steps` samples (both ends in)."""
    s = np.linspace(0.0, 1.0, steps)[:, None]
    return start + (end - start) * (10 * s**3 - 15 * s**4 + 6 * s**5)


def joint_trajectory(length: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """(length, 9) joint positions: 7 arm joints in rad and two fingers in m, smooth."""
    waypoints = max(2, length // 45 + 2)
    arm = rng.uniform(-1.2, 1.2, size=(waypoints, 7))
    fingers = rng.choice([0.0, 0.04], size=waypoints)
    bounds = np.linspace(0, length, waypoints).astype(int)
    out = np.empty((length, 9))
    for i in range(waypoints - 1):
        lo, hi = bounds[i], bounds[i + 1]
        if hi <= lo:
            continue
        out[lo:hi, :7] = minimum_jerk(arm[i], arm[i + 1], hi - lo + 1)[:-1]
        grip = minimum_jerk(np.array([fingers[i]]), np.array([fingers[i + 1]]), hi - lo + 1)
        out[lo:hi, 7] = out[lo:hi, 8] = grip[:-1, 0]
    return out


@dataclass(frozen=True)
class _Square:
    object_id: int
    colour: NDArray[np.uint8]
    half_size: int
    depth_mm: int
    start: NDArray[np.float64]
    velocity: NDArray[np.float64]


class SquaresScene:
    """A camera's view: a shaded floor and squares moving in straight lines, bouncing."""

    def __init__(
        self, camera: CameraSpec, length: int, rng: np.random.Generator, squares: int = 3
    ) -> None:
        self.camera = camera
        self.length = length
        h, w = camera.height, camera.width
        rows, cols = np.mgrid[0:h, 0:w]
        shade = 90 + 60 * cols / max(w - 1, 1) + 30 * rows / max(h - 1, 1)
        texture = rng.normal(0.0, 4.0, size=(h, w))
        floor = np.clip(shade + texture, 0, 255)
        self.floor = np.stack([floor, floor * 0.9, floor * 0.8], axis=-1).astype(np.uint8)
        self.floor_depth = (1200 + 4 * rows).astype(np.uint16)
        palette = np.array(
            [[220, 40, 40], [40, 200, 60], [50, 80, 230], [240, 200, 30]], dtype=np.uint8
        )
        self.squares = [
            _Square(
                object_id=FIRST_OBJECT_ID + k,
                colour=palette[k % len(palette)],
                half_size=int(rng.integers(max(2, h // 12), max(3, h // 6))),
                depth_mm=700 + 80 * k,
                start=rng.uniform([0, 0], [w, h]),
                velocity=rng.uniform(-1.5, 1.5, size=2),
            )
            for k in range(squares)
        ]

    def _centre(self, square: _Square, frame: int) -> tuple[int, int]:
        w, h = self.camera.width, self.camera.height
        # Reflecting motion inside the image: position folded back at the borders.
        x, y = square.start + square.velocity * frame
        x, y = abs((x + 2 * w) % (2 * w) - w), abs((y + 2 * h) % (2 * h) - h)
        return int(w - x), int(h - y)

    def render(
        self, frame: int
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint16], NDArray[np.uint16]]:
        rgb = self.floor.copy()
        depth = self.floor_depth.copy()
        ids = np.full(depth.shape, FLOOR_ID, dtype=np.uint16)
        for square in self.squares:
            cx, cy = self._centre(square, frame)
            s = square.half_size
            y0, y1 = max(cy - s, 0), min(cy + s, self.camera.height)
            x0, x1 = max(cx - s, 0), min(cx + s, self.camera.width)
            if y1 <= y0 or x1 <= x0:
                continue
            rgb[y0:y1, x0:x1] = square.colour
            depth[y0:y1, x0:x1] = square.depth_mm
            ids[y0:y1, x0:x1] = square.object_id
        return rgb, depth, ids

    def rgb(self) -> Iterator[NDArray[np.uint8]]:
        for k in range(self.length):
            yield self.render(k)[0]

    def depth(self) -> Iterator[NDArray[np.uint16]]:
        for k in range(self.length):
            yield self.render(k)[1]

    def segmentation(self) -> Iterator[NDArray[np.uint16]]:
        for k in range(self.length):
            yield self.render(k)[2]


def _look_at(eye: NDArray[np.float64], target: NDArray[np.float64]) -> NDArray[np.float64]:
    """Camera-to-world pose with OpenCV axes (z forward, y down) looking from eye to target."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
    return pose


def synthetic_episode(
    spec: DatasetSpec,
    length: int,
    seed: int,
    *,
    task: str = "put the red cube in the bin",
    ground_truth: bool = True,
) -> EpisodeFrames:
    """One episode of `length` frames; the same seed gives the same episode."""
    rng = np.random.default_rng(seed)
    joints = joint_trajectory(length, rng)
    action = np.empty((length, 8))
    action[:-1, :7] = joints[1:, :7]
    action[-1, :7] = joints[-1, :7]
    action[:, 7] = np.concatenate([joints[1:, 7], joints[-1:, 7]])
    cameras: dict[str, CameraFrames] = {}
    for camera in spec.cameras:
        scene = SquaresScene(camera, length, rng)
        if camera.name == "wrist":
            eyes = np.stack(
                [
                    0.4 + 0.1 * np.cos(joints[:, 0]),
                    0.1 * np.sin(joints[:, 0]),
                    0.5 + 0.05 * joints[:, 1],
                ],
                axis=1,
            )
            pose: NDArray[np.float64] = np.stack(
                [_look_at(e, np.array([0.5, 0.0, 0.0])) for e in eyes]
            )
        else:
            pose = _look_at(np.array([1.2, 0.0, 1.4]), np.array([0.4, 0.0, 0.0]))
        cameras[camera.name] = CameraFrames(
            rgb=scene.rgb(),
            depth_mm=scene.depth() if ground_truth else None,
            segmentation=scene.segmentation() if ground_truth else None,
            intrinsics=CameraIntrinsics.from_vertical_fov(camera.width, camera.height, 58.0)
            if ground_truth
            else None,
            camera_to_world=pose if ground_truth else None,
        )
    labels = (
        {
            0: "background",
            FLOOR_ID: "floor",
            2: "robot",
            **{FIRST_OBJECT_ID + k: f"cube_{k}" for k in range(3)},
        }
        if ground_truth
        else {}
    )
    return EpisodeFrames(
        task=task,
        state=joints.astype(np.float32),
        action=action.astype(np.float32),
        cameras=cameras,
        timestamps=np.arange(length) / spec.fps,
        source_id=f"synthetic.{spec.robot_type}.s{seed}",
        segmentation_labels=labels,
    )


def materialised_rgb(spec: DatasetSpec, length: int, seed: int) -> dict[str, NDArray[np.uint8]]:
    """The RGB frames `synthetic_episode(spec, length, seed)` streams, as (N, H, W, 3) arrays."""
    episode = synthetic_episode(spec, length, seed, ground_truth=False)
    return {name: np.stack(list(cam.rgb)) for name, cam in episode.cameras.items()}
