"""Each robot as a MuJoCo spec, assembled from its installed model files with its own hand.

One recipe per robot names the files, the arm joints, the hand's driving joint and the joints
that follow it, the two fingertip bodies a grasp pinches between, and the gains of the position
actuators the collector drives. Assembly replaces the packages' own actuators (torque motors
meant for their controllers) with those, couples each hand's joints to one driving joint, and
adds an end-effector site between the fingertips whose z axis points out of the hand and whose
y axis is the closing direction, the same convention for every robot. Nothing is copied: the
MJCF, URDF and meshes are read from the installed packages (`packages`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import fast_simplification
import mujoco
import numpy as np

from bp_robot_models.packages import (
    example_robot_data_robots,
    gymnasium_robotics_assets,
    robosuite_assets,
)

PREFIX = "robot/"
ROBOT_CONTYPE = 2
ROBOT_CONAFFINITY = 1
EE_SITE = "ee"
VISUAL_TRIANGLES = 24_000
"""How many triangles a robot's visual meshes keep: the packages' CAD-derived meshes (135,000
for the Panda) cost CPU rendering ten times what a policy can tell apart at 640x480."""


class UnknownRobot(ValueError):
    """A robot name there is no model for."""


@dataclass(frozen=True)
class Follower:
    """A hand joint driven with the hand: q = offset + ratio * q_driver."""

    joint: str
    ratio: float
    offset: float = 0.0


@dataclass(frozen=True)
class Recipe:
    """How to assemble one robot from its package files, in the names of those files."""

    load: Callable[[], mujoco.MjSpec]
    """The robot with its hand attached, its root body's frame on the mounting plane."""
    base: str
    """The root body."""
    arm_joints: tuple[str, ...]
    home: tuple[float, ...]
    kp: tuple[float, ...]
    torque: tuple[float, ...]
    hand_body: str
    approach: tuple[float, float, float]
    """The direction the hand points, in the hand body's frame."""
    driver: str
    """The hand joint the gripper actuator drives."""
    driver_open: float
    driver_closed: float
    followers: tuple[Follower, ...]
    pinch: tuple[str, str]
    """Two opposing fingertip geoms (pads): the grasp closes between their centres."""
    grip_kp: float
    grip_force: float
    grip_kv: float | None = None
    """Velocity gain of the gripper actuator; None for kp / 20."""
    frozen_joints: tuple[str, ...] = ()
    """Joints removed, so their bodies hold the pose they have at zero (a humanoid's legs)."""
    floor_words: tuple[str, ...] = ()
    """Name fragments of bodies that stand on the floor (a mobile base and its wheels, feet)."""
    hold_width: float | None = None
    """For fingers that curl: the end-effector site is where the pinch closes on an object this
    wide (m), not where the fingertips meet with nothing between them."""


@dataclass(frozen=True)
class RobotHandle:
    """Names, within a compiled model, of what the collector drives and records."""

    name: str
    base_body: str
    arm_joints: tuple[str, ...]
    finger_joints: tuple[str, ...]
    arm_actuators: tuple[str, ...]
    gripper_actuator: str
    ee_site: str
    hand_body: str
    home_qpos: tuple[float, ...]
    gripper_open_ctrl: float
    gripper_closed_ctrl: float
    pinch_geoms: tuple[str, str]
    tip_depth: float = 0.0
    """How far (m) the hand's fingers reach past the end-effector site along its z axis."""
    finger_coupling: tuple[tuple[float, float], ...] = field(default=())
    """(offset, ratio) of each finger joint on the driving one (the first is (0, 1))."""
    floor_bodies: tuple[str, ...] = field(default=())
    """Bodies that stand on the floor, whose floor contact is no collision."""

    def gripper_ctrl(self, opening: float) -> float:
        """The driving joint's target for an opening fraction (1 fully open, 0 closed)."""
        return self.gripper_closed_ctrl + opening * (
            self.gripper_open_ctrl - self.gripper_closed_ctrl
        )

    def finger_qpos(self, opening: float) -> tuple[float, ...]:
        """Every finger joint's position, in `finger_joints` order, at an opening fraction."""
        driver = self.gripper_ctrl(opening)
        return tuple(offset + ratio * driver for offset, ratio in self.finger_coupling)


def _absolute_files(spec: mujoco.MjSpec, folder: Path) -> None:
    """Make every mesh and texture file absolute, so the spec can be attached anywhere."""
    meshdir = folder / (spec.compiler.meshdir or "")
    texdir = folder / (spec.compiler.texturedir or "")
    for mesh in spec.meshes:
        if mesh.file and not Path(mesh.file).is_absolute():
            mesh.file = str((meshdir / mesh.file).resolve())
    for texture in spec.textures:
        if texture.file and not Path(texture.file).is_absolute():
            texture.file = str((texdir / texture.file).resolve())


def _from_file(path: Path) -> mujoco.MjSpec:
    """An MJCF file as a spec; a mesh name declared twice keeps its first file.

    robosuite's Robotiq 2F-85 declares its base mesh twice (collision, then a finer visual);
    robosuite's own loader tolerates that and MuJoCo does not.
    """
    seen: set[str] = set()

    def first_only(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in seen:
            return ""
        seen.add(name)
        return match.group(0)

    text = re.sub(r'<mesh\s+name="([^"]+)"[^>]*/>', first_only, path.read_text())
    spec = mujoco.MjSpec.from_string(text)
    _absolute_files(spec, path.parent)
    return spec


HAND = "hand/"
"""Prefix of an attached hand's names, apart from the arm's."""


def _attach_hand(arm: mujoco.MjSpec, mount: str, hand_file: Path, quat: Sequence[float]) -> None:
    hand = _from_file(hand_file)
    # robosuite merges its gripper files into robot files that say angle="radian", so their
    # angles are radians even where the gripper file leaves MuJoCo's default (degrees).
    hand.compiler.degree = False
    root = hand.worldbody.first_body()
    frame = arm.body(mount).add_frame(quat=list(quat))
    frame.attach_body(root, HAND, "")


def _panda() -> mujoco.MjSpec:
    assets = robosuite_assets()
    arm = _from_file(assets / "robots" / "panda" / "robot.xml")
    _attach_hand(arm, "right_hand", assets / "grippers" / "panda_gripper.xml", (1, 0, 0, 0))
    return arm


def _ur5e() -> mujoco.MjSpec:
    assets = robosuite_assets()
    arm = _from_file(assets / "robots" / "ur5e" / "robot.xml")
    _attach_hand(arm, "right_hand", assets / "grippers" / "robotiq_gripper_85.xml", (1, 0, 0, 0))
    return arm


def _ur10() -> mujoco.MjSpec:
    """example-robot-data's UR10 URDF (collision meshes; its visual meshes are COLLADA, which
    MuJoCo does not read) with robosuite's Robotiq 2F-85 on the tool flange."""
    folder = example_robot_data_robots() / "ur_description"
    text = (folder / "urdf" / "ur10_robot.urdf").read_text()
    text = re.sub(r"<visual>.*?</visual>", "", text, flags=re.S)
    text = text.replace("package://example-robot-data/robots/ur_description/", f"{folder}/")
    compiler = (
        '<mujoco><compiler strippath="false" discardvisual="false" fusestatic="false" '
        'balanceinertia="true"/></mujoco>'
    )
    text = re.sub(r"(<robot[^>]*>)", r"\1" + compiler, text, count=1)
    arm = mujoco.MjSpec.from_string(text)
    # URDF links carry collision geometry only here: render it too, in UR's grey and blue.
    for geom in arm.geoms:
        geom.rgba = [0.62, 0.66, 0.72, 1.0]
    flange = arm.body("ee_link") if _has_body(arm, "ee_link") else arm.body("wrist_3_link")
    assets = robosuite_assets()
    # ee_link's x axis points out of the flange; the gripper's base points along its own z.
    hand = _from_file(assets / "grippers" / "robotiq_gripper_85.xml")
    hand.compiler.degree = False
    frame = flange.add_frame(quat=[math.cos(math.pi / 4), 0.0, math.sin(math.pi / 4), 0.0])
    frame.attach_body(hand.worldbody.first_body(), HAND, "")
    return arm


def _has_body(spec: mujoco.MjSpec, name: str) -> bool:
    return any(body.name == name for body in spec.bodies)


def _fetch() -> mujoco.MjSpec:
    """gymnasium-robotics' Fetch, its mocap weld removed and its torso raised 0.35 m."""
    assets = gymnasium_robotics_assets()
    folder = assets / "fetch"
    wrapper = (
        f'<mujoco><compiler angle="radian" meshdir="{assets / "stls" / "fetch"}" '
        f'texturedir="{assets / "textures"}"/>'
        f'<include file="{folder / "shared.xml"}"/>'
        f'<worldbody><include file="{folder / "robot.xml"}"/></worldbody></mujoco>'
    )
    fetch = mujoco.MjSpec.from_string(wrapper)
    _absolute_files(fetch, folder)
    fetch.delete(fetch.body("robot0:mocap"))
    for eq in list(fetch.equalities):
        fetch.delete(eq)
    root = fetch.body("robot0:base_link")
    root.pos = [0, 0, 0]
    for joint in list(root.joints):
        fetch.delete(joint)
    # The scripted expert moves the arm only: the torso is held 0.35 m up its lift joint.
    torso_joint = fetch.joint("robot0:torso_lift_joint")
    torso = torso_joint.parent
    fetch.delete(torso_joint)
    torso.pos = [torso.pos[0], torso.pos[1], torso.pos[2] + FETCH_TORSO_LIFT]
    return fetch


FETCH_TORSO_LIFT = 0.35


def _gr1() -> mujoco.MjSpec:
    """robosuite's GR1 upper body with its Fourier right hand, on a fixed base at the pelvis."""
    assets = robosuite_assets()
    body = _from_file(assets / "robots" / "gr1" / "robot.xml")
    _attach_hand(
        body, "right_eef", assets / "grippers" / "fourier_right_hand.xml", (1.0, 0.0, 0.0, 0.0)
    )
    # The upper body alone, on a fixed base: the legs go, the pelvis is the mounting frame.
    body.delete(body.body("lower_body"))
    return body


def _gr1_joints(side: str) -> tuple[str, ...]:
    return tuple(
        f"{side}_{n}"
        for n in (
            "shoulder_pitch",
            "shoulder_roll",
            "shoulder_yaw",
            "elbow_pitch",
            "wrist_yaw",
            "wrist_roll",
            "wrist_pitch",
        )
    )


_RECIPES: dict[str, Recipe] = {
    "franka_panda": Recipe(
        load=_panda,
        base="base",
        arm_joints=tuple(f"joint{i}" for i in range(1, 8)),
        home=(0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785),
        kp=(4500.0, 4500.0, 3500.0, 3500.0, 2000.0, 2000.0, 2000.0),
        torque=(87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0),
        hand_body=HAND + "right_gripper",
        approach=(0.0, 0.0, 1.0),
        driver=HAND + "finger_joint1",
        driver_open=0.04,
        driver_closed=0.0,
        followers=(Follower(HAND + "finger_joint2", -1.0),),
        pinch=(HAND + "finger1_pad_collision", HAND + "finger2_pad_collision"),
        grip_kp=2000.0,
        grip_force=70.0,
    ),
    "ur5e": Recipe(
        load=_ur5e,
        base="base",
        arm_joints=(
            "shoulder_pan_joint",
            "shoulder_lift_joint",
            "elbow_joint",
            "wrist_1_joint",
            "wrist_2_joint",
            "wrist_3_joint",
        ),
        home=(0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0),
        kp=(5000.0, 5000.0, 3500.0, 1500.0, 1500.0, 1500.0),
        torque=(150.0, 150.0, 150.0, 28.0, 28.0, 28.0),
        hand_body=HAND + "robotiq_85_adapter_link",
        approach=(0.0, 0.0, 1.0),
        driver=HAND + "finger_joint",
        # Commands stay 0.01 rad inside the knuckles' 0 to 0.8 rad: the limits are soft, and
        # a linkage driven onto them overshoots them.
        driver_open=0.01,
        driver_closed=0.79,
        followers=(
            Follower(HAND + "right_outer_knuckle_joint", 1.0),
            Follower(HAND + "left_inner_knuckle_joint", 1.0),
            Follower(HAND + "right_inner_knuckle_joint", 1.0),
            Follower(HAND + "left_inner_finger_joint", -1.0),
            Follower(HAND + "right_inner_finger_joint", -1.0),
        ),
        pinch=(HAND + "left_fingerpad_collision", HAND + "right_fingerpad_collision"),
        grip_kp=60.0,
        grip_force=8.0,
    ),
    "ur10": Recipe(
        load=_ur10,
        base="base_link",
        arm_joints=(
            "shoulder_pan_joint",
            "shoulder_lift_joint",
            "elbow_joint",
            "wrist_1_joint",
            "wrist_2_joint",
            "wrist_3_joint",
        ),
        home=(0.0, -1.5708, 1.5708, -1.5708, -1.5708, 0.0),
        kp=(9000.0, 9000.0, 6000.0, 2000.0, 2000.0, 2000.0),
        torque=(330.0, 330.0, 150.0, 56.0, 56.0, 56.0),
        hand_body=HAND + "robotiq_85_adapter_link",
        approach=(0.0, 0.0, 1.0),
        driver=HAND + "finger_joint",
        # Commands stay 0.01 rad inside the knuckles' 0 to 0.8 rad: the limits are soft, and
        # a linkage driven onto them overshoots them.
        driver_open=0.01,
        driver_closed=0.79,
        followers=(
            Follower(HAND + "right_outer_knuckle_joint", 1.0),
            Follower(HAND + "left_inner_knuckle_joint", 1.0),
            Follower(HAND + "right_inner_knuckle_joint", 1.0),
            Follower(HAND + "left_inner_finger_joint", -1.0),
            Follower(HAND + "right_inner_finger_joint", -1.0),
        ),
        pinch=(HAND + "left_fingerpad_collision", HAND + "right_fingerpad_collision"),
        grip_kp=60.0,
        grip_force=8.0,
    ),
    "fetch": Recipe(
        load=_fetch,
        base="robot0:base_link",
        arm_joints=tuple(
            f"robot0:{j}"
            for j in (
                "shoulder_pan_joint",
                "shoulder_lift_joint",
                "upperarm_roll_joint",
                "elbow_flex_joint",
                "forearm_roll_joint",
                "wrist_flex_joint",
                "wrist_roll_joint",
            )
        ),
        home=(0.0, -0.926, 0.0, 1.388, 0.0, 1.108, 0.0),
        kp=(3000.0, 3000.0, 1500.0, 1500.0, 800.0, 800.0, 500.0),
        torque=(33.82, 131.76, 76.94, 66.18, 29.35, 25.7, 7.36),
        hand_body="robot0:gripper_link",
        approach=(1.0, 0.0, 0.0),
        driver="robot0:r_gripper_finger_joint",
        driver_open=0.05,
        driver_closed=0.0,
        followers=(Follower("robot0:l_gripper_finger_joint", 1.0),),
        pinch=("robot0:r_gripper_finger_link", "robot0:l_gripper_finger_link"),
        grip_kp=30000.0,
        grip_force=500.0,
        floor_words=("base_link", "wheel"),
    ),
    "gr1": Recipe(
        load=_gr1,
        base="base",
        # The waist's pitch leans the upper body over the work, as a standing person does.
        arm_joints=("torso_waist_pitch", *_gr1_joints("r")),
        home=(0.0, -0.4, -0.2, 0.0, -1.3, 0.0, 0.0, 0.0),
        kp=(3000.0, 600.0, 600.0, 400.0, 400.0, 150.0, 150.0, 150.0),
        torque=(200.0, 60.0, 60.0, 40.0, 40.0, 12.0, 12.0, 12.0),
        hand_body=HAND + "right_hand",
        # The Fourier hand's fingers point along -x and -y of its body frame (its z runs along
        # the row of fingers, index to little finger): the hand comes in fingers first.
        approach=(-0.761, -0.649, 0.0),
        # The sample scenes' objects are 5 to 7 cm across where they are held.
        hold_width=0.055,
        driver=HAND + "R_index_proximal_joint",
        driver_open=0.0,
        driver_closed=1.2,
        followers=(
            Follower(HAND + "R_index_intermediate_joint", 1.1),
            Follower(HAND + "R_middle_proximal_joint", 1.0),
            Follower(HAND + "R_middle_intermediate_joint", 1.1),
            Follower(HAND + "R_ring_proximal_joint", 1.0),
            Follower(HAND + "R_ring_intermediate_joint", 1.1),
            Follower(HAND + "R_pinky_proximal_joint", 1.0),
            Follower(HAND + "R_pinky_intermediate_joint", 1.1),
            Follower(HAND + "R_thumb_proximal_yaw_joint", 0.0, 1.4),
            Follower(HAND + "R_thumb_proximal_pitch_joint", 0.9),
            Follower(HAND + "R_thumb_distal_joint", 0.9),
        ),
        pinch=(HAND + "R_thumb_distal_link_col", HAND + "R_index_intermediate_link_col"),
        grip_kp=150.0,
        grip_force=20.0,
        frozen_joints=(
            "torso_waist_yaw",
            "torso_waist_roll",
            "head_yaw",
            "head_roll",
            "head_pitch",
            *_gr1_joints("l"),
        ),
    ),
}

ROBOT_IDS: tuple[str, ...] = tuple(_RECIPES)
"""Every robot there is a model for, in the default order."""


def recipe(name: str) -> Recipe:
    found = _RECIPES.get(name)
    if found is None:
        raise UnknownRobot(f"no model for robot {name!r}; known robots: {', '.join(ROBOT_IDS)}")
    return found


def _strip_controls(spec: mujoco.MjSpec) -> None:
    """Drop what the packages add for their own controllers and viewers (sites would render)."""
    for collection in (
        spec.sites,
        spec.actuators,
        spec.tendons,
        spec.equalities,
        spec.sensors,
        spec.keys,
        spec.cameras,
        spec.lights,
    ):
        for item in list(collection):
            spec.delete(item)


def _freeze_legs_and_torso(spec: mujoco.MjSpec, frozen: Sequence[str], free: set[str]) -> None:
    frozen_set = set(frozen)
    for joint in list(spec.joints):
        if joint.name in frozen_set or (frozen and joint.name not in free):
            spec.delete(joint)


def _lighten_visual_meshes(spec: mujoco.MjSpec, budget: int = VISUAL_TRIANGLES) -> None:
    """Decimate the meshes only visual geoms use, sharing `budget` triangles by their size.

    The simplified triangles replace the file, in the mesh's own frame (MuJoCo re-centres a
    mesh on compiling, so the compiled vertices are moved back by the offset it applied).
    Collision meshes are untouched: contacts see the package's geometry.
    """
    visual_meshes = {
        g.meshname
        for g in spec.geoms
        if g.type == mujoco.mjtGeom.mjGEOM_MESH and not g.contype and not g.conaffinity
    }
    colliding = {
        g.meshname
        for g in spec.geoms
        if g.type == mujoco.mjtGeom.mjGEOM_MESH and (g.contype or g.conaffinity)
    }
    only_visual = visual_meshes - colliding
    if not only_visual:
        return
    model = spec.compile()
    total = sum(int(model.mesh_facenum[model.mesh(n).id]) for n in only_visual)
    if total <= budget:
        return
    keep = budget / total
    for mesh in list(spec.meshes):
        if mesh.name not in only_visual:
            continue
        i = model.mesh(mesh.name).id
        v0, nv = int(model.mesh_vertadr[i]), int(model.mesh_vertnum[i])
        f0, nf = int(model.mesh_faceadr[i]), int(model.mesh_facenum[i])
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, model.mesh_quat[i])
        points = model.mesh_vert[v0 : v0 + nv] @ rot.reshape(3, 3).T + model.mesh_pos[i]
        faces = model.mesh_face[f0 : f0 + nf]
        # Compiled meshes repeat a vertex wherever its normal or texture coordinate changes;
        # decimation needs the surface connected, so equal positions are welded first.
        points, weld = np.unique(np.round(points, 7), axis=0, return_inverse=True)
        faces = weld.reshape(-1)[faces]
        faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2])]
        faces = faces[faces[:, 0] != faces[:, 2]]
        target = max(64, int(nf * keep))
        if target < len(faces):
            points, faces = fast_simplification.simplify(
                points.astype(np.float64), faces.astype(np.int32), target_count=target
            )
        name = mesh.name
        spec.delete(mesh)
        spec.add_mesh(
            name=name,
            uservert=np.asarray(points, dtype=np.float32).ravel().tolist(),
            userface=np.asarray(faces, dtype=np.int32).ravel().tolist(),
        )


HIDDEN_GROUP = 3
"""Geom group cameras do not render (MuJoCo shows groups 0 to 2 by default)."""


def _collision_flags(spec: mujoco.MjSpec) -> None:
    """Collision geoms collide with the scene only, never with the robot itself; where the model
    has visual geoms, its collision geoms are not rendered twice."""
    has_visuals = any(not g.contype and not g.conaffinity for g in spec.geoms)
    for geom in spec.geoms:
        if geom.contype or geom.conaffinity:
            geom.contype = ROBOT_CONTYPE
            geom.conaffinity = ROBOT_CONAFFINITY
            if has_visuals:
                geom.group = HIDDEN_GROUP


def _drive(spec: mujoco.MjSpec, r: Recipe) -> None:
    for joint_name, kp, torque in zip(r.arm_joints, r.kp, r.torque, strict=True):
        joint = spec.joint(joint_name)
        joint.damping = np.array([max(float(joint.damping[0]), 2.0), 0.0, 0.0])
        joint.armature = max(float(joint.armature), 0.1)
        if not joint.limited or joint.range[0] >= joint.range[1]:
            joint.range = [-math.pi, math.pi]
        joint.limited = 1
        act = spec.add_actuator(
            name=f"act/{joint_name}", target=joint_name, trntype=mujoco.mjtTrn.mjTRN_JOINT
        )
        act.set_to_position(kp=kp, kv=kp / 10)
        act.ctrlrange = list(joint.range)
        act.ctrllimited = 1
        act.forcerange = [-torque * 4, torque * 4]
        act.forcelimited = 1
    for follower in r.followers:
        coupling = spec.add_equality(
            type=mujoco.mjtEq.mjEQ_JOINT,
            name1=follower.joint,
            name2=r.driver,
            data=[follower.offset, follower.ratio, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        )
        # Stiff: the fingers of a linkage hand move as one, as the real mechanism makes them.
        coupling.solref = [0.004, 1.0]
        coupling.solimp = [0.95, 0.99, 0.001, 0.5, 2.0]
        # Only the driving joint has a travel of its own; a follower's limits would fight the
        # coupling whenever the hand moves fast (soft constraints give a little either way).
        spec.joint(follower.joint).limited = 0

    lo, hi = sorted((r.driver_open, r.driver_closed))
    driver = spec.joint(r.driver)
    if not driver.limited or driver.range[0] >= driver.range[1]:
        driver.range = [lo, hi]
        driver.limited = 1
    act = spec.add_actuator(name="act/gripper", target=r.driver, trntype=mujoco.mjtTrn.mjTRN_JOINT)
    act.set_to_position(kp=r.grip_kp, kv=r.grip_kv if r.grip_kv is not None else r.grip_kp / 20)
    act.ctrlrange = [lo, hi]
    act.ctrllimited = 1
    act.forcerange = [-r.grip_force, r.grip_force]
    act.forcelimited = 1


def _pinch_points(
    model: mujoco.MjModel, data: mujoco.MjData, r: Recipe, driver_q: float
) -> tuple[np.ndarray, np.ndarray]:
    data.qpos[model.joint(r.driver).qposadr[0]] = driver_q
    for follower in r.followers:
        data.qpos[model.joint(follower.joint).qposadr[0]] = (
            follower.offset + follower.ratio * driver_q
        )
    mujoco.mj_kinematics(model, data)
    a, b = (data.geom_xpos[model.geom(n).id].copy() for n in r.pinch)
    return a, b


def _holding(model: mujoco.MjModel, data: mujoco.MjData, r: Recipe) -> float:
    """The driving joint's value where the pinch is `hold_width` wide (closed without one)."""
    if r.hold_width is None:
        return r.driver_closed
    lo, hi = r.driver_open, r.driver_closed
    for _ in range(40):
        mid = (lo + hi) / 2
        a, b = _pinch_points(model, data, r, mid)
        if float(np.linalg.norm(a - b)) > r.hold_width:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _ee_site(spec: mujoco.MjSpec, r: Recipe) -> None:
    """Where the fingertips meet as the hand closes; z out of the hand, y the closing direction.

    For a parallel jaw that is midway between its pads at any opening. A hand's fingers curl,
    so their midpoint moves as they close: the site is where they close on an object of the
    recipe's `hold_width`, or where they meet when it has none.
    """
    model = spec.compile()
    data = mujoco.MjData(model)
    for joint_name, q in zip(r.arm_joints, r.home, strict=True):
        data.qpos[model.joint(joint_name).qposadr[0]] = q
    a_open, b_open = _pinch_points(model, data, r, r.driver_open)
    a_shut, b_shut = _pinch_points(model, data, r, _holding(model, data, r))
    hand = model.body(r.hand_body).id
    hand_pos, hand_rot = data.xpos[hand], data.xmat[hand].reshape(3, 3)
    mid = hand_rot.T @ ((a_shut + b_shut) / 2 - hand_pos)
    closing = hand_rot.T @ (b_open - a_open)
    z = np.asarray(r.approach, dtype=float)
    z /= np.linalg.norm(z)
    y = closing - np.dot(closing, z) * z
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.column_stack([x, y, z]).ravel())
    spec.body(r.hand_body).add_site(
        name=EE_SITE, pos=mid.tolist(), quat=quat.tolist(), size=[0.005, 0, 0], group=5
    )


@cache
def _assembled_xml(name: str) -> str:
    """The robot alone, assembled, as MJCF text: assembly reads meshes once per process."""
    r = recipe(name)
    spec = r.load()
    _strip_controls(spec)
    if r.frozen_joints:
        keep = {*r.arm_joints, r.driver, *(f.joint for f in r.followers)}
        _freeze_legs_and_torso(spec, r.frozen_joints, keep)
    _lighten_visual_meshes(spec)
    _collision_flags(spec)
    for body in spec.bodies:
        body.gravcomp = 1.0
    _drive(spec, r)
    _ee_site(spec, r)
    return str(spec.to_xml())


@cache
def tip_depth(name: str) -> float:
    """How far the hand's collision geoms reach past the end-effector site, at any opening.

    Curling fingers reach deepest part-way through their travel, where they line up with the
    approach, not at either end of it: the GR1 hand's middle finger met the table there."""
    r = recipe(name)
    model = robot_spec(name).compile()
    data = mujoco.MjData(model)
    site = model.site(EE_SITE).id
    hand = model.body(r.hand_body).id
    in_hand = [
        g
        for g in range(model.ngeom)
        if (model.geom_contype[g] or model.geom_conaffinity[g])
        and _below(model, int(model.geom_bodyid[g]), hand)
    ]
    deepest = 0.0
    for driver_q in np.linspace(r.driver_open, r.driver_closed, 9):
        data.qpos[model.joint(r.driver).qposadr[0]] = driver_q
        for follower in r.followers:
            q = follower.offset + follower.ratio * driver_q
            data.qpos[model.joint(follower.joint).qposadr[0]] = q
        mujoco.mj_kinematics(model, data)
        axis = data.site_xmat[site].reshape(3, 3)[:, 2]
        for g in in_hand:
            centre, half = model.geom_aabb[g][:3], model.geom_aabb[g][3:]
            rot = data.geom_xmat[g].reshape(3, 3)
            reach = float((data.geom_xpos[g] + rot @ centre - data.site_xpos[site]) @ axis)
            reach += float(np.abs(rot.T @ axis) @ half)
            deepest = max(deepest, reach)
    return deepest


def _below(model: mujoco.MjModel, body: int, ancestor: int) -> bool:
    while body > 0:
        if body == ancestor:
            return True
        body = int(model.body_parentid[body])
    return False


def robot_spec(name: str) -> mujoco.MjSpec:
    """A fresh spec of the robot alone, its base frame at the world origin."""
    spec = mujoco.MjSpec.from_string(_assembled_xml(name))
    spec.nuser_geom = -1  # robosuite's files declare user data nothing reads
    return spec


def add_robot(
    spec: mujoco.MjSpec, name: str, base_pos: Sequence[float], base_quat: Sequence[float]
) -> RobotHandle:
    """Add the named robot to `spec` with its base frame at the given world pose."""
    r = recipe(name)
    robot = robot_spec(name)
    frame = spec.worldbody.add_frame(pos=list(base_pos), quat=list(base_quat))
    frame.attach_body(robot.body(r.base), PREFIX, "")
    on_floor = tuple(
        b.name
        for b in spec.bodies
        if b.name.startswith(PREFIX) and any(w in b.name for w in r.floor_words)
    )
    return RobotHandle(
        name=name,
        base_body=PREFIX + r.base,
        arm_joints=tuple(PREFIX + j for j in r.arm_joints),
        finger_joints=(PREFIX + r.driver, *(PREFIX + f.joint for f in r.followers)),
        arm_actuators=tuple(f"{PREFIX}act/{j}" for j in r.arm_joints),
        gripper_actuator=f"{PREFIX}act/gripper",
        ee_site=PREFIX + EE_SITE,
        hand_body=PREFIX + r.hand_body,
        home_qpos=r.home,
        gripper_open_ctrl=r.driver_open,
        gripper_closed_ctrl=r.driver_closed,
        pinch_geoms=(PREFIX + r.pinch[0], PREFIX + r.pinch[1]),
        tip_depth=tip_depth(name),
        finger_coupling=((0.0, 1.0), *((f.offset, f.ratio) for f in r.followers)),
        floor_bodies=on_floor,
    )
