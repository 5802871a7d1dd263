"""Places each robot in the scene so that its tasks are reachable, and says why others are not.

For one robot and the scene's candidate tasks, `place_robot` tries base poses around the
furniture the tasks happen at (on the floor, clear of every object's box, yawed to face the
task targets) and checks every target of every task with the robot's inverse kinematics. The
pose that reaches the most tasks wins (ties go to the pose nearest the targets); tasks the
winner cannot reach, or that the robot's gripper or payload rules out, are dropped with a reason.

Fixed-base arms (Panda, UR5e) stand on a pedestal whose top is 5 cm below the lowest task
target, never below the floor; Fetch stands on the floor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bp_export.graph_model import Aabb, SceneNode, Vec3
from bp_export.kinematics import IkTarget, rot_z, solve_ik, translation
from bp_export.robots import RobotModel, reach_upper_bound
from bp_export.scene_layout import SceneLayout

DOWN: Vec3 = (0.0, 0.0, -1.0)
"""Approach of a top-down grasp: the gripper points straight down."""

BASE_CLEARANCE = 0.03
STANDOFFS = (0.05, 0.20, 0.35)
"""Gaps (m) tried between a robot's footprint and the furniture it faces."""
LATERAL_FRACTIONS = (0.5, 0.3, 0.7, 0.1, 0.9)
MAX_CANDIDATES_CHECKED = 16
IK_RANDOM_RESTARTS = 3
"""Restarts per target after the warm start and home seeds; failures cost the full budget."""


@dataclass(frozen=True)
class ReachTarget:
    """A TCP pose a task needs: where the gripper centre goes and which way it points."""

    label: str
    position: Vec3
    approach: Vec3 = DOWN


@dataclass(frozen=True)
class TaskRequirements:
    """What a task asks of a robot: TCP poses to reach, a width to grip, a mass to lift."""

    task_id: str
    targets: tuple[ReachTarget, ...]
    workplace: Aabb
    """The furniture the task happens at; base poses are sought around it."""
    grip_width: float | None = None
    mass_kg: float | None = None


@dataclass(frozen=True)
class BasePose:
    position: Vec3
    yaw: float

    @property
    def orientation(self) -> tuple[float, float, float, float]:
        """Yaw about world z as a (w, x, y, z) quaternion."""
        return (math.cos(self.yaw / 2), 0.0, 0.0, math.sin(self.yaw / 2))

    def transform(self) -> np.ndarray:
        return translation(*self.position) @ rot_z(self.yaw)


@dataclass(frozen=True)
class RobotPlacement:
    """Where a robot stands and which tasks it keeps; `dropped` pairs task ids with reasons."""

    robot: str
    base_pose: BasePose | None
    kept: tuple[str, ...]
    dropped: tuple[tuple[str, str], ...]


def _fmt(point: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in point) + ")"


def _footprint_clear(
    layout: SceneLayout,
    obstacles: Sequence[SceneNode],
    x: float,
    y: float,
    radius: float,
    top: float,
) -> bool:
    for node in obstacles:
        box = node.bbox
        if box.max[2] <= layout.floor_z + 0.02 or box.min[2] >= top:
            continue
        if box.distance_xy_to_point(x, y) < radius + BASE_CLEARANCE:
            return False
    return True


def _candidate_poses(
    robot: RobotModel, layout: SceneLayout, tasks: Sequence[TaskRequirements], base_z: float
) -> list[BasePose]:
    """Collision-free base poses around each task's furniture, facing the targets' centroid."""
    points = np.array([t.position for task in tasks for t in task.targets])
    centroid = points.mean(axis=0)
    places = sorted({task.workplace for task in tasks}, key=lambda b: (b.min, b.max))
    radius = robot.footprint_radius
    obstacles = layout.obstacles()
    seen: set[tuple[float, float]] = set()
    poses: list[BasePose] = []
    for box in places:
        for gap in STANDOFFS:
            offset = radius + gap
            for fraction in LATERAL_FRACTIONS:
                along_x = box.min[0] + fraction * box.size[0]
                along_y = box.min[1] + fraction * box.size[1]
                for x, y in (
                    (box.min[0] - offset, along_y),
                    (box.max[0] + offset, along_y),
                    (along_x, box.min[1] - offset),
                    (along_x, box.max[1] + offset),
                ):
                    key = (round(x, 3), round(y, 3))
                    if key in seen:
                        continue
                    seen.add(key)
                    top = base_z + robot.body_height
                    if not _footprint_clear(layout, obstacles, x, y, radius, top):
                        continue
                    yaw = math.atan2(centroid[1] - y, centroid[0] - x)
                    poses.append(BasePose((x, y, base_z), yaw))
    return poses


def _base_height(
    robot: RobotModel, layout: SceneLayout, tasks: Sequence[TaskRequirements]
) -> float:
    if robot.mount == "mobile_base":
        return layout.floor_z
    lowest = min(t.position[2] for task in tasks for t in task.targets)
    return round(max(layout.floor_z, lowest - 0.05), 3)


@dataclass
class _Attempt:
    pose: BasePose
    reached: list[str]
    failures: dict[str, str]


def target_in_base_frame(pose: BasePose, target: ReachTarget) -> IkTarget:
    """The IK goal of a world-frame target, seen from a robot standing at `pose`."""
    inverse = np.linalg.inv(pose.transform())
    p = inverse @ np.array([*target.position, 1.0])
    a = inverse[:3, :3] @ np.asarray(target.approach)
    return IkTarget((float(p[0]), float(p[1]), float(p[2])), approach=(a[0], a[1], a[2]))


def _check_task(
    robot: RobotModel, pose: BasePose, task: TaskRequirements, warm: list[tuple[float, ...]]
) -> str | None:
    """None when every target of `task` is reachable from `pose`, else the reason it is not."""
    bound = reach_upper_bound(robot.name)
    centre_world = pose.transform() @ np.array([*robot.reach_centre(), 1.0])
    for target in task.targets:
        distance = float(np.linalg.norm(np.asarray(target.position) - centre_world[:3]))
        if distance > bound:
            return (
                f"{target.label} at {_fmt(target.position)} is {distance:.2f} m from the arm, "
                f"beyond its {bound:.2f} m reach"
            )
        solution = solve_ik(
            robot.chain,
            target_in_base_frame(pose, target),
            seeds=[*warm[-1:], robot.home],
            random_restarts=IK_RANDOM_RESTARTS,
        )
        if not solution.success:
            return (
                f"{target.label} at {_fmt(target.position)} has no inverse-kinematics solution "
                f"within joint limits (closest miss {solution.position_error:.3f} m, "
                f"{math.degrees(solution.angle_error):.0f} deg)"
            )
        warm.append(solution.q)
    return None


def _capability_reason(robot: RobotModel, task: TaskRequirements) -> str | None:
    if task.grip_width is not None and task.grip_width > robot.gripper_max_opening + 1e-6:
        return (
            f"object is {task.grip_width * 100:.1f} cm across at its narrowest, wider than the "
            f"{robot.gripper_max_opening * 100:.1f} cm gripper opening"
        )
    if task.mass_kg is not None and task.mass_kg > robot.payload_kg:
        return f"object weighs {task.mass_kg:.1f} kg, over the {robot.payload_kg:.1f} kg payload"
    return None


def place_robot(
    robot: RobotModel, layout: SceneLayout, tasks: Sequence[TaskRequirements]
) -> RobotPlacement:
    """Choose `robot`'s base pose for these tasks and split them into kept and dropped."""
    dropped: list[tuple[str, str]] = []
    feasible: list[TaskRequirements] = []
    for task in tasks:
        reason = _capability_reason(robot, task)
        if reason is None:
            feasible.append(task)
        else:
            dropped.append((task.task_id, f"{robot.name}: {reason}"))
    if not feasible:
        return RobotPlacement(robot.name, None, (), tuple(dropped))

    base_z = _base_height(robot, layout, feasible)
    candidates = _candidate_poses(robot, layout, feasible, base_z)
    if not candidates:
        reason = f"{robot.name}: no floor position near the task furniture is clear of objects"
        dropped.extend((task.task_id, reason) for task in feasible)
        return RobotPlacement(robot.name, None, (), tuple(dropped))

    centre = robot.reach_centre()

    def closeness(pose: BasePose) -> tuple[int, float]:
        world = pose.transform() @ np.array([*centre, 1.0])
        dists = [
            float(np.linalg.norm(np.asarray(t.position) - world[:3]))
            for task in feasible
            for t in task.targets
        ]
        bound = reach_upper_bound(robot.name)
        return (-sum(d <= bound for d in dists), round(sum(dists), 6))

    candidates.sort(key=closeness)
    best: _Attempt | None = None
    for pose in candidates[:MAX_CANDIDATES_CHECKED]:
        attempt = _Attempt(pose, [], {})
        warm: list[tuple[float, ...]] = []
        for index, task in enumerate(feasible):
            reason = _check_task(robot, pose, task, warm)
            if reason is None:
                attempt.reached.append(task.task_id)
            else:
                attempt.failures[task.task_id] = reason
            if best is not None and len(attempt.reached) + len(feasible) - index - 1 <= len(
                best.reached
            ):
                break
        if best is None or len(attempt.reached) > len(best.reached):
            best = attempt
        if len(best.reached) == len(feasible):
            break
    assert best is not None
    pose_text = (
        f"base at {_fmt(best.pose.position[:2])} facing {math.degrees(best.pose.yaw):.0f} deg"
    )
    for task in feasible:
        if task.task_id in best.reached:
            continue
        reason = best.failures.get(task.task_id)
        if reason is None:
            reason = _check_task(robot, best.pose, task, []) or "not reachable"
        dropped.append((task.task_id, f"{robot.name} from {pose_text}: {reason}"))
    return RobotPlacement(robot.name, best.pose, tuple(best.reached), tuple(dropped))
