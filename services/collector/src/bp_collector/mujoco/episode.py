"""Run one episode end to end: build the world, drive the expert, record and judge it.

A failed attempt (missed grasp, unreachable target, diverged physics) is still written and
committed as an episode with `success: false`; only invalid inputs raise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
from bp_scene_contract import Outcome, SceneGraph, TaskConfig, TaskSpec, judge

from bp_collector.backend import episode_id_for
from bp_collector.camera_placement import Placement, placement_record
from bp_collector.mujoco.contacts import CollisionStats, ContactMonitor, FingerForces
from bp_collector.mujoco.expert import ExpertError, ScriptedExpert, pinch_distance
from bp_collector.mujoco.observation import observe
from bp_collector.mujoco.randomization import RandomizationRanges, draw_randomization
from bp_collector.mujoco.recording import STATES, EpisodeWriter, stream_spec
from bp_collector.mujoco.rendering import CameraRig
from bp_collector.mujoco.world import FIXED_CAMERA_FOVY_DEG, World, WorldOptions, build_world


@dataclass(frozen=True)
class EpisodeResult:
    episode_id: str
    out_dir: Path
    success: bool
    reason: str
    n_frames: int
    collision_count: int
    peak_collision_force_n: float
    timings_s: dict[str, float] = field(default_factory=dict)


class _StateLog:
    """Preallocated per-frame arrays, trimmed to the frames actually recorded."""

    def __init__(self, world: World, n_max: int, cameras: tuple[str, ...] = ()) -> None:
        model = world.model
        robot = world.robot
        self.world = world
        self.joint_names = list(robot.arm_joints) + list(robot.finger_joints)
        self.qadr = np.array([model.joint(j).qposadr[0] for j in self.joint_names])
        self.dadr = np.array([model.joint(j).dofadr[0] for j in self.joint_names])
        self.pinch = np.array([model.geom(g).id for g in robot.pinch_geoms])
        self.pinch_closed = pinch_distance(world, 0.0)
        self.site = model.site(robot.ee_site).id
        self.object_ids = sorted(world.free_objects)
        self.object_bodies = np.array(
            [model.body(world.free_objects[o].body).id for o in self.object_ids], dtype=int
        )
        self.part_keys = sorted(world.parts)
        self.part_adr = np.array(
            [model.joint(world.parts[k].mj_joint).qposadr[0] for k in self.part_keys], dtype=int
        )
        # Unlimited joints (continuous rotation) have no limits: null.
        ranges = [
            model.jnt_range[model.joint(j).id]
            if model.jnt_limited[model.joint(j).id]
            else (None, None)
            for j in self.joint_names
        ]
        self.joint_limits = {
            "lower": [None if lo is None else float(lo) for lo, _ in ranges],
            "upper": [None if hi is None else float(hi) for _, hi in ranges],
        }
        self.camera_ids = np.array(
            [model.camera(world.camera_name(c)).id for c in cameras], dtype=int
        )
        n_j, n_o, n_p = len(self.joint_names), len(self.object_ids), len(self.part_keys)
        n_c = len(self.camera_ids)
        n_a = len(robot.arm_actuators) + 1
        self.a: dict[str, np.ndarray] = {
            "frame_index": np.arange(n_max, dtype=np.int64),
            "timestamp": np.zeros(n_max),
            "joint_position": np.zeros((n_max, n_j)),
            "joint_velocity": np.zeros((n_max, n_j)),
            "ee_position": np.zeros((n_max, 3)),
            "ee_quaternion": np.zeros((n_max, 4)),
            "gripper_opening": np.zeros(n_max),
            "action": np.zeros((n_max, n_a)),
            "object_position": np.zeros((n_max, n_o, 3)),
            "object_quaternion": np.zeros((n_max, n_o, 4)),
            "articulation_position": np.zeros((n_max, n_p)),
            "collisions_started": np.zeros(n_max, dtype=np.int32),
            "collision_peak_force_n": np.zeros(n_max, dtype=np.float32),
        }
        if n_c:
            self.a["camera_position"] = np.zeros((n_max, n_c, 3))
            self.a["camera_quaternion"] = np.zeros((n_max, n_c, 4))
        self.contacts: list[tuple[int, Any]] = []
        self.fingers = FingerForces(model, robot.finger_joints)
        self.a["fingertip_force_n"] = np.zeros((n_max, self.fingers.count, 3))

    def observe(self, i: int, fps: int, data: mujoco.MjData) -> None:
        a = self.a
        # Timestamps are defined as frame_index / fps, not read from the float physics clock.
        a["timestamp"][i] = i / fps
        a["joint_position"][i] = data.qpos[self.qadr]
        a["joint_velocity"][i] = data.qvel[self.dadr]
        a["ee_position"][i] = data.site_xpos[self.site]
        mujoco.mju_mat2Quat(a["ee_quaternion"][i], data.site_xmat[self.site])
        tips = data.geom_xpos[self.pinch]
        a["gripper_opening"][i] = float(np.linalg.norm(tips[0] - tips[1])) - self.pinch_closed
        if len(self.object_bodies):
            a["object_position"][i] = data.xpos[self.object_bodies]
            a["object_quaternion"][i] = data.xquat[self.object_bodies]
        if len(self.part_adr):
            a["articulation_position"][i] = data.qpos[self.part_adr]
        a["fingertip_force_n"][i] = self.fingers.measure(data)
        for k, cam in enumerate(self.camera_ids):
            a["camera_position"][i, k] = data.cam_xpos[cam]
            mujoco.mju_mat2Quat(a["camera_quaternion"][i, k], data.cam_xmat[cam])

    def arrays(self, n: int) -> dict[str, np.ndarray]:
        out = {k: v[:n] for k, v in self.a.items()}
        frames = [np.full(len(c.geom_a), i, dtype=np.int32) for i, c in self.contacts]
        records = [c for _, c in self.contacts]
        entity = self.world.geom_entity
        geom_a = np.concatenate([c.geom_a for c in records]) if records else np.zeros(0, np.int32)
        geom_b = np.concatenate([c.geom_b for c in records]) if records else np.zeros(0, np.int32)
        out["contact_frame"] = np.concatenate(frames) if frames else np.zeros(0, np.int32)
        out["contact_geom_a"] = geom_a.astype(np.int32)
        out["contact_geom_b"] = geom_b.astype(np.int32)
        out["contact_entity_a"] = entity[geom_a]
        out["contact_entity_b"] = entity[geom_b]
        out["contact_force_n"] = (
            np.concatenate([c.force_n for c in records]) if records else np.zeros(0, np.float32)
        )
        out["contact_is_collision"] = (
            np.concatenate([c.is_collision for c in records]) if records else np.zeros(0, bool)
        )
        return out


def collision_record(stats: CollisionStats) -> dict[str, Any]:
    """The episode manifest's `collisions`, whichever simulator recorded them."""
    return {
        "count": stats.count,
        "peak_force_n": round(stats.peak_force_n, 4),
        "frames_in_collision": stats.frames_in_collision,
        "pairs": dict(sorted(stats.pairs.items())),
    }


def expert_record(expert: ScriptedExpert | None) -> dict[str, Any]:
    """The episode manifest's `expert`: how far the script got, its worst IK residual, and
    the grasp it chose on the object's shape (null when it took the object by its box)."""
    return {
        "completed": bool(expert is not None and expert.done),
        "phase": expert.phase if expert is not None else "not started",
        "max_ik_residual_m": round(expert.max_residual, 5) if expert is not None else None,
        "grasp": expert.grasp.record() if expert is not None and expert.grasp else None,
        "grasp_candidates": expert.grasp_candidates if expert is not None else 0,
    }


def lights_record(model: mujoco.MjModel) -> list[dict[str, Any]]:
    """The episode manifest's `lights`: what lit the scene (the scene's own, or the key light)."""
    return [
        {
            "name": model.light(i).name,
            "type": "directional"
            if model.light_type[i] == mujoco.mjtLightType.mjLIGHT_DIRECTIONAL
            else "point",
            "position": [round(float(v), 6) for v in model.light_pos[i]],
            "direction": [round(float(v), 6) for v in model.light_dir[i]],
            "diffuse": round(float(model.light_diffuse[i][0]), 6),
        }
        for i in range(model.nlight)
    ]


def set_initial_joint(world: World, task: TaskSpec, data: mujoco.MjData) -> None:
    """Open/close tasks may start with the part part-way, e.g. a door to close starts open."""
    goal = task.joint_goal
    part = world.parts.get((task.target, goal.joint)) if goal is not None else None
    if goal is None or part is None:
        return
    joint = world.model.joint(part.mj_joint)
    lower, upper = (float(v) for v in world.model.jnt_range[joint.id])
    data.qpos[joint.qposadr[0]] = min(max(goal.initial_value, lower), upper)


def _exempt_bodies(world: World, task_target: str) -> list[int]:
    """Bodies the robot is meant to touch: the grasp target or the moved part and its handle."""
    return list(world.node_bodies.get(task_target, ()))


def simulate_episode(
    graph: SceneGraph,
    config: TaskConfig,
    robot: str,
    task_id: str,
    seed: int,
    out_dir: Path,
    cameras: tuple[str, ...] = ("wrist", "overhead"),
    width: int = 224,
    height: int = 224,
    fps: int = 30,
    max_seconds: float = 10.0,
    *,
    stop_when_done: bool = True,
    render: bool = True,
    ranges: RandomizationRanges | None = None,
    fovy_deg: float = 0.0,
    placements: Mapping[str, Placement] | None = None,
) -> EpisodeResult:
    """Simulate, record and judge one episode; the directory is committed by its manifest.

    `stop_when_done` ends the episode when the expert's script is over (else it runs for
    `max_seconds`); `render=False` records state only (no camera files), for baselines.
    `placements` put fixed cameras elsewhere than their own places.
    """
    t_start = time.perf_counter()
    task = config.task(task_id)
    assignment = config.assignment(robot)
    cams = tuple(cameras) if render else ()
    free = [n.asset_id for n in graph.nodes if not n.is_static and n.articulation is None]
    rand = draw_randomization(seed, free, [n.asset_id for n in graph.nodes], cams, ranges)
    placed = dict(placements or {}) if render else {}
    options = WorldOptions(cams, width, height, fps, fovy_deg or FIXED_CAMERA_FOVY_DEG, placed)
    world = build_world(graph, assignment, task, options, rand)
    model = world.model
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    set_initial_joint(world, task, data)
    mujoco.mj_forward(model, data)

    n_max = max(1, math.floor(max_seconds * fps + 1e-9))
    log = _StateLog(world, n_max, cams)
    monitor = ContactMonitor(world, _exempt_bodies(world, task.target))
    rig = CameraRig(world, width, height) if cams else None
    writer = EpisodeWriter(out_dir, cams, width, height, fps)
    expert_error: str | None = None
    try:
        expert: ScriptedExpert | None = ScriptedExpert(world, task, data)
    except ExpertError as exc:
        expert, expert_error = None, str(exc)
    hold = data.ctrl.copy()
    timings = {"physics": 0.0, "render": 0.0, "encode": 0.0, "expert": 0.0}
    n = 0
    try:
        for i in range(n_max):
            log.observe(i, fps, data)
            log.contacts.append((i, monitor.snapshot(data)))
            if rig is not None:
                for camera in cams:
                    t0 = time.perf_counter()
                    images = rig.capture(data, camera)
                    t1 = time.perf_counter()
                    writer.add_images(i, camera, images.rgb, images.depth_mm, images.segmentation)
                    timings["render"] += t1 - t0
                    timings["encode"] += time.perf_counter() - t1
            t0 = time.perf_counter()
            if expert is not None:
                action = expert.act(data)
                expert.apply(data, action)
            else:
                action = np.concatenate([hold[: len(world.robot.arm_actuators)], [1.0]])
            log.a["action"][i] = action
            t1 = time.perf_counter()
            monitor.start_frame()
            for _ in range(world.substeps):
                mujoco.mj_step(model, data)
                monitor.after_step(data)
            monitor.end_frame()
            timings["expert"] += t1 - t0
            timings["physics"] += time.perf_counter() - t1
            log.a["collisions_started"][i] = monitor.frame_collisions
            log.a["collision_peak_force_n"][i] = monitor.frame_peak
            n = i + 1
            if not np.all(np.isfinite(data.qpos)):
                break
            if stop_when_done and (expert is None or expert.done):
                break
    finally:
        t0 = time.perf_counter()
        writer.close_streams()
        timings["encode"] += time.perf_counter() - t0
        if rig is not None:
            rig.close()

    outcome = judge(task.success, observe(world, graph, data))
    if expert_error is not None:
        outcome = Outcome(False, f"expert could not plan: {expert_error}", outcome.details)
    elif expert is not None and not expert.done:
        outcome = Outcome(
            outcome.success, outcome.reason, {**outcome.details, "expert_phase": expert.phase}
        )
    writer.write_states(log.arrays(n))
    episode_id = episode_id_for(graph.scene_id, task.task_id, robot, seed)
    stats = monitor.stats
    manifest = {
        "episode_id": episode_id,
        "scene_id": graph.scene_id,
        "task_id": task.task_id,
        "task_kind": task.kind,
        "target": task.target,
        "instructions": list(task.instructions),
        "robot": robot,
        "seed": seed,
        "fps": fps,
        "n_frames": n,
        "duration_s": n / fps,
        "success": outcome.success,
        "outcome": outcome.to_record(),
        "collisions": collision_record(stats),
        "expert": expert_record(expert),
        "simulator": {
            "name": "mujoco",
            "version": mujoco.__version__,
            "timestep_s": float(model.opt.timestep),
            "substeps_per_frame": world.substeps,
        },
        "cameras": [
            {
                "name": c,
                "width": width,
                "height": height,
                "fovy_deg": float(model.cam_fovy[model.camera(world.camera_name(c)).id]),
                "placement": placement_record(placed.get(c)),
                "streams": {s: stream_spec(s) for s in ("rgb", "depth", "segmentation")},
            }
            for c in cams
        ],
        "segmentation_ids": {str(k): v for k, v in sorted(world.entities.items())},
        "state": {
            "file": STATES,
            "joint_names": log.joint_names,
            "joint_limits": log.joint_limits,
            "action_names": [*world.robot.arm_joints, "gripper"],
            "object_ids": log.object_ids,
            "articulation_joints": [f"{a}/{j}" for a, j in log.part_keys],
            "geom_names": [
                model.geom(g).name or model.body(model.geom_bodyid[g]).name
                for g in range(model.ngeom)
            ],
        },
        "randomization": rand.to_record(),
        "lights": lights_record(model),
    }
    writer.commit(manifest)
    timings["total"] = time.perf_counter() - t_start
    return EpisodeResult(
        episode_id=episode_id,
        out_dir=out_dir,
        success=outcome.success,
        reason=outcome.reason,
        n_frames=n,
        collision_count=stats.count,
        peak_collision_force_n=float(stats.peak_force_n),
        timings_s=timings,
    )
