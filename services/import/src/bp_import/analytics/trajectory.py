"""Trajectory quality of one episode, from its recorded arrays, and its summary per task.

Notation as in `quality.metrics`: N frames at `fps` (dt = 1 / fps), p_i the end-effector
position, q_i the arm joint positions, g_i the commanded gripper state (closed or open).

- **path length** L = sum_i |p_{i+1} - p_i| over the whole episode (m).
- **grasp frame** a: the first frame in which the gripper is commanded closed while the robot
  touches the task's target (the first closed frame when no contact is recorded with it);
  **place frame** b: the first frame after a in which the gripper is commanded open again (the
  last frame if it never reopens). Not defined when the gripper never closes.
- **carry path** L_ab = sum_{i=a}^{b-1} |p_{i+1} - p_i|, against the **straight-line optimum**
  L*_ab = |p_b - p_a|; **carry optimality** O = L*_ab / L_ab (1 for a straight carry; 1 when
  the hand does not move between grasp and place).
- **joint jerk** J_q = sqrt(mean (q_{i+3} - 3 q_{i+2} + 3 q_{i+1} - q_i)^2 / dt^6) (rad/s^3) and
  **end-effector jerk** J_p, the same over p (m/s^3); N >= 4. **Smoothness** is the quality
  metric M = 1 / (1 + J_q / jerk_scale_rad_s3).
- **time to success** T_s: for an episode that succeeded, the earliest time t = k dt from which
  the target stays at its final state: for a free object every |o_i - o_{N-1}| <= 1 cm for
  i >= k; for an articulated target, its joint (the one of the target that travels furthest)
  within 0.02 (rad or m) of its final value. 0 when it never left that state.
- **idle time** T_idle = dt * |{i < N - 1 : |p_{i+1} - p_i| / dt < 0.01 m/s, max_j |q_{i+1,j} -
  q_{i,j}| / dt < 0.05 rad/s and |w_{i+1} - w_i| / dt < 0.005 m/s}|, w the gripper opening:
  frames in which nothing of the robot moves.
- **smallest joint-limit margin** m_rad = min over frames and limited arm joints of
  min(q - lower, upper - q) (rad), with the joint that comes closest; also as a fraction of the
  joint's range (the quality metric's m).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bp_import.episodes.validation import RawEpisodeManifest
from bp_import.quality.metrics import ROBOT_ENTITY, gripper_closed, min_joint_margin

IDLE_EE_SPEED_M_S = 0.01
IDLE_JOINT_SPEED_RAD_S = 0.05
IDLE_GRIPPER_SPEED_M_S = 0.005
SETTLED_OBJECT_M = 0.01
SETTLED_JOINT = 0.02


@dataclass(frozen=True)
class EpisodeTrajectory:
    """The trajectory measures of one episode (None: not defined for it)."""

    episode_id: str
    task_id: str
    robot: str
    seed: int
    success: bool
    duration_s: float
    path_length_m: float
    carry_path_m: float | None
    carry_optimum_m: float | None
    carry_optimality: float | None
    grasp_frame: int | None
    place_frame: int | None
    joint_jerk_rms_rad_s3: float | None
    ee_jerk_rms_m_s3: float | None
    smoothness: float | None
    path_efficiency: float | None
    time_to_success_s: float | None
    idle_time_s: float
    min_joint_margin_rad: float | None
    min_joint_margin_joint: str | None
    min_joint_margin_fraction: float | None

    def record(self) -> dict[str, Any]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _rms_jerk(x: NDArray[np.float64], dt: float) -> float | None:
    if x.shape[0] < 4 or x.shape[1] == 0:
        return None
    return float(np.sqrt(np.mean((np.diff(x, n=3, axis=0) / dt**3) ** 2)))


def _entity(segmentation_ids: dict[str, str], name: str | None) -> int | None:
    return next((int(k) for k, v in segmentation_ids.items() if name and v == name), None)


def target_contact(manifest: RawEpisodeManifest, states: dict[str, NDArray[Any]]) -> NDArray[Any]:
    """Per frame: does the robot touch the task's target?"""
    touching = np.zeros(manifest.n_frames, dtype=bool)
    robot = _entity(manifest.segmentation_ids, ROBOT_ENTITY)
    target = _entity(manifest.segmentation_ids, manifest.target)
    if robot is None or target is None:
        return touching
    a = states["contact_entity_a"].astype(np.int64)
    b = states["contact_entity_b"].astype(np.int64)
    rows = ((a == robot) & (b == target)) | ((a == target) & (b == robot))
    touching[states["contact_frame"][rows].astype(np.int64)] = True
    return touching


def grasp_and_place(
    closed: NDArray[np.bool_], touching: NDArray[np.bool_]
) -> tuple[int, int] | None:
    """(a, b) of the module docstring, or None when the gripper never closes."""
    if not closed.any():
        return None
    on_target = np.flatnonzero(closed & touching)
    a = int(on_target[0]) if on_target.size else int(np.flatnonzero(closed)[0])
    reopened = np.flatnonzero(~closed[a:])
    b = a + int(reopened[0]) if reopened.size else len(closed) - 1
    return a, b


def _target_track(
    manifest: RawEpisodeManifest, states: dict[str, NDArray[Any]]
) -> tuple[NDArray[np.float64], float] | None:
    """The target's state per frame (positions, or the joint value as a column) and the
    tolerance within which it counts as settled."""
    target = manifest.target
    if target in manifest.state.object_ids:
        k = manifest.state.object_ids.index(target)
        return states["object_position"][:, k].astype(np.float64), SETTLED_OBJECT_M
    columns = [
        i
        for i, name in enumerate(manifest.state.articulation_joints)
        if name.split("/")[0] == target
    ]
    if not columns:
        return None
    values = states["articulation_position"][:, columns].astype(np.float64)
    travel = np.ptp(values, axis=0)
    return values[:, [int(np.argmax(travel))]], SETTLED_JOINT


def time_to_success(track: NDArray[np.float64], tolerance: float, fps: int) -> float:
    """Earliest k / fps from which every frame stays within `tolerance` of the last one."""
    away = np.linalg.norm(track - track[-1], axis=1) > tolerance
    if not away.any():
        return 0.0
    return float(np.flatnonzero(away)[-1] + 1) / fps


def idle_time(
    p: NDArray[np.float64], q: NDArray[np.float64], opening: NDArray[np.float64], fps: int
) -> float:
    if p.shape[0] < 2:
        return 0.0
    ee = np.linalg.norm(np.diff(p, axis=0), axis=1) * fps
    joints = np.abs(np.diff(q, axis=0)).max(axis=1, initial=0.0) * fps
    fingers = np.abs(np.diff(opening)) * fps
    still = (
        (ee < IDLE_EE_SPEED_M_S)
        & (joints < IDLE_JOINT_SPEED_RAD_S)
        & (fingers < IDLE_GRIPPER_SPEED_M_S)
    )
    return float(still.sum()) / fps


def _min_margin_rad(
    q: NDArray[np.float64], manifest: RawEpisodeManifest, arm: int
) -> tuple[float | None, str | None]:
    limits = manifest.state.joint_limits
    if limits is None or q.shape[0] == 0:
        return None, None
    best: tuple[float | None, str | None] = (None, None)
    for j in range(arm):
        lower, upper = limits.lower[j], limits.upper[j]
        if lower is None or upper is None or upper <= lower:
            continue
        margin = float(np.minimum(q[:, j] - lower, upper - q[:, j]).min())
        if best[0] is None or margin < best[0]:
            best = (margin, manifest.state.joint_names[j])
    return best


def measure_trajectory(
    manifest: RawEpisodeManifest,
    states: dict[str, NDArray[Any]],
    *,
    jerk_scale_rad_s3: float,
    path_efficiency: float | None = None,
) -> EpisodeTrajectory:
    """Every measure of the module docstring for one valid episode."""
    fps = manifest.fps
    dt = 1.0 / fps
    arm = len(manifest.state.action_names) - 1
    p = states["ee_position"].astype(np.float64)
    q = states["joint_position"][:, :arm].astype(np.float64)
    steps = np.linalg.norm(np.diff(p, axis=0), axis=1)
    closed = gripper_closed(states["action"])
    span = grasp_and_place(closed, target_contact(manifest, states))
    carry = optimum = optimality = None
    if span is not None:
        a, b = span
        carry = float(steps[a:b].sum())
        optimum = float(np.linalg.norm(p[b] - p[a]))
        optimality = 1.0 if carry <= 0.0 else min(1.0, optimum / carry)
    joint_jerk = _rms_jerk(q, dt)
    track = _target_track(manifest, states)
    settle = (
        time_to_success(track[0], track[1], fps) if manifest.success and track is not None else None
    )
    margin_rad, margin_joint = _min_margin_rad(q, manifest, arm)
    return EpisodeTrajectory(
        episode_id=manifest.episode_id,
        task_id=manifest.task_id,
        robot=manifest.robot,
        seed=manifest.seed,
        success=manifest.success,
        duration_s=manifest.n_frames / fps,
        path_length_m=float(steps.sum()),
        carry_path_m=carry,
        carry_optimum_m=optimum,
        carry_optimality=optimality,
        grasp_frame=None if span is None else span[0],
        place_frame=None if span is None else span[1],
        joint_jerk_rms_rad_s3=joint_jerk,
        ee_jerk_rms_m_s3=_rms_jerk(p, dt),
        smoothness=None if joint_jerk is None else 1.0 / (1.0 + joint_jerk / jerk_scale_rad_s3),
        path_efficiency=path_efficiency,
        time_to_success_s=settle,
        idle_time_s=idle_time(p, q, states["gripper_opening"].astype(np.float64), fps),
        min_joint_margin_rad=margin_rad,
        min_joint_margin_joint=margin_joint,
        min_joint_margin_fraction=min_joint_margin(q, manifest.state.joint_limits, arm),
    )


SUMMARISED = (
    "duration_s",
    "path_length_m",
    "carry_path_m",
    "carry_optimum_m",
    "carry_optimality",
    "joint_jerk_rms_rad_s3",
    "ee_jerk_rms_m_s3",
    "smoothness",
    "path_efficiency",
    "time_to_success_s",
    "idle_time_s",
    "min_joint_margin_rad",
)


def summary(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """n, mean, min and max of the defined values (None when there are none)."""
    defined = np.array([v for v in values if v is not None], dtype=np.float64)
    if defined.size == 0:
        return {"n": 0, "mean": None, "min": None, "max": None}
    return {
        "n": int(defined.size),
        "mean": round(float(defined.mean()), 6),
        "min": round(float(defined.min()), 6),
        "max": round(float(defined.max()), 6),
    }


def per_task(trajectories: Iterable[EpisodeTrajectory]) -> dict[str, dict[str, Any]]:
    """Per task: episodes, successes, success rate and the summary of every measure.

    One pass, keeping per task only the summarised values (the trajectories may be read back
    from a spool, one at a time)."""
    values: dict[str, dict[str, list[float | None]]] = {}
    succeeded: dict[str, int] = {}
    for t in trajectories:
        columns = values.setdefault(t.task_id, {name: [] for name in SUMMARISED})
        for name in SUMMARISED:
            columns[name].append(getattr(t, name))
        succeeded[t.task_id] = succeeded.get(t.task_id, 0) + t.success
    out: dict[str, dict[str, Any]] = {}
    for task in sorted(values):
        episodes = len(values[task][SUMMARISED[0]])
        out[task] = {
            "episodes": episodes,
            "succeeded": succeeded[task],
            "success_rate": round(succeeded[task] / episodes, 6),
            **{name: summary(values[task][name]) for name in SUMMARISED},
        }
    return out
