"""Observe the end of an episode from the physics state, for the scene contract's success rule.

The rule itself (bp_scene_contract.success) is shared with every backend; this only reads
MuJoCo: each free object's body position, half height and speeds, where every object's box is
now, the articulated joints' values, and whether the state is still finite.
"""

from __future__ import annotations

import mujoco
import numpy as np
from bp_scene_contract import BodyState, Box, Observation, SceneGraph

from bp_collector.mujoco.world import World


def observe(world: World, graph: SceneGraph, data: mujoco.MjData) -> Observation:
    """The observation of `data`; a state with NaNs is only `diverged`."""
    if not (np.all(np.isfinite(data.qpos)) and np.all(np.isfinite(data.qvel))):
        return Observation(diverged=True)
    bodies: dict[str, BodyState] = {}
    for asset_id, obj in world.free_objects.items():
        body = world.model.body(obj.body).id
        vel = np.zeros(6)
        mujoco.mj_objectVelocity(world.model, data, mujoco.mjtObj.mjOBJ_BODY, body, vel, 0)
        x, y, z = (float(v) for v in data.xpos[body])
        bodies[asset_id] = BodyState(
            position=(x, y, z),
            half_height=obj.half_extents[2],
            linear_speed=float(np.linalg.norm(vel[3:])),
            angular_speed=float(np.linalg.norm(vel[:3])),
        )
    boxes = {node.asset_id: _box_now(world, data, node.asset_id, node.bbox) for node in graph.nodes}
    joints = {
        key: float(data.qpos[world.model.joint(part.mj_joint).qposadr[0]])
        for key, part in world.parts.items()
    }
    return Observation(bodies=bodies, boxes=boxes, joints=joints)


def _box_now(world: World, data: mujoco.MjData, asset_id: str, box: Box) -> Box:
    """The node's box where it is now: a free node's graph box moved with its body."""
    obj = world.free_objects.get(asset_id)
    if obj is None:
        return box
    shift = data.xpos[world.model.body(obj.body).id] - np.array(box.centre)
    lo, hi = np.array(box.min) + shift, np.array(box.max) + shift
    return Box(
        min=(float(lo[0]), float(lo[1]), float(lo[2])),
        max=(float(hi[0]), float(hi[1]), float(hi[2])),
    )
