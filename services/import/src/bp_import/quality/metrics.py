"""Quality metrics of one valid episode, each in [0, 1], and the episode's quality score.

Notation: N frames at `fps` (dt = 1 / fps); q_i the arm joint positions at frame i (the joints
the action commands: `joint_names[:len(action_names) - 1]`, fingers excluded); p_i the
end-effector position; g_i the commanded gripper state, open when the action's last column
(the finger target) exceeds half its largest value in the episode, else closed.

- **task success** S = 1 if the manifest's `success` (the task's predicate on the final state,
  judged by the collector) else 0.
- **collision-free** C = 1 if `collisions.count` = 0 (no robot contact with anything but the
  task's target, the floor under a mobile base, or itself) else 0.
- **smoothness** from the jerk of the arm joints: j_i = (q_{i+3} - 3 q_{i+2} + 3 q_{i+1} - q_i)
  / dt^3, J_rms = sqrt(mean over i and joints of j_i^2) in rad/s^3, and
  M = 1 / (1 + J_rms / jerk_scale_rad_s3). Not computed below 4 frames.
- **path efficiency** of the end effector, split into segments where g changes (approach,
  carry, retreat): E = sum over segments of |p_last - p_first| / sum over i of |p_{i+1} - p_i|,
  1 for a straight path. Not computed when the end effector travels less than 1 mm.
- **joint-limit margin**: m = min over frames and arm joints of
  min(q - lower, upper - q) / (upper - lower), in [0, 0.5] (0 at a limit, 0.5 mid-range;
  joints without limits are skipped), and L = min(1, max(0, m) / joint_margin_scale). Not computed
  when the episode records no joint limits.
- **grasp stability**, when the gripper closes and the task names a target: the hold H is the
  closed run of g from the first closed frame in which the robot touches the target to the end
  of that run; r = |frames of H with robot-target contact| / |H|; for a free object, the slip
  s = max over contact frames of H of |R_ee^T (o_i - p_i) - R_ee^T (o_0 - p_0)| (how far the object
  moves in the hand, o its position, 0 the first contact frame once the fingers have settled,
  i.e. the opening changes by less than 0.5 mm per frame); G = r * max(0, 1 - s /
  grasp_slip_scale_m) (G = r for articulated targets, whose pose is not recorded). G = 0 when the
  gripper closes but never on the target; not computed when the gripper never closes.
- **completeness** K = (streams present + 1) / (3 * |cameras expected| + 1): each expected
  camera (name and size, the robot's most common set) contributes its rgb, depth and
  segmentation streams with all N frames, and the +1 is the state (every array of the format,
  all N frames, which validation already demands).

The **quality score** Q = sum_k w_k x_k / sum_k w_k over the metrics computed for the episode,
with the weights of `WEIGHTS` (success 0.35, collision-free 0.2, smoothness, path efficiency,
joint-limit margin and grasp stability 0.1 each, completeness 0.05). Q is in [0, 1].
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bp_import.episodes.validation import ValidEpisode
from bp_import.import_config import QualitySettings

WEIGHTS: dict[str, float] = {
    "success": 0.35,
    "collision_free": 0.2,
    "smoothness": 0.1,
    "path_efficiency": 0.1,
    "joint_limit_margin": 0.1,
    "grasp_stability": 0.1,
    "completeness": 0.05,
}
MIN_PATH_M = 1e-3
# The fingers have stopped closing when the opening changes by less than this per frame.
SETTLED_M = 5e-4
ROBOT_ENTITY = "robot"

CameraShape = tuple[str, int, int]


@dataclass(frozen=True)
class EpisodeQuality:
    """The metrics of one episode (None: not computable for it) and its score."""

    success: float
    collision_free: float
    smoothness: float | None
    path_efficiency: float | None
    joint_limit_margin: float | None
    grasp_stability: float | None
    completeness: float
    score: float
    rms_jerk_rad_s3: float | None
    min_joint_margin: float | None
    grasp_slip_m: float | None

    def components(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in WEIGHTS}

    def record(self) -> dict[str, Any]:
        return {k: (None if v is None else round(float(v), 6)) for k, v in asdict(self).items()}


def quality_score(components: dict[str, float | None]) -> float:
    """Weighted mean of the computed components, in [0, 1]."""
    present = {k: v for k, v in components.items() if v is not None}
    total = sum(WEIGHTS[k] for k in present)
    if total == 0:
        return 0.0
    return float(min(1.0, max(0.0, sum(WEIGHTS[k] * v for k, v in present.items()) / total)))


def episode_cameras(episode: ValidEpisode) -> tuple[CameraShape, ...]:
    return tuple((c.name, c.width, c.height) for c in episode.manifest.cameras)


def measure_episode(
    episode: ValidEpisode, expected_cameras: Sequence[CameraShape], settings: QualitySettings
) -> EpisodeQuality:
    """Every metric of the module docstring for one validated episode."""
    manifest, states = episode.manifest, episode.states
    dt = 1.0 / manifest.fps
    arm = len(manifest.state.action_names) - 1
    q = states["joint_position"][:, :arm].astype(np.float64)
    closed = gripper_closed(states["action"])
    rms_jerk = rms_joint_jerk(q, dt)
    margin = min_joint_margin(q, manifest.state.joint_limits, arm)
    grasp, slip = grasp_stability(episode, closed, settings.grasp_slip_scale_m)
    components: dict[str, float | None] = {
        "success": 1.0 if manifest.success else 0.0,
        "collision_free": 1.0 if manifest.collisions.count == 0 else 0.0,
        "smoothness": None
        if rms_jerk is None
        else 1.0 / (1.0 + rms_jerk / settings.jerk_scale_rad_s3),
        "path_efficiency": path_efficiency(states["ee_position"].astype(np.float64), closed),
        "joint_limit_margin": None
        if margin is None
        else min(1.0, max(0.0, margin) / settings.joint_margin_scale),
        "grasp_stability": grasp,
        "completeness": completeness(episode_cameras(episode), expected_cameras),
    }
    return EpisodeQuality(
        success=float(components["success"] or 0.0),
        collision_free=float(components["collision_free"] or 0.0),
        smoothness=components["smoothness"],
        path_efficiency=components["path_efficiency"],
        joint_limit_margin=components["joint_limit_margin"],
        grasp_stability=components["grasp_stability"],
        completeness=float(components["completeness"] or 0.0),
        score=quality_score(components),
        rms_jerk_rad_s3=rms_jerk,
        min_joint_margin=margin,
        grasp_slip_m=slip,
    )


def gripper_closed(action: NDArray[Any]) -> NDArray[np.bool_]:
    """Per frame: is the gripper commanded closed (target at most half its episode maximum)?"""
    target = action[:, -1].astype(np.float64)
    top = float(target.max()) if target.size else 0.0
    if top <= 0.0:
        return np.ones(target.shape[0], dtype=bool)
    return np.asarray(target <= 0.5 * top)


def rms_joint_jerk(q: NDArray[np.float64], dt: float) -> float | None:
    if q.shape[0] < 4 or q.shape[1] == 0:
        return None
    jerk = np.diff(q, n=3, axis=0) / dt**3
    return float(np.sqrt(np.mean(jerk**2)))


def path_efficiency(p: NDArray[np.float64], closed: NDArray[np.bool_]) -> float | None:
    steps = np.linalg.norm(np.diff(p, axis=0), axis=1)
    travelled = float(steps.sum())
    if travelled < MIN_PATH_M:
        return None
    cuts = [0, *(np.flatnonzero(np.diff(closed.astype(np.int8))) + 1).tolist(), len(p) - 1]
    chords = sum(float(np.linalg.norm(p[b] - p[a])) for a, b in itertools.pairwise(cuts) if b > a)
    return float(min(1.0, chords / travelled))


def min_joint_margin(q: NDArray[np.float64], limits: Any, arm: int) -> float | None:
    if limits is None:
        return None
    lower = np.array([np.nan if v is None else v for v in limits.lower[:arm]], dtype=np.float64)
    upper = np.array([np.nan if v is None else v for v in limits.upper[:arm]], dtype=np.float64)
    limited = np.isfinite(lower) & np.isfinite(upper) & (upper > lower)
    if not limited.any() or q.shape[0] == 0:
        return None
    span = upper[limited] - lower[limited]
    margins = np.minimum(q[:, limited] - lower[limited], upper[limited] - q[:, limited]) / span
    return float(margins.min())


def completeness(present: Sequence[CameraShape], expected: Sequence[CameraShape]) -> float:
    have = set(present)
    streams = sum(3 for camera in expected if camera in have)
    return (streams + 1) / (3 * len(expected) + 1)


def _entity_id(segmentation_ids: dict[str, str], name: str | None) -> int | None:
    if not name:
        return None
    for key, value in segmentation_ids.items():
        if value == name:
            return int(key)
    return None


def grasp_stability(
    episode: ValidEpisode, closed: NDArray[np.bool_], slip_scale_m: float
) -> tuple[float | None, float | None]:
    """G and the slip in metres (None when not computable); see the module docstring."""
    manifest, states = episode.manifest, episode.states
    if not closed.any():
        return None, None
    robot = _entity_id(manifest.segmentation_ids, ROBOT_ENTITY)
    target = _entity_id(manifest.segmentation_ids, manifest.target)
    if robot is None or target is None:
        return None, None
    a, b = states["contact_entity_a"].astype(np.int64), states["contact_entity_b"].astype(np.int64)
    touching = ((a == robot) & (b == target)) | ((a == target) & (b == robot))
    in_contact = np.zeros(manifest.n_frames, dtype=bool)
    in_contact[states["contact_frame"][touching].astype(np.int64)] = True
    grasped = np.flatnonzero(closed & in_contact)
    if grasped.size == 0:
        return 0.0, None
    start = int(grasped[0])
    end = start
    while end + 1 < len(closed) and closed[end + 1]:
        end += 1
    hold = in_contact[start : end + 1]
    ratio = float(hold.mean())
    if manifest.target not in manifest.state.object_ids:
        return ratio, None
    k = manifest.state.object_ids.index(manifest.target)
    frames = np.arange(start, end + 1)[hold]
    opening = states["gripper_opening"].astype(np.float64)
    settled = [f for f in frames if f > 0 and abs(opening[f] - opening[f - 1]) < SETTLED_M]
    frames = frames[frames >= (settled[0] if settled else frames[0])]
    offsets = states["object_position"][frames, k].astype(np.float64) - states["ee_position"][
        frames
    ].astype(np.float64)
    in_hand = np.einsum("nji,nj->ni", rotation_matrices(states["ee_quaternion"][frames]), offsets)
    slip = float(np.linalg.norm(in_hand - in_hand[0], axis=1).max())
    return ratio * max(0.0, 1.0 - slip / slip_scale_m), slip


def rotation_matrices(quaternions: NDArray[Any]) -> NDArray[np.float64]:
    """(n, 3, 3) rotations of unit quaternions w, x, y, z."""
    w, x, y, z = (
        quaternions.astype(np.float64) / np.linalg.norm(quaternions, axis=-1, keepdims=True)
    ).T
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], axis=-1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], axis=-1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=-1),
        ],
        axis=1,
    )
