"""Scripted expert: damped-least-squares IK through pick-and-place or open/close waypoints.

The expert reads the true physics state (object and handle poses) when each segment starts,
interpolates the end-effector pose along a minimum-jerk profile, and turns it into joint
position targets with damped least squares on a kinematic scratch copy of the model. It never
peeks at the success predicate; success is judged afterwards from the physics state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np
from bp_scene_contract import ObjectInside, TaskSpec

from bp_collector.mujoco.grasps import Grasp, Hand, choose, object_shape, sample_grasps
from bp_collector.mujoco.world import ArticulatedPart, FreeObject, World

HANDLE_DEPTH_M = 0.018
TIP_CLEARANCE_M = 0.008
"""Gap kept between the fingertips and the surface an object stands on while grasping it."""
# Average speeds that set how long a move takes (the minimum-jerk peak is 1.9 times these).
JOINT_SPEED_RAD_S = 0.8
CARRY_SPEED_M_S = 0.2
PULL_SPEED_M_S = 0.1

OPEN = 1.0
CLOSED = 0.0
"""The gripper command is an opening fraction: 1 fully open, 0 closed, whatever the hand."""
APPROACH_M = 0.12
"""How far back along the approach the hand lines up before it moves in to grasp."""
LINE_UP_M = 0.10
"""A hand coming in from the side reaches its line-up pose from this far above it, then goes
straight down to it: a joint-space move straight to a pose beside the object can sweep the hand
through it on the way."""
LEVEL_APPROACH = 0.9
"""An approach whose downward part is less than this (about 25 degrees off vertical) comes in
from the side and lines up first."""
GRASP_REACH_M = 0.01
GRASP_TURN = 0.15
"""A grasp pose the arm misses by more (position, m; rotation, Frobenius norm) is unreachable."""
PENETRATION_M = 0.002
"""The open hand may touch the object it grasps by this much at a pose and still be clear."""
CLEARANCE_M = 0.005
"""...and must stay this far from everything else: the episode counts any touch of another
object as a collision (the Panda's palm grazed the sample mug while taking the cube)."""

PathFn = Callable[[float], "tuple[np.ndarray, np.ndarray] | np.ndarray"]
"""A path maps progress s in [0, 1] to a hand pose (position, rotation) or to joint targets."""


@dataclass
class Segment:
    """One step of the script: where the hand goes, how long it takes, the gripper command."""

    label: str
    duration: float
    gripper: float
    plan: Callable[[np.ndarray, np.ndarray], PathFn]


@dataclass(frozen=True)
class IKSolution:
    q: np.ndarray
    position_error: float
    rotation_error: float


class ExpertError(RuntimeError):
    """The expert cannot plan this task at all (not a failed attempt: a task it cannot try)."""


def min_jerk(s: float) -> float:
    s = min(max(s, 0.0), 1.0)
    return s * s * s * (10.0 - 15.0 * s + 6.0 * s * s)


def _slerp(r0: np.ndarray, r1: np.ndarray, s: float) -> np.ndarray:
    q0, q1 = np.zeros(4), np.zeros(4)
    mujoco.mju_mat2Quat(q0, r0.ravel())
    mujoco.mju_mat2Quat(q1, r1.ravel())
    if np.dot(q0, q1) < 0:
        q1 = -q1
    dot = float(np.clip(np.dot(q0, q1), -1.0, 1.0))
    theta = math.acos(dot)
    if theta < 1e-6:
        q = q1
    else:
        q = (math.sin((1 - s) * theta) * q0 + math.sin(s * theta) * q1) / math.sin(theta)
    q /= np.linalg.norm(q)
    out = np.zeros(9)
    mujoco.mju_quat2Mat(out, q)
    return out.reshape(3, 3)


def _straight(p1: np.ndarray, r1: np.ndarray) -> Callable[[np.ndarray, np.ndarray], PathFn]:
    def plan(p0: np.ndarray, r0: np.ndarray) -> PathFn:
        def at(s: float) -> tuple[np.ndarray, np.ndarray]:
            return p0 + (p1 - p0) * s, _slerp(r0, r1, s)

        return at

    return plan


def _hold() -> Callable[[np.ndarray, np.ndarray], PathFn]:
    def plan(p0: np.ndarray, r0: np.ndarray) -> PathFn:
        return lambda s: (p0, r0)

    return plan


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_axisAngle2Quat(quat, axis, angle)
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, quat)
    return mat.reshape(3, 3)


def _hand_frame(closing: np.ndarray, approach: np.ndarray) -> np.ndarray:
    """Rotation whose z is the approach direction and y the fingers' closing direction."""
    z = approach / np.linalg.norm(approach)
    y = closing - np.dot(closing, z) * z
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    return np.column_stack([x, y, z])


class DifferentialIK:
    """Damped least squares on the arm joints, with a pull toward the home posture."""

    def __init__(self, world: World, damping: float = 0.05, iterations: int = 8) -> None:
        model = world.model
        self.model = model
        self.scratch = mujoco.MjData(model)
        self.site = model.site(world.robot.ee_site).id
        self.qadr = np.array([model.joint(j).qposadr[0] for j in world.robot.arm_joints])
        self.dofs = np.array([model.joint(j).dofadr[0] for j in world.robot.arm_joints])
        self.lower = np.array([model.joint(j).range[0] for j in world.robot.arm_joints])
        self.upper = np.array([model.joint(j).range[1] for j in world.robot.arm_joints])
        self.home = np.array(world.robot.home_qpos)
        self.damping = damping
        self.iterations = iterations
        self.last_residual = 0.0

    def forward(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.scratch.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, self.scratch)
        return (
            self.scratch.site_xpos[self.site].copy(),
            self.scratch.site_xmat[self.site].reshape(3, 3).copy(),
        )

    def solve(self, q: np.ndarray, pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
        q = q.copy()
        jacp = np.zeros((3, self.model.nv))
        jacr = np.zeros((3, self.model.nv))
        n = len(q)
        for _ in range(self.iterations):
            cur_p, cur_r = self.forward(q)
            err_p = pos - cur_p
            err_r = 0.5 * sum(np.cross(cur_r[:, i], rot[:, i]) for i in range(3))
            err = np.concatenate([err_p, 0.5 * err_r])
            self.last_residual = float(np.linalg.norm(err_p))
            if np.linalg.norm(err) < 1e-5:
                break
            mujoco.mj_comPos(self.model, self.scratch)
            mujoco.mj_jacSite(self.model, self.scratch, jacp, jacr, self.site)
            jac = np.vstack([jacp[:, self.dofs], 0.5 * jacr[:, self.dofs]])
            jjt = jac @ jac.T + (self.damping**2) * np.eye(6)
            dq = jac.T @ np.linalg.solve(jjt, err)
            pinv = jac.T @ np.linalg.solve(jjt, np.eye(6))
            null = (np.eye(n) - pinv @ jac) @ (0.1 * (self.home - q))
            step = dq + null
            scale = max(1.0, float(np.max(np.abs(step))) / 0.25)
            q = np.clip(q + step / scale, self.lower, self.upper)
        return q

    def solve_from_anywhere(
        self,
        seeds: list[np.ndarray],
        pos: np.ndarray,
        rot: np.ndarray,
        restarts: int = 10,
        iterations: int = 100,
    ) -> IKSolution:
        """Best of several long solves from the given seeds and fixed pseudo-random ones.

        Local damped least squares gets stuck against joint limits when the hand must turn far
        (a horizontal approach after a top-down one); restarts find a posture that reaches, and
        solutions with room to move away from the limits are preferred.
        """
        rng = np.random.default_rng(0)
        starts = list(seeds) + [rng.uniform(self.lower, self.upper) for _ in range(restarts)]
        saved = self.iterations
        self.iterations = iterations
        best: tuple[float, IKSolution] | None = None
        try:
            for start in starts:
                q = self.solve(start, pos, rot)
                cur_p, cur_r = self.forward(q)
                pos_err = float(np.linalg.norm(cur_p - pos))
                rot_err = float(np.linalg.norm(cur_r - rot))
                mid = (self.lower + self.upper) / 2
                half = (self.upper - self.lower) / 2
                crowding = float(np.sum(((q - mid) / half) ** 8))
                score = pos_err + 0.05 * rot_err + 0.002 * crowding
                if best is None or score < best[0]:
                    best = (score, IKSolution(q, pos_err, rot_err))
        finally:
            self.iterations = saved
        assert best is not None
        return best[1]


class ScriptedExpert:
    """Drives one task through its segments; `act` returns the actuator targets for a frame."""

    def __init__(self, world: World, task: TaskSpec, data: mujoco.MjData) -> None:
        self.world = world
        self.task = task
        self.data = data
        self.model = world.model
        self.ik = DifferentialIK(world)
        robot = world.robot
        self.arm_act = np.array([self.model.actuator(a).id for a in robot.arm_actuators])
        self.grip_act = self.model.actuator(robot.gripper_actuator).id
        self.q_cmd = np.array([data.qpos[a] for a in self.ik.qadr])
        self.pos, self.rot = self.ik.forward(self.q_cmd)
        self.gripper = OPEN
        self.max_residual = 0.0
        self.grasp: Grasp | None = None
        self.grasp_candidates = 0
        """How many pinches the sampler found (the chosen one is `grasp`; None: the box rule)."""
        self.arm_geoms = _arm_geoms(world)
        self.start_posture: np.ndarray | None = None
        """The arm posture the last grasp to pass the collision check starts its way in from."""
        if task.moves_object:
            if task.target not in world.free_objects:
                raise ExpertError(f"pick-and-place target {task.target!r} is not a free object")
            self.segments = self._pick_place_segments(world.free_objects[task.target])
        else:
            parts = [p for (asset, _), p in world.parts.items() if asset == task.target]
            if not parts:
                raise ExpertError(f"open/close target {task.target!r} has no articulated part")
            part = next((p for p in parts if p.joint_name == task.joint_name), parts[0])
            self.segments = self._open_close_segments(part)
        self.index = -1
        self.segment_start = 0.0
        self.path: PathFn | None = None

    @property
    def done(self) -> bool:
        return self.index >= len(self.segments)

    @property
    def phase(self) -> str:
        if self.index < 0:
            return "start"
        return "done" if self.done else self.segments[self.index].label

    def act(self, data: mujoco.MjData) -> np.ndarray:
        """Actuator targets (arm joints then gripper) for the control period starting now."""
        t = float(data.time)
        self._advance(data, t)
        if self.path is not None and not self.done:
            seg = self.segments[self.index]
            out = self.path(min_jerk((t - self.segment_start) / seg.duration))
            if isinstance(out, np.ndarray):
                self.q_cmd = out
                self.pos, self.rot = self.ik.forward(out)
            else:
                pos, rot = out
                self.q_cmd = self.ik.solve(self.q_cmd, pos, rot)
                self.max_residual = max(self.max_residual, self.ik.last_residual)
                self.pos, self.rot = pos, rot
            self.gripper = seg.gripper
        return np.concatenate([self.q_cmd, [self.gripper]])

    def apply(self, data: mujoco.MjData, action: np.ndarray) -> None:
        data.ctrl[self.arm_act] = action[:-1]
        data.ctrl[self.grip_act] = self.world.robot.gripper_ctrl(float(action[-1]))

    def _advance(self, data: mujoco.MjData, t: float) -> None:
        while not self.done and (
            self.index < 0 or t - self.segment_start >= self.segments[self.index].duration
        ):
            if self.index >= 0:
                self.segment_start += self.segments[self.index].duration
            else:
                self.segment_start = t
            self.index += 1
            if not self.done:
                self.path = self.segments[self.index].plan(self.pos, self.rot)

    def _joint_move(
        self, pos: np.ndarray, rot: np.ndarray, posture: np.ndarray | None = None
    ) -> PathFn:
        """A joint-space path from the commanded posture to one that puts the hand at the pose
        (`posture`, when one was already solved and checked for it)."""
        q0 = self.q_cmd.copy()
        if posture is None:
            solution = self.ik.solve_from_anywhere([q0, self.ik.home], pos, rot)
            self.max_residual = max(self.max_residual, solution.position_error)
            q1 = solution.q
        else:
            q1 = posture
        self._stretch_segment(float(np.max(np.abs(q1 - q0))) / JOINT_SPEED_RAD_S)
        return lambda s: q0 + (q1 - q0) * s

    def _stretch_segment(self, seconds: float) -> None:
        """Give the segment being planned at least `seconds`, so long moves stay slow."""
        segment = self.segments[self.index]
        segment.duration = max(segment.duration, seconds)

    def _skip_segment(self) -> None:
        """The segment being planned has nothing to do: it takes no time."""
        self.segments[self.index].duration = 0.0

    def _object_state(self, obj: FreeObject) -> tuple[np.ndarray, np.ndarray]:
        return _body_pose(self.world, self.data, obj.body)

    def _rim(self, obj: FreeObject) -> tuple[np.ndarray, np.ndarray]:
        """A container is taken by one wall, the one nearest the robot: (wall centre, normal)."""
        pos, rot = self._object_state(obj)
        base = self.data.xpos[self.model.body(self.world.robot.base_body).id]
        walls = []
        for axis in (0, 1):
            for sign in (1.0, -1.0):
                normal = rot[:, axis] * sign
                centre = pos + normal * (obj.half_extents[axis] - obj.wall_m / 2)
                walls.append((float(np.linalg.norm((centre - base)[:2])), centre, normal))
        _, centre, normal = min(walls, key=lambda w: w[0])
        return centre, normal

    def _grasp_rotation(self, obj: FreeObject) -> np.ndarray:
        _, obj_rot = self._object_state(obj)
        down = np.array([0.0, 0.0, -1.0])
        if obj.shape == "container":
            closing = self._rim(obj)[1].copy()
        elif obj.shape == "cylinder":
            closing = self.rot[:, 1].copy()
        else:
            narrow = 0 if obj.half_extents[0] <= obj.half_extents[1] else 1
            closing = obj_rot[:, narrow].copy()
        closing[2] = 0.0
        if np.linalg.norm(closing) < 1e-6:
            closing = np.array([0.0, 1.0, 0.0])
        # The jaw is symmetric: of the two opposite closing directions take the one nearer the
        # current hand, so the wrist does not spin half a turn.
        if np.dot(closing, self.rot[:, 1]) < 0:
            closing = -closing
        return _hand_frame(closing, down)

    def _jaw_closing(self, closing: np.ndarray) -> np.ndarray:
        # The jaw is symmetric: of the two opposite closing directions take the one nearer the
        # current hand, so the wrist does not spin half a turn.
        return closing if float(np.dot(closing, self.rot[:, 1])) >= 0 else -closing

    def _sampled_grasp(self, obj: FreeObject) -> Grasp | None:
        """The best pinch on the object's shape that the open hand reaches without hitting
        anything; None (the box rule then) when no candidate passes. A five-finger hand pinches
        between its thumb and index finger, at the site where they close on an object."""
        world, model, data = self.world, self.model, self.data
        body = model.body(obj.body).id
        pos, _ = self._object_state(obj)
        support = _support_height(world, data, pos, obj.body, float(pos[2]))
        shape = object_shape(model, data, body, support, obj.shape == "container")
        geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] == body]
        friction = float(min(model.geom_friction[g][0] for g in geoms)) if geoms else 0.5
        hand = jaw(world, min(friction, 1.0))
        base = data.xpos[model.body(world.robot.base_body).id]
        candidates = sample_grasps(shape, hand, base)
        self.grasp_candidates = len(candidates)
        self.grasp = choose(candidates, self.clear)
        return self.grasp

    def clear(self, grasp: Grasp) -> bool:
        """Does the open hand reach the grasp, and the way in to it, without hitting anything?

        The arm is solved to each pose on a scratch copy of the state, the fingers opened, and
        MuJoCo's own collision detection asked whether any geom of the arm or hand meets the
        object or the scene (a level grasp low on an object can bring the forearm down onto
        its neighbours).
        """
        model = self.model
        rot = _hand_frame(self._jaw_closing(grasp.closing), grasp.approach)
        target = model.body(self.world.free_objects[self.task.target].body).id
        # Contacts are reported this far out from the arm's geoms, to see what it nearly touches.
        margins = model.geom_margin.copy()
        model.geom_margin[self.arm_geoms] = np.maximum(margins[self.arm_geoms], CLEARANCE_M)
        try:
            return self._clear(grasp, rot, target)
        finally:
            model.geom_margin[:] = margins

    def _clear(self, grasp: Grasp, rot: np.ndarray, target: int) -> bool:
        model, ik, robot = self.model, self.ik, self.world.robot
        scratch = ik.scratch
        scratch.qpos[:] = self.data.qpos
        fingers = [model.joint(j).qposadr[0] for j in robot.finger_joints]
        seeds, restarts = [self.q_cmd, ik.home], 1
        lift = _line_up_lift(grasp.approach)
        ways = [(APPROACH_M, lift)] if lift else []
        start: np.ndarray | None = None
        for back, up in [*ways, (APPROACH_M, 0.0), (APPROACH_M / 3, 0.0), (0.0, 0.0)]:
            pose = grasp.point - grasp.approach * back + np.array([0.0, 0.0, up])
            solution = ik.solve_from_anywhere(seeds, pose, rot, restarts=restarts, iterations=40)
            if solution.position_error > GRASP_REACH_M or solution.rotation_error > GRASP_TURN:
                return False
            seeds, restarts = [solution.q], 0
            start = solution.q if start is None else start
            scratch.qpos[ik.qadr] = solution.q
            scratch.qpos[fingers] = robot.finger_qpos(OPEN)
            mujoco.mj_kinematics(model, scratch)
            mujoco.mj_collision(model, scratch)
            for contact in scratch.contact[: scratch.ncon]:
                a, b = int(contact.geom[0]), int(contact.geom[1])
                if self.arm_geoms[a] == self.arm_geoms[b]:
                    continue
                other = b if self.arm_geoms[a] else a
                if self.world.robot_geoms[other]:
                    continue
                held = model.geom_bodyid[other] == target
                if contact.dist < (-PENETRATION_M if held else CLEARANCE_M):
                    return False
        # The joint move goes to the posture checked here, not to another solution of the
        # same pose (an elbow the other way can meet the table on the way in).
        self.start_posture = start
        return True

    def _container(self) -> FreeObject | None:
        """The free container an object_inside task fills, if it is a free body."""
        pred = self.task.success
        if not isinstance(pred, ObjectInside):
            return None
        return self.world.free_objects.get(pred.container)

    def _container_rim(self) -> float | None:
        """Top of the container an object_inside task fills, where it is now."""
        if not isinstance(self.task.success, ObjectInside):
            return None
        container = self._container()
        if container is not None:
            pos, _ = self._object_state(container)
            return float(pos[2] + container.half_extents[2])
        if self.task.goal_region is not None:
            return float(self.task.goal_region.max[2])
        return None

    def _pick_place_segments(self, obj: FreeObject) -> list[Segment]:
        world = self.world
        task = self.task
        open_, closed = OPEN, CLOSED
        half_z = obj.half_extents[2]
        if task.goal_region is None:
            raise ExpertError("pick-and-place task without a goal region")
        goal = task.goal_region
        memo: dict[str, np.ndarray] = {}

        def grasp_point() -> np.ndarray:
            pos, _ = self._object_state(obj)
            top = pos[2] + half_z
            bottom = pos[2] - half_z
            if obj.shape == "container":
                centre, _ = self._rim(obj)
                return np.array([centre[0], centre[1], max(top - 0.015, bottom + 0.01)])
            # Low enough to hold it well, high enough that no fingertip touches the support.
            z = max(pos[2], top - 0.03, bottom + self.world.robot.tip_depth + TIP_CLEARANCE_M)
            return np.array([pos[0], pos[1], min(z, top)])

        def target() -> np.ndarray:
            if "grasp_local" not in memo:
                return grasp_point()
            # The sampled point rides with the object, should it have moved since.
            pos, rot = self._object_state(obj)
            return np.asarray(pos + rot @ memo["grasp_local"])

        def pregrasp(p0: np.ndarray, r0: np.ndarray) -> PathFn:
            sampled = self._sampled_grasp(obj)
            if sampled is not None:
                pos, obj_rot = self._object_state(obj)
                memo["grasp_local"] = obj_rot.T @ (sampled.point - pos)
                memo["approach"] = sampled.approach
                rot = _hand_frame(self._jaw_closing(sampled.closing), sampled.approach)
            else:
                rot = self._grasp_rotation(obj)
            memo["grasp_rot"] = rot
            posture = self.start_posture if sampled is not None else None
            return self._joint_move(line_up() + above(), rot, posture)

        def line_up() -> np.ndarray:
            return target() - memo.get("approach", np.array([0.0, 0.0, -1.0])) * APPROACH_M

        def above() -> np.ndarray:
            lift = _line_up_lift(memo.get("approach", np.array([0.0, 0.0, -1.0])))
            return np.array([0.0, 0.0, lift])

        def come_down(p0: np.ndarray, r0: np.ndarray) -> PathFn:
            if not above()[2]:
                self._skip_segment()
            return _straight(line_up(), memo["grasp_rot"])(p0, r0)

        def descend(p0: np.ndarray, r0: np.ndarray) -> PathFn:
            return _straight(target(), memo["grasp_rot"])(p0, r0)

        def lift(p0: np.ndarray, r0: np.ndarray) -> PathFn:
            support = _support_height(
                world, self.data, np.array(goal.centre), obj.body, goal.max[2] + 0.3
            )
            memo["place_surface"] = np.array([max(goal.min[2], support)])
            obj_pos, _ = self._object_state(obj)
            memo["bottom_below_tcp"] = np.array([p0[2] - (obj_pos[2] - half_z)])
            # Measured while the object still stands on its support: a held object may hang
            # tilted, and it straightens again when set down.
            memo["grasp_offset"] = p0 - obj_pos
            clearance = memo["place_surface"][0] + memo["bottom_below_tcp"][0] + 0.12
            z = max(p0[2] + 0.15, clearance)
            return _straight(np.array([p0[0], p0[1], z]), r0)(p0, r0)

        def carry(p0: np.ndarray, r0: np.ndarray) -> PathFn:
            _, obj_rot = self._object_state(obj)
            cx, cy, _ = goal.centre
            turn = np.eye(3)
            container = self._container()
            if container is not None:
                # Into a container that may have been moved and turned by the randomisation:
                # aim at where it is, and turn a box to line up with its walls.
                c_pos, c_rot = self._object_state(container)
                cx, cy = float(c_pos[0]), float(c_pos[1])
                if obj.shape == "box":
                    turn = _rotation(
                        np.array([0.0, 0.0, 1.0]), _quarter_turn_difference(obj_rot, c_rot)
                    )
            offset = turn @ memo["grasp_offset"]
            target = np.array([cx + offset[0], cy + offset[1], p0[2]])
            self._stretch_segment(float(np.linalg.norm(target - p0)) / CARRY_SPEED_M_S)
            return _straight(target, turn @ r0)(p0, r0)

        def lower(p0: np.ndarray, r0: np.ndarray) -> PathFn:
            bottom = memo["place_surface"][0] + 0.012
            rim = self._container_rim()
            if rim is not None:
                # Into a container: let go with the object just over the rim, so the fingers
                # never reach in and hit the walls; it drops the rest of the way.
                bottom = max(bottom, rim + 0.01)
            z = bottom + memo["bottom_below_tcp"][0]
            return _straight(np.array([p0[0], p0[1], z]), r0)(p0, r0)

        def retreat(p0: np.ndarray, r0: np.ndarray) -> PathFn:
            # Back the way the hand came in: up from a top-down grasp, away from a level one.
            back = memo.get("approach", np.array([0.0, 0.0, -1.0])) * APPROACH_M
            return _straight(p0 - back, r0)(p0, r0)

        return [
            Segment("approach", 1.6, open_, pregrasp),
            Segment("line_up", 0.6, open_, come_down),
            Segment("descend", 1.0, open_, descend),
            Segment("grasp", 0.6, closed, _hold()),
            Segment("lift", 1.0, closed, lift),
            Segment("carry", 1.6, closed, carry),
            Segment("lower", 1.0, closed, lower),
            Segment("release", 0.5, open_, _hold()),
            Segment("retreat", 0.8, open_, retreat),
            Segment("settle", 0.5, open_, _hold()),
        ]

    def _open_close_segments(self, part: ArticulatedPart) -> list[Segment]:
        world = self.world
        model = world.model
        open_, closed = OPEN, CLOSED
        joint = model.joint(part.mj_joint)
        lower, upper = (float(v) for v in joint.range)
        goal_q = _joint_target(self.task, lower, upper)
        outward = np.array(part.outward)
        axis = np.array(part.axis)

        def handle_pose() -> tuple[np.ndarray, np.ndarray]:
            data = self.data
            gid = model.geom(part.handle_geom).id
            pos = data.geom_xpos[gid].copy()
            body_rot = data.xmat[model.body(part.body).id].reshape(3, 3)
            normal = body_rot @ outward
            closing = body_rot @ (
                np.cross([0.0, 0.0, 1.0], outward)
                if part.handle_along_z
                else np.array([0.0, 0.0, 1.0])
            )
            return pos, _hand_frame(closing, -normal)

        def pregrasp(p0: np.ndarray, r0: np.ndarray) -> PathFn:
            pos, rot = handle_pose()
            back = pos - rot[:, 2] * 0.12
            # Solved from the grip backwards, so the straight reach in stays on one branch of
            # the arm's solutions: GR1's arm, lined up by a solve of its own, could not follow
            # the line to the handle.
            ik = self.ik
            grip = ik.solve_from_anywhere(
                [self.q_cmd, ik.home], pos + rot[:, 2] * HANDLE_DEPTH_M, rot
            )
            start = ik.solve_from_anywhere([grip.q], back, rot, restarts=0)
            reached = start.position_error <= GRASP_REACH_M and start.rotation_error <= GRASP_TURN
            return self._joint_move(back, rot, start.q if reached else None)

        def approach(p0: np.ndarray, r0: np.ndarray) -> PathFn:
            pos, rot = handle_pose()
            # Past the bar, so it sits mid-pad rather than at the fingertips it would slip from.
            return _straight(pos + rot[:, 2] * HANDLE_DEPTH_M, rot)(p0, r0)

        def pull(p0: np.ndarray, r0: np.ndarray) -> PathFn:
            q_now = float(self.data.qpos[joint.qposadr[0]])
            delta = goal_q - q_now
            if part.kind == "prismatic":
                self._stretch_segment(abs(delta) / PULL_SPEED_M_S)
                return _straight(p0 + axis * delta, r0)(p0, r0)
            anchor = np.array(part.anchor)
            radius = float(np.linalg.norm(np.cross(axis, p0 - anchor)))
            self._stretch_segment(abs(delta) * radius / PULL_SPEED_M_S)

            def at(s: float) -> tuple[np.ndarray, np.ndarray]:
                rot = _rotation(axis, delta * s)
                return anchor + rot @ (p0 - anchor), rot @ r0

            return at

        def back_off(p0: np.ndarray, r0: np.ndarray) -> PathFn:
            # Straight out along the approach axis: any sideways or vertical part would hook
            # the open fingers back onto the bar.
            return _straight(p0 - r0[:, 2] * 0.12, r0)(p0, r0)

        return [
            Segment("approach", 1.8, open_, pregrasp),
            Segment("reach", 1.0, open_, approach),
            Segment("grasp", 0.6, closed, _hold()),
            Segment("pull", 2.5, closed, pull),
            Segment("release", 0.5, open_, _hold()),
            Segment("retreat", 0.8, open_, back_off),
            Segment("settle", 0.5, open_, _hold()),
        ]


def _line_up_lift(approach: np.ndarray) -> float:
    """How far above its line-up pose a hand coming in along `approach` arrives: nothing from
    above, `LINE_UP_M` from the side."""
    return LINE_UP_M if -float(approach[2]) < LEVEL_APPROACH else 0.0


def _quarter_turn_difference(obj_rot: np.ndarray, target_rot: np.ndarray) -> float:
    """The smallest yaw that lines a box's sides up with another box's (modulo 90 degrees)."""
    yaw_obj = math.atan2(obj_rot[1, 0], obj_rot[0, 0])
    yaw_target = math.atan2(target_rot[1, 0], target_rot[0, 0])
    delta = (yaw_target - yaw_obj) % (math.pi / 2)
    return delta - math.pi / 2 if delta > math.pi / 4 else delta


def _joint_target(task: TaskSpec, lower: float, upper: float) -> float:
    """Where to drive the joint: a little past the required value, inside the limits."""
    span = upper - lower
    if task.joint_goal is not None:
        goal, start = task.joint_goal.value, task.joint_goal.initial_value
        opening = goal >= start
    else:
        goal = float(getattr(task.success, "value", upper))
        opening = task.action != "close" and getattr(task.success, "predicate", "") != (
            "joint_at_most"
        )
    past = goal + 0.1 * span if opening else goal - 0.1 * span
    return min(upper - 0.01 * span, max(lower + 0.01 * span, past))


def pinch_distance(world: World, opening: float) -> float:
    """How far apart the two pinching fingertips are at an opening fraction, arm at home."""
    model, robot = world.model, world.robot
    data = mujoco.MjData(model)
    for joint, q in zip(robot.finger_joints, robot.finger_qpos(opening), strict=True):
        data.qpos[model.joint(joint).qposadr[0]] = q
    mujoco.mj_kinematics(model, data)
    a, b = (data.geom_xpos[model.geom(name).id] for name in robot.pinch_geoms)
    return float(np.linalg.norm(a - b))


def jaw(world: World, friction: float = 0.5) -> Hand:
    """The robot's parallel jaw as the grasp sampler sees it, measured on its model."""
    return Hand(
        opening_m=pinch_distance(world, OPEN) - pinch_distance(world, CLOSED),
        tip_depth_m=world.robot.tip_depth,
        palm_m=_palm_depth(world),
        friction=friction,
    )


def _palm_depth(world: World) -> float:
    """How far behind the end-effector site the hand's fixed part (its palm) begins, along the
    approach: the depth of the gap between the open fingers."""
    model, robot = world.model, world.robot
    data = mujoco.MjData(model)
    mujoco.mj_kinematics(model, data)
    site = model.site(robot.ee_site).id
    axis = data.site_xmat[site].reshape(3, 3)[:, 2]
    hand = model.body(robot.hand_body).id
    fingers = {int(model.jnt_bodyid[model.joint(j).id]) for j in robot.finger_joints}
    reach = -math.inf
    for g in range(model.ngeom):
        if not (model.geom_contype[g] or model.geom_conaffinity[g]):
            continue
        body, moves = int(model.geom_bodyid[g]), False
        while body > 0 and body != hand:
            moves = moves or body in fingers
            body = int(model.body_parentid[body])
        if body != hand or moves:
            continue
        rot = data.geom_xmat[g].reshape(3, 3)
        if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH:
            # A mesh's own vertices: its bounding box would reach much further.
            mesh = int(model.geom_dataid[g])
            start, count = int(model.mesh_vertadr[mesh]), int(model.mesh_vertnum[mesh])
            points = model.mesh_vert[start : start + count] @ rot.T + data.geom_xpos[g]
            reach = max(reach, float(np.max((points - data.site_xpos[site]) @ axis)))
            continue
        centre, half = model.geom_aabb[g][:3], model.geom_aabb[g][3:]
        ahead = float((data.geom_xpos[g] + rot @ centre - data.site_xpos[site]) @ axis)
        reach = max(reach, ahead + float(np.abs(rot.T @ axis) @ half))
    return max(-reach, 0.0) if math.isfinite(reach) else world.robot.tip_depth


def _arm_geoms(world: World) -> np.ndarray:
    """Which geoms the arm moves (those of bodies at or below its first joint's body)."""
    model = world.model
    first = int(model.jnt_bodyid[model.joint(world.robot.arm_joints[0]).id])
    out = np.zeros(model.ngeom, dtype=bool)
    for g in range(model.ngeom):
        body = int(model.geom_bodyid[g])
        while body > 0 and body != first:
            body = int(model.body_parentid[body])
        out[g] = body == first
    return out


def _body_pose(world: World, data: mujoco.MjData, body: str) -> tuple[np.ndarray, np.ndarray]:
    b = world.model.body(body).id
    return data.xpos[b].copy(), data.xmat[b].reshape(3, 3).copy()


def _support_height(
    world: World, data: mujoco.MjData, point: np.ndarray, exclude_body: str, from_z: float
) -> float:
    """Height of the first non-robot surface below `point`, found by casting a ray down."""
    model = world.model
    start = np.array([point[0], point[1], from_z], dtype=float)
    exclude = model.body(exclude_body).id
    geomid = np.zeros(1, dtype=np.int32)
    for _ in range(8):
        dist = mujoco.mj_ray(
            model, data, start, np.array([0.0, 0.0, -1.0]), None, 1, exclude, geomid
        )
        if dist < 0:
            return float(point[2])
        hit = start[2] - dist
        if not world.robot_geoms[geomid[0]]:
            return float(hit)
        start[2] = hit - 1e-4
    return float(point[2])
