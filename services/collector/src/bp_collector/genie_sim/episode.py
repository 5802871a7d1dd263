"""One episode on a Genie Sim server: set the scene up, drive the expert frame by frame, judge.

The order of calls is the one Genie Sim's own data collection uses: reset, init_robot,
add_object for each object, set_object_pose, add_camera for each camera, start recording,
then per frame get_observation, set_joint_position (the expert's joint targets) and
set_gripper_state when the gripper command changes, and finally stop recording and
task_status with the verdict. The verdict is the scene contract's success rule applied to the
object poses (and articulated joints) the server reports at the end; speeds come from the last
frame period. The episode folder is written in the raw episode format, exactly as the MuJoCo
backend writes it, and committed by its manifest only once everything has been received.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bp_genie_sim_api import DEFAULT_PORT
from bp_scene_contract import BodyState, Box, Observation, Outcome, SceneGraph, judge

from bp_collector.backend import EpisodeOrder, EpisodeSummary, episode_id_for
from bp_collector.camera_placement import placement_record
from bp_collector.genie_sim import wire
from bp_collector.genie_sim.client import CameraShot, GenieSimClient, UnexpectedAnswer
from bp_collector.genie_sim.twin import PlanningTwin
from bp_collector.mujoco.episode import collision_record, expert_record
from bp_collector.mujoco.expert import CLOSED
from bp_collector.mujoco.randomization import draw_randomization
from bp_collector.mujoco.recording import STATES, EpisodeWriter, stream_spec
from bp_collector.mujoco.world import FIXED_CAMERA_FOVY_DEG, WorldOptions

PROTOCOL = f"aimdk.protocol (Genie Sim 3.x data collection, port {DEFAULT_PORT})"
DEPTH_MAX_MM = float(np.iinfo(np.uint16).max)


@dataclass
class _Frames:
    """Per-frame arrays, grown as frames arrive."""

    rows: dict[str, list[Any]] = field(default_factory=dict)
    contacts: list[tuple[int, Any]] = field(default_factory=list)

    def add(self, **values: Any) -> None:
        for key, value in values.items():
            self.rows.setdefault(key, []).append(value)


def _rest_speeds(
    before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray], fps: int
) -> tuple[float, float]:
    """Linear and angular speed over one frame period, from two reported poses."""
    linear = float(np.linalg.norm(after[0] - before[0])) * fps
    dot = abs(float(np.dot(before[1], after[1])))
    angle = 2.0 * math.acos(min(1.0, dot))
    return linear, angle * fps


def _observation(
    twin: PlanningTwin,
    graph: SceneGraph,
    last: dict[str, tuple[np.ndarray, np.ndarray]],
    final: dict[str, tuple[np.ndarray, np.ndarray]],
    joints: dict[tuple[str, str], float],
    fps: int,
) -> Observation:
    """The end of the episode as the server reported it, for the shared success rule."""
    values = [v for pose in final.values() for part in pose for v in part] + list(joints.values())
    if not all(math.isfinite(v) for v in values):
        return Observation(diverged=True)
    bodies = {}
    for asset_id, pose in final.items():
        linear, angular = _rest_speeds(last[asset_id], pose, fps)
        x, y, z = (float(v) for v in pose[0])
        bodies[asset_id] = BodyState(
            position=(x, y, z),
            half_height=twin.world.free_objects[asset_id].half_extents[2],
            linear_speed=linear,
            angular_speed=angular,
        )
    boxes = {}
    for node in graph.nodes:
        box = node.bbox
        if node.asset_id in final:
            shift = final[node.asset_id][0] - np.array(box.centre)
            lo, hi = np.array(box.min) + shift, np.array(box.max) + shift
            box = Box(
                min=(float(lo[0]), float(lo[1]), float(lo[2])),
                max=(float(hi[0]), float(hi[1]), float(hi[2])),
            )
        boxes[node.asset_id] = box
    return Observation(bodies=bodies, boxes=boxes, joints=dict(joints))


def _images(shot: CameraShot, entity_of: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Depth in millimetres (0: no return) and segmentation in the episode's entity ids."""
    height, width = shot.rgb.shape[:2]
    if shot.depth_m is None or shot.labels is None:
        raise UnexpectedAnswer("camera image without the depth or semantic mask it was asked for")
    depth = np.nan_to_num(shot.depth_m, nan=0.0, posinf=0.0, neginf=0.0)
    depth_mm = np.rint(np.clip(depth, 0.0, DEPTH_MAX_MM / 1000.0) * 1000.0).astype(np.uint16)
    lut_keys = np.array(sorted(entity_of), dtype=np.int64)
    lut_vals = np.array([entity_of[k] for k in lut_keys], dtype=np.uint16)
    labels = shot.labels.astype(np.int64)
    index = np.clip(np.searchsorted(lut_keys, labels), 0, max(0, len(lut_keys) - 1))
    known = lut_keys[index] == labels if len(lut_keys) else np.zeros(labels.shape, bool)
    seg = np.where(known, lut_vals[index] if len(lut_vals) else 0, 0).astype(np.uint16)
    return depth_mm.reshape(height, width), seg.reshape(height, width)


def run_episode(
    client: GenieSimClient, order: EpisodeOrder, out_dir: Path, scene_path: str
) -> EpisodeSummary:
    """Run `order` on the server behind `client` into `out_dir`, committed last."""
    t_start = time.perf_counter()
    graph, config = order.scene, order.tasks
    task = config.task(order.task_id)
    cams = tuple(order.cameras)
    free = [n.asset_id for n in graph.nodes if not n.is_static and n.articulation is None]
    rand = draw_randomization(order.seed, free, [n.asset_id for n in graph.nodes], cams)
    fovy = order.fovy_deg or FIXED_CAMERA_FOVY_DEG
    options = WorldOptions(cams, order.width, order.height, order.fps, fovy, order.placements)
    twin = PlanningTwin(graph, config, task, order.robot, options, rand)
    base = config.assignment(order.robot).base_pose
    assert base is not None  # build_world refused a robot without one
    objects = twin.objects()
    prims = [o.prim for o in objects]

    timings = {"setup": 0.0, "server": 0.0, "plan": 0.0, "encode": 0.0}
    t0 = time.perf_counter()
    client.reset()
    client.init_robot(order.robot, scene_path, base.position, base.orientation, twin.robot_joints())
    for obj in objects:
        client.add_object(
            obj.prim,
            obj.asset_id,
            scene_path,
            obj.position,
            obj.quaternion,
            obj.rgb,
            obj.mass,
            obj.friction,
        )
    client.set_object_pose(
        {o.prim: (o.position, o.quaternion) for o in objects}, twin.part_values()
    )
    for setup in twin.cameras():
        client.add_camera(
            setup.name,
            setup.position,
            setup.quaternion,
            setup.fovy_deg,
            order.width,
            order.height,
            setup.on_hand,
        )
    client.start_recording(order.fps, task.task_id, cams)
    timings["setup"] = time.perf_counter() - t0
    twin.start_expert()

    world = twin.world
    entity_of: dict[int, int] = {}  # the server's label ids -> the episode's segmentation ids
    ids_by_name = {name: i for i, name in world.entities.items()}
    part_prims = {key: twin.part_prim(key[0]) for key in twin.part_keys}
    n_arm = len(world.robot.arm_joints)
    n_max = max(1, math.floor(order.max_seconds * order.fps + 1e-9))
    frame_dt = float(world.model.opt.timestep)
    writer = EpisodeWriter(out_dir, cams, order.width, order.height, order.fps)
    log = _Frames()
    sim_time = 0.0
    gripper_sent: float | None = None
    last_poses: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    n = 0
    committed = False
    try:
        for i in range(n_max):
            t0 = time.perf_counter()
            seen = client.observe(prims, cams, (order.width, order.height))
            parts = {key: client.part_joint(part_prims[key], key[1]) for key in twin.part_keys}
            timings["server"] += time.perf_counter() - t0
            missing = [j for j in twin.joint_names if j not in seen.joints]
            if missing or seen.hand is None:
                raise UnexpectedAnswer(f"the observation lacks joints {missing} or the hand pose")
            poses = dict(zip(twin.object_ids, seen.poses, strict=True))
            joints = {
                j: (seen.joints[j].position, seen.joints[j].velocity) for j in twin.joint_names
            }
            t0 = time.perf_counter()
            twin.sync(sim_time, joints, poses, parts)
            record, started, peak = twin.contacts()
            cam_pos, cam_quat = twin.camera_poses()
            action = twin.action()
            timings["plan"] += time.perf_counter() - t0
            fingers = [joints[f][0] for f in world.robot.finger_joints]
            log.add(
                joint_position=[joints[j][0] for j in twin.joint_names],
                joint_velocity=[joints[j][1] for j in twin.joint_names],
                ee_position=seen.hand[0],
                ee_quaternion=seen.hand[1],
                gripper_opening=float(sum(fingers)),
                action=action,
                object_position=[poses[o][0] for o in twin.object_ids],
                object_quaternion=[poses[o][1] for o in twin.object_ids],
                articulation_position=[parts[k] for k in twin.part_keys],
                collisions_started=started,
                collision_peak_force_n=peak,
                camera_position=cam_pos,
                camera_quaternion=cam_quat,
            )
            log.contacts.append((i, record))
            t0 = time.perf_counter()
            for camera, shot in zip(cams, seen.cameras, strict=True):
                if not entity_of:
                    entity_of = {
                        label: ids_by_name[name]
                        for label, name in shot.label_names.items()
                        if name in ids_by_name
                    }
                depth_mm, seg = _images(shot, entity_of)
                writer.add_images(i, camera, shot.rgb, depth_mm, seg)
            timings["encode"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            client.set_joints(dict(zip(world.robot.arm_joints, action[:n_arm], strict=True)))
            if gripper_sent is None or action[-1] != gripper_sent:
                opening = action[-1] > CLOSED  # the expert's command is an opening fraction
                client.set_gripper(wire.GRIPPER_OPEN if opening else wire.GRIPPER_CLOSE)
                gripper_sent = float(action[-1])
            timings["server"] += time.perf_counter() - t0
            for _ in range(world.substeps):
                sim_time += frame_dt
            last_poses = poses
            n = i + 1
            expert = twin.expert
            if expert is None or expert.done:
                break
        # The state after the last command: one more frame period of the server's physics.
        t0 = time.perf_counter()
        final_seen = client.observe(prims, (), None, hand=False)
        final_parts = {key: client.part_joint(part_prims[key], key[1]) for key in twin.part_keys}
        client.stop_recording()
        timings["server"] += time.perf_counter() - t0
        final = dict(zip(twin.object_ids, final_seen.poses, strict=True))
        observed = _observation(twin, graph, last_poses, final, final_parts, order.fps)
        outcome = judge(task.success, observed)
        expert = twin.expert
        if twin.expert_error is not None:
            outcome = Outcome(False, f"expert could not plan: {twin.expert_error}", outcome.details)
        elif expert is not None and not expert.done:
            outcome = Outcome(
                outcome.success, outcome.reason, {**outcome.details, "expert_phase": expert.phase}
            )
        client.task_status(outcome.success)
        t0 = time.perf_counter()
        writer.close_streams()
        timings["encode"] += time.perf_counter() - t0
        writer.write_states(_arrays(log, twin, n, order.fps, bool(cams)))
        episode_id = episode_id_for(graph.scene_id, task.task_id, order.robot, order.seed)
        stats = twin.monitor.stats
        model = world.model
        manifest = {
            "episode_id": episode_id,
            "scene_id": graph.scene_id,
            "task_id": task.task_id,
            "task_kind": task.kind,
            "target": task.target,
            "instructions": list(task.instructions),
            "robot": order.robot,
            "seed": order.seed,
            "fps": order.fps,
            "n_frames": n,
            "duration_s": n / order.fps,
            "success": outcome.success,
            "outcome": outcome.to_record(),
            "collisions": collision_record(stats),
            "expert": expert_record(expert),
            "simulator": {
                "name": "genie-sim",
                "version": PROTOCOL,
                "server": client.address,
                # Genie Sim's physics step is its own; the protocol does not report it.
                "timestep_s": None,
                "substeps_per_frame": None,
                "contacts": "planning twin at the reported poses",
            },
            "cameras": [
                {
                    "name": c,
                    "width": order.width,
                    "height": order.height,
                    "fovy_deg": float(model.cam_fovy[model.camera(world.camera_name(c)).id]),
                    "placement": placement_record(order.placements.get(c)),
                    "streams": {s: stream_spec(s) for s in ("rgb", "depth", "segmentation")},
                }
                for c in cams
            ],
            "segmentation_ids": {str(k): v for k, v in sorted(world.entities.items())},
            "state": {
                "file": STATES,
                "joint_names": twin.joint_names,
                "joint_limits": _joint_limits(twin),
                "action_names": [*world.robot.arm_joints, "gripper"],
                "object_ids": twin.object_ids,
                "articulation_joints": [f"{a}/{j}" for a, j in twin.part_keys],
                "geom_names": [
                    model.geom(g).name or model.body(model.geom_bodyid[g]).name
                    for g in range(model.ngeom)
                ],
            },
            "randomization": rand.to_record(),
            "lights": [],  # the Genie Sim server lights its own scene
        }
        writer.commit(manifest)
        committed = True
    finally:
        if not committed:
            _abandon(writer)
    timings["total"] = time.perf_counter() - t_start
    return EpisodeSummary(
        episode_id=episode_id,
        success=outcome.success,
        reason=outcome.reason,
        n_frames=n,
        collision_count=stats.count,
        peak_collision_force_n=float(stats.peak_force_n),
        timings_s=timings,
    )


def _abandon(writer: EpisodeWriter) -> None:
    """Let go of an episode that failed half-way: encoders closed, manifest never written."""
    # Already closed, or the encoder broke: either way the folder stays uncommitted.
    with contextlib.suppress(Exception):
        writer.close_streams()


def _joint_limits(twin: PlanningTwin) -> dict[str, list[float | None]]:
    model = twin.world.model
    lower: list[float | None] = []
    upper: list[float | None] = []
    for name in twin.joint_names:
        joint = model.joint(name).id
        limited = bool(model.jnt_limited[joint])
        lower.append(float(model.jnt_range[joint][0]) if limited else None)
        upper.append(float(model.jnt_range[joint][1]) if limited else None)
    return {"lower": lower, "upper": upper}


def _arrays(
    log: _Frames, twin: PlanningTwin, n: int, fps: int, cameras: bool
) -> dict[str, np.ndarray]:
    rows = log.rows
    k, p = len(twin.object_ids), len(twin.part_keys)
    out: dict[str, np.ndarray] = {
        "frame_index": np.arange(n, dtype=np.int64),
        "timestamp": np.arange(n, dtype=np.int64) / fps,
        "joint_position": np.array(rows["joint_position"], dtype=np.float64),
        "joint_velocity": np.array(rows["joint_velocity"], dtype=np.float64),
        "ee_position": np.array(rows["ee_position"], dtype=np.float64),
        "ee_quaternion": np.array(rows["ee_quaternion"], dtype=np.float64),
        "gripper_opening": np.array(rows["gripper_opening"], dtype=np.float64),
        "action": np.array(rows["action"], dtype=np.float64),
        "object_position": np.array(rows["object_position"], dtype=np.float64).reshape(n, k, 3),
        "object_quaternion": np.array(rows["object_quaternion"], dtype=np.float64).reshape(n, k, 4),
        "articulation_position": np.array(rows["articulation_position"], dtype=np.float64).reshape(
            n, p
        ),
        "collisions_started": np.array(rows["collisions_started"], dtype=np.int32),
        "collision_peak_force_n": np.array(rows["collision_peak_force_n"], dtype=np.float32),
    }
    if cameras:
        out["camera_position"] = np.array(rows["camera_position"], dtype=np.float64)
        out["camera_quaternion"] = np.array(rows["camera_quaternion"], dtype=np.float64)
    records = [c for _, c in log.contacts]
    entity = twin.world.geom_entity
    geom_a = np.concatenate([c.geom_a for c in records]).astype(np.int32)
    geom_b = np.concatenate([c.geom_b for c in records]).astype(np.int32)
    out["contact_frame"] = np.concatenate(
        [np.full(len(c.geom_a), i, dtype=np.int32) for i, c in log.contacts]
    )
    out["contact_geom_a"] = geom_a
    out["contact_geom_b"] = geom_b
    out["contact_entity_a"] = entity[geom_a]
    out["contact_entity_b"] = entity[geom_b]
    out["contact_force_n"] = np.concatenate([c.force_n for c in records]).astype(np.float32)
    out["contact_is_collision"] = np.concatenate([c.is_collision for c in records]).astype(bool)
    return out
