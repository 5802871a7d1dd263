"""Places each robot in the scene so that its tasks are reachable, and says why others are not.

For one robot and the scene's candidate tasks, `place_robot` tries base poses around the
furniture the tasks happen at and checks every target of every task with the robot's inverse
kinematics. A base pose is only a candidate when the robot fits there: its footprint keeps
`BASE_CLEARANCE` from every object's box and from every articulated part's swept region (the
space a door or drawer passes through over its joint range), and its arm, in the home posture
it starts every episode in, keeps `ARM_CLEARANCE` beyond its link radius from both. The pose
that reaches the most tasks wins (ties go to the pose nearest the targets); tasks the winner
cannot reach, or that the robot's gripper or payload rules out, are dropped with a reason.

A grasp needs a jaw that opens `GRIP_MARGIN` wider than the object's narrower horizontal
extent. A container too wide for that can be taken by its wall instead, when its inside is
wide enough for the whole open jaw plus the margin: a jaw that spans the inside pushes the far
wall as it opens, which is what tipped an 8 cm bowl out of a Panda's goal region.

Fixed-base arms (Panda, UR5e) stand on a pedestal whose top is 5 cm below the lowest task
target, never below the floor; Fetch stands on the floor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from bp_scene_contract import Box, SceneNode, Vec3

from bp_export.tasks.kinematics import IkTarget, rot_z, solve_ik, translation
from bp_export.tasks.layout import SceneLayout, SweptRegion
from bp_export.tasks.robots import RobotModel, reach_upper_bound

DOWN: Vec3 = (0.0, 0.0, -1.0)
"""Approach of a top-down grasp: the gripper points straight down."""

BASE_CLEARANCE = 0.05
"""Gap (m) kept between a robot's footprint and any object's box or part's swept region."""
ARM_CLEARANCE = 0.03
"""Gap (m) kept between the home-posture arm's link capsules and any object or swept region."""
GRIP_MARGIN = 0.01
"""How much wider (m) than the part it closes on a parallel jaw must open."""
STANDOFFS = (0.005, 0.10, 0.20, 0.35, 0.50)
"""Gaps (m) tried beyond `BASE_CLEARANCE` between a robot's footprint and the furniture."""
LATERAL_FRACTIONS = tuple(i / 10 for i in range(11))
SECTORS = 8
"""Candidates are checked best first, taking turns between this many directions around the
work, so that one blocked side does not use up every check."""
MAX_CANDIDATES_CHECKED = 24
IK_RANDOM_RESTARTS = 3
"""Restarts per target after the warm start and home seeds; failures cost the full budget."""


@dataclass(frozen=True)
class ReachTarget:
    """A TCP pose a task needs: where the gripper centre goes and which way it points."""

    label: str
    position: Vec3
    approach: Vec3 = DOWN
    facing: bool = False
    """The arm must stand on the side the gripper comes from, as for a handle on a door's
    outer face: reaching it from behind would mean reaching round the door."""
    closing: Vec3 | None = None
    """The line the fingers close along, when the grip needs one (across a handle's bar; either
    way along it, a hand being symmetric); None leaves the hand free to turn about `approach`."""


@dataclass(frozen=True)
class GraspNeed:
    """What taking an object top-down asks of a parallel jaw."""

    width: float
    """The narrower horizontal extent (m): what the jaw closes on when it takes the object whole."""
    rim_inside: float | None = None
    """For a container, its narrower inside width (m): it can be taken by its wall instead when
    the whole open jaw fits in there."""


@dataclass(frozen=True)
class TaskRequirements:
    """What a task asks of a robot: TCP poses to reach, an object to grip, a mass to lift."""

    task_id: str
    targets: tuple[ReachTarget, ...]
    workplace: Box
    """The furniture the task happens at, with the space its moving parts sweep; base poses
    are sought around it."""
    grasp: GraspNeed | None = None
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
    """True when a robot body of `radius` standing at (x, y), up to `top`, clears the scene."""
    for node in obstacles:
        box = node.bbox
        if box.max[2] <= layout.floor_z + 0.02 or box.min[2] >= top:
            continue
        if box.distance_xy_to_point(x, y) < radius + BASE_CLEARANCE:
            return False
    for sweep in layout.sweeps:
        if sweep.z_max <= layout.floor_z + 0.02 or sweep.z_min >= top:
            continue
        if sweep.distance_xy(x, y) < radius + BASE_CLEARANCE:
            return False
    return True


def _point_to_box(box: Box, points: np.ndarray) -> np.ndarray:
    gap = np.maximum(np.maximum(np.asarray(box.min) - points, points - np.asarray(box.max)), 0.0)
    return np.asarray(np.linalg.norm(gap, axis=1))


def _home_posture_clear(
    robot: RobotModel,
    pose: BasePose,
    obstacles: Sequence[SceneNode],
    sweeps: Sequence[SweptRegion],
) -> bool:
    """True when the arm, in the home posture at `pose`, keeps clear of objects and sweeps."""
    local = robot.home_posture()
    world = (pose.transform() @ np.hstack((local, np.ones((len(local), 1)))).T).T[:, :3]
    reach = robot.link_radius + ARM_CLEARANCE
    lo, hi = world.min(axis=0) - reach, world.max(axis=0) + reach
    for node in obstacles:
        box = node.bbox
        if any(box.max[i] < lo[i] or box.min[i] > hi[i] for i in range(3)):
            continue
        if float(_point_to_box(box, world).min()) < reach:
            return False
    for sweep in sweeps:
        box = sweep.bbox
        if any(box.max[i] < lo[i] or box.min[i] > hi[i] for i in range(3)):
            continue
        if float(sweep.distances(world).min()) < reach:
            return False
    return True


def _candidate_poses(
    robot: RobotModel, layout: SceneLayout, tasks: Sequence[TaskRequirements], base_z: float
) -> list[BasePose]:
    """Base poses around each task's furniture where the robot fits, facing the targets'
    centroid (of those within reach of the spot, if any are)."""
    points = np.array([t.position for task in tasks for t in task.targets])
    bound = reach_upper_bound(robot.name)
    places = sorted({task.workplace for task in tasks}, key=lambda b: (b.min, b.max))
    radius = robot.footprint_radius
    obstacles = layout.obstacles()
    top = base_z + robot.body_height
    seen: set[tuple[float, float]] = set()
    poses: list[BasePose] = []
    for box in places:
        for gap in STANDOFFS:
            offset = radius + BASE_CLEARANCE + gap
            diagonal = offset / math.sqrt(2.0)
            spots = [
                (box.min[0] - diagonal, box.min[1] - diagonal),
                (box.max[0] + diagonal, box.min[1] - diagonal),
                (box.min[0] - diagonal, box.max[1] + diagonal),
                (box.max[0] + diagonal, box.max[1] + diagonal),
            ]
            for fraction in LATERAL_FRACTIONS:
                along_x = box.min[0] + fraction * box.size[0]
                along_y = box.min[1] + fraction * box.size[1]
                spots += [
                    (box.min[0] - offset, along_y),
                    (box.max[0] + offset, along_y),
                    (along_x, box.min[1] - offset),
                    (along_x, box.max[1] + offset),
                ]
            for x, y in spots:
                key = (round(x, 3), round(y, 3))
                if key in seen:
                    continue
                seen.add(key)
                if not _footprint_clear(layout, obstacles, x, y, radius, top):
                    continue
                near = points[np.hypot(points[:, 0] - x, points[:, 1] - y) <= bound]
                cx, cy = (near if len(near) else points)[:, :2].mean(axis=0)
                pose = BasePose((x, y, base_z), math.atan2(cy - y, cx - x))
                if _home_posture_clear(robot, pose, obstacles, layout.sweeps):
                    poses.append(pose)
    return poses


def _base_height(
    robot: RobotModel, layout: SceneLayout, tasks: Sequence[TaskRequirements]
) -> float:
    if robot.mount == "floor":
        return layout.floor_z
    lowest = min(t.position[2] for task in tasks for t in task.targets)
    return round(max(layout.floor_z, lowest - 0.05), 3)


def _best_first_by_direction(
    poses: Sequence[BasePose], promise: Callable[[BasePose], tuple[int, int, float]]
) -> list[BasePose]:
    """`poses` ranked by `promise`, each direction around their centre taking its turn."""
    scores = {id(p): promise(p) for p in poses}
    ranked = sorted(poses, key=lambda p: scores[id(p)])
    centre = np.mean([p.position[:2] for p in ranked], axis=0)
    queues: dict[int, list[BasePose]] = {}
    for pose in ranked:
        angle = math.atan2(pose.position[1] - centre[1], pose.position[0] - centre[0])
        sector = int((angle + math.pi) / (2 * math.pi) * SECTORS) % SECTORS
        queues.setdefault(sector, []).append(pose)
    order = sorted(queues, key=lambda k: scores[id(queues[k][0])])
    out: list[BasePose] = []
    for rank in range(max(len(q) for q in queues.values())):
        out += [queues[k][rank] for k in order if rank < len(queues[k])]
    return out


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
    position = (float(p[0]), float(p[1]), float(p[2]))
    if target.closing is None:
        return IkTarget(position, approach=(a[0], a[1], a[2]))
    # The hand's frame as the collector's expert sets it: z the approach, y the closing line.
    z = a / np.linalg.norm(a)
    y = inverse[:3, :3] @ np.asarray(target.closing)
    y = y - np.dot(y, z) * z
    y /= np.linalg.norm(y)
    return IkTarget(position, rotation=np.column_stack([np.cross(y, z), y, z]))


def _flipped(target: ReachTarget) -> ReachTarget | None:
    """The same grip closing the other way along its line, for a target that has one."""
    if target.closing is None:
        return None
    return replace(target, closing=(-target.closing[0], -target.closing[1], -target.closing[2]))


def _reach_centre(robot: RobotModel, pose: BasePose) -> np.ndarray:
    return np.asarray(pose.transform() @ np.array([*robot.reach_centre(), 1.0]))[:3]


def _out_of_reach(robot: RobotModel, centre: np.ndarray, target: ReachTarget) -> str | None:
    """Why `target` is plainly out of reach of an arm whose reach centre is at `centre` (too far,
    or facing away), or None; cheap, and necessary for an IK solution to exist."""
    bound = reach_upper_bound(robot.name)
    offset = centre - np.asarray(target.position)
    distance = float(np.linalg.norm(offset))
    if distance > bound:
        return (
            f"{target.label} at {_fmt(target.position)} is {distance:.2f} m from the arm, "
            f"beyond its {bound:.2f} m reach"
        )
    if target.facing and float(offset @ np.asarray(target.approach)) >= 0.0:
        return (
            f"{target.label} at {_fmt(target.position)} faces away from the arm, which "
            f"would have to reach round the part to take it"
        )
    return None


def _check_task(
    robot: RobotModel, pose: BasePose, task: TaskRequirements, warm: list[tuple[float, ...]]
) -> str | None:
    """None when every target of `task` is reachable from `pose`, else the reason it is not."""
    centre = _reach_centre(robot, pose)
    for target in task.targets:
        plainly = _out_of_reach(robot, centre, target)
        if plainly is not None:
            return plainly
        seeds, restarts = [*warm[-1:], robot.home], IK_RANDOM_RESTARTS
        solution = solve_ik(
            robot.chain, target_in_base_frame(pose, target), seeds, random_restarts=restarts
        )
        flipped = _flipped(target)
        if not solution.success and flipped is not None:
            solution = solve_ik(
                robot.chain, target_in_base_frame(pose, flipped), seeds, random_restarts=restarts
            )
        if not solution.success:
            return (
                f"{target.label} at {_fmt(target.position)} has no inverse-kinematics solution "
                f"within joint limits (closest miss {solution.position_error:.3f} m, "
                f"{math.degrees(solution.angle_error):.0f} deg)"
            )
        warm.append(solution.q)
    return None


def _grasp_reason(robot: RobotModel, grasp: GraspNeed) -> str | None:
    opening = robot.gripper_max_opening
    if grasp.width <= opening - GRIP_MARGIN + 1e-9:
        return None
    if grasp.rim_inside is not None and grasp.rim_inside >= opening + GRIP_MARGIN - 1e-9:
        return None
    reason = (
        f"object is {grasp.width * 100:.1f} cm across at its narrowest, wider than the "
        f"{opening * 100:.1f} cm gripper opening less a {GRIP_MARGIN * 100:.0f} cm margin"
    )
    if grasp.rim_inside is not None:
        reason += (
            f", and its {grasp.rim_inside * 100:.1f} cm inside is too narrow for the open jaw "
            f"to take it by the wall"
        )
    return reason


def _capability_reason(robot: RobotModel, task: TaskRequirements) -> str | None:
    if task.grasp is not None:
        reason = _grasp_reason(robot, task.grasp)
        if reason is not None:
            return reason
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
        reason = (
            f"{robot.name}: no floor position near the task furniture keeps the robot and its "
            "home posture clear of objects and of the space doors and drawers sweep"
        )
        dropped.extend((task.task_id, reason) for task in feasible)
        return RobotPlacement(robot.name, None, (), tuple(dropped))

    def promise(pose: BasePose) -> tuple[int, int, float]:
        """Tasks and targets not plainly out of reach (more first), then the distance to the
        targets of the tasks that are not."""
        centre = _reach_centre(robot, pose)
        plausible = [
            [_out_of_reach(robot, centre, t) is None for t in task.targets] for task in feasible
        ]
        dists = [
            float(np.linalg.norm(np.asarray(t.position) - centre))
            for task, flags in zip(feasible, plausible, strict=True)
            if all(flags)
            for t in task.targets
        ]
        return (
            -sum(all(flags) for flags in plausible),
            -sum(sum(flags) for flags in plausible),
            round(sum(dists), 6),
        )

    candidates = _best_first_by_direction(candidates, promise)
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
