"""A policy run in closed loop in the MuJoCo world of an episode order, and judged.

The world, the randomisation draw and the start state are built exactly as `simulate_episode`
builds them for the same seed; the policy replaces the scripted expert. Nothing is rendered or
recorded, so a rollout costs the physics alone.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
from bp_scene_contract import SceneGraph, TaskConfig, judge

from bp_collector.mujoco.episode import set_initial_joint
from bp_collector.mujoco.observation import observe
from bp_collector.mujoco.randomization import draw_randomization
from bp_collector.mujoco.world import WorldOptions, build_world
from bp_collector.policy import Policy, PolicyObservation, PolicyOutcome


def rollout_policy(
    graph: SceneGraph,
    config: TaskConfig,
    robot: str,
    task_id: str,
    seed: int,
    policy: Policy,
    *,
    fps: int = 30,
    max_seconds: float = 10.0,
) -> PolicyOutcome:
    """Run `policy` for `max_seconds` from the seed's start state; judge the final state."""
    task = config.task(task_id)
    free = [n.asset_id for n in graph.nodes if not n.is_static and n.articulation is None]
    rand = draw_randomization(seed, free, [n.asset_id for n in graph.nodes], ())
    world = build_world(graph, config.assignment(robot), task, WorldOptions((), 64, 64, fps), rand)
    model = world.model
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, 0)
    set_initial_joint(world, task, data)
    mujoco.mj_forward(model, data)
    names = list(world.robot.arm_joints) + list(world.robot.finger_joints)
    qadr = np.array([model.joint(j).qposadr[0] for j in names])
    fingers = np.array([model.joint(j).qposadr[0] for j in world.robot.finger_joints])
    arm = np.array([model.actuator(a).id for a in world.robot.arm_actuators])
    grip = model.actuator(world.robot.gripper_actuator).id
    site = model.site(world.robot.ee_site).id
    body = (
        model.body(world.free_objects[task.target].body).id
        if task.target in world.free_objects
        else None
    )
    n = max(1, math.floor(max_seconds * fps + 1e-9))
    frames = 0
    start = data.xpos[body].copy() if body is not None else data.site_xpos[site].copy()
    for i in range(n):
        ee = data.site_xpos[site].copy()
        action = policy.act(
            PolicyObservation(
                time_s=i / fps,
                joint_position=data.qpos[qadr].copy(),
                gripper_opening=float(np.sum(data.qpos[fingers])),
                ee_position=ee,
                target_position=data.xpos[body].copy() if body is not None else ee,
                target_start_position=start,
            )
        )
        data.ctrl[arm] = action[:-1]
        data.ctrl[grip] = action[-1]
        for _ in range(world.substeps):
            mujoco.mj_step(model, data)
        frames = i + 1
        if not np.all(np.isfinite(data.qpos)):
            break
    outcome = judge(task.success, observe(world, graph, data))
    return PolicyOutcome(outcome.success, outcome.reason, frames)
