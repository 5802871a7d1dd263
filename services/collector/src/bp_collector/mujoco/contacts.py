"""Contacts from MuJoCo's contact data: collisions, and the force on each finger.

A collision is a contact between a robot geom and a geom that is neither the robot's nor the
task's grasp target (nor the floor under a mobile base). It is counted once when a robot/other
geom pair starts touching; its normal force is tracked for the peak.

`FingerForces` sums, per finger, the full contact force (normal and friction) that everything
outside the finger exerts on it, in the world frame: what a fingertip force sensor would read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import mujoco
import numpy as np

from bp_collector.mujoco.world import World


@dataclass(frozen=True)
class ContactRecord:
    """Every contact at one instant, as parallel arrays (geom ids, entity ids, normal force)."""

    geom_a: np.ndarray
    geom_b: np.ndarray
    force_n: np.ndarray
    is_collision: np.ndarray


@dataclass
class CollisionStats:
    count: int = 0
    peak_force_n: float = 0.0
    frames_in_collision: int = 0
    pairs: dict[str, int] = field(default_factory=dict)


class ContactMonitor:
    """Follows contacts step by step and keeps the collision counts and peak force."""

    def __init__(self, world: World, exempt_bodies: Iterable[int]) -> None:
        model = world.model
        self.model = model
        self.world = world
        self.robot = world.robot_geoms
        exempt = set(exempt_bodies)
        floor_exempt = bool(world.robot.floor_bodies)
        self.exempt = np.array(
            [
                model.geom_bodyid[g] in exempt or (floor_exempt and model.geom(g).name == "floor")
                for g in range(model.ngeom)
            ],
            dtype=bool,
        )
        self.mobile = np.zeros(model.ngeom, dtype=bool)
        for name in world.robot.floor_bodies:
            self.mobile[model.geom_bodyid == model.body(name).id] = True
        self.stats = CollisionStats()
        self._active: set[tuple[int, int]] = set()
        self._force = np.zeros(6)
        self.frame_peak = 0.0
        self.frame_collisions = 0

    def start_frame(self) -> None:
        self.frame_peak = 0.0
        self.frame_collisions = 0

    def _collision_mask(self, geoms: np.ndarray) -> np.ndarray:
        a, b = geoms[:, 0], geoms[:, 1]
        ra, rb = self.robot[a], self.robot[b]
        other_a = self.exempt[a] | (self.mobile[b] & (self.world.geom_entity[a] == 1))
        other_b = self.exempt[b] | (self.mobile[a] & (self.world.geom_entity[b] == 1))
        mask: np.ndarray = (ra & ~rb & ~other_b) | (rb & ~ra & ~other_a)
        return mask

    def after_step(self, data: mujoco.MjData) -> None:
        n = data.ncon
        if n == 0:
            self._active = set()
            return
        geoms = data.contact.geom[:n]
        hits = np.flatnonzero(self._collision_mask(geoms))
        active: set[tuple[int, int]] = set()
        for i in hits:
            pair = (int(geoms[i, 0]), int(geoms[i, 1]))
            active.add(pair)
            mujoco.mj_contactForce(self.model, data, int(i), self._force)
            force = abs(float(self._force[0]))
            self.frame_peak = max(self.frame_peak, force)
            self.stats.peak_force_n = max(self.stats.peak_force_n, force)
            if pair not in self._active:
                self.stats.count += 1
                self.frame_collisions += 1
                key = "|".join(sorted(self._pair_names(pair)))
                self.stats.pairs[key] = self.stats.pairs.get(key, 0) + 1
        self._active = active

    def end_frame(self) -> None:
        if self.frame_peak > 0.0:
            self.stats.frames_in_collision += 1

    def _pair_names(self, pair: tuple[int, int]) -> tuple[str, str]:
        names = []
        for g in pair:
            geom = self.model.geom(g)
            names.append(geom.name or self.model.body(self.model.geom_bodyid[g]).name)
        return names[0], names[1]

    def snapshot(self, data: mujoco.MjData) -> ContactRecord:
        n = data.ncon
        geoms = np.array(data.contact.geom[:n], dtype=np.int32).reshape(n, 2)
        forces = np.zeros(n, dtype=np.float32)
        for i in range(n):
            mujoco.mj_contactForce(self.model, data, i, self._force)
            forces[i] = abs(self._force[0])
        return ContactRecord(
            geom_a=geoms[:, 0],
            geom_b=geoms[:, 1],
            force_n=forces,
            is_collision=self._collision_mask(geoms),
        )


class FingerForces:
    """The world-frame contact force on each finger (its body and the bodies below it)."""

    def __init__(self, model: mujoco.MjModel, finger_joints: Iterable[str]) -> None:
        self.model = model
        parents = model.body_parentid
        self.finger_of = np.full(model.ngeom, -1, dtype=int)
        self.count = 0
        for index, joint in enumerate(finger_joints):
            top = int(model.jnt_bodyid[model.joint(joint).id])
            for geom in range(model.ngeom):
                body = int(model.geom_bodyid[geom])
                while body not in (top, 0):
                    body = int(parents[body])
                if body == top:
                    self.finger_of[geom] = index
            self.count = index + 1
        self._force = np.zeros(6)

    def measure(self, data: mujoco.MjData) -> np.ndarray:
        """(fingers, 3) newtons. MuJoCo's contact force is the one geom1 exerts on geom2,
        along the contact frame's rows (normal first); a finger that is geom1 feels its
        opposite. A contact between two parts of one finger cancels out."""
        forces = np.zeros((self.count, 3))
        for i in range(data.ncon):
            contact = data.contact[i]
            a, b = self.finger_of[contact.geom1], self.finger_of[contact.geom2]
            if a < 0 and b < 0:
                continue
            mujoco.mj_contactForce(self.model, data, i, self._force)
            world = contact.frame.reshape(3, 3).T @ self._force[:3]
            if b >= 0:
                forces[b] += world
            if a >= 0:
                forces[a] -= world
        return forces
