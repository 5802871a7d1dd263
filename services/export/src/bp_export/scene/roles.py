"""Infer an object's simulation role and affordances from its geometry, physics and joints.

Used when the scene has no manifest, or the manifest leaves an object's role unset:

- an object with a revolute or prismatic joint (or that is the moving part of one) is
  `articulated_furniture` (`articulated_appliance` for appliance classes) and `Openable`;
- a free rigid body small and light enough for a hand-sized gripper is a `manipulable_object`
  and `Graspable` (sizes are measured along the object's own axes, so a tilted bottle is judged
  by its real diameter); a larger free body is `interactive` and `Pushable`;
- a static floor, wall or ground is `scene_shell`; a static object larger than a room's worth
  (or a large flat sheet) is `background`; any other static object is `static`.
Container classes (bowl, cup, crate...) are also `Containable`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bp_scene_contract import SimRole

from bp_export.scene.model import Joint, SceneObject

GRASP_MAX_THICKNESS_M = 0.12
"""An object is graspable when its thinnest dimension fits a hand-sized gripper..."""
GRASP_MAX_LENGTH_M = 0.40
"""...its longest dimension is at most this..."""
GRASP_MAX_MASS_KG = 5.0
"""...and it is no heavier than this (when its mass is known)."""
BACKGROUND_MIN_EXTENT_M = 3.0
FLAT_THICKNESS_M = 0.01

_APPLIANCES = frozenset(
    {
        "microwave",
        "oven",
        "fridge",
        "refrigerator",
        "dishwasher",
        "washing_machine",
        "washer",
        "dryer",
        "toaster",
        "freezer",
        "stove",
    }
)
_TURNABLE = frozenset({"knob", "dial", "valve", "faucet", "tap", "wheel"})
_CONTAINERS = frozenset(
    {
        "bowl",
        "cup",
        "mug",
        "crate",
        "box",
        "bin",
        "basket",
        "pot",
        "pan",
        "jar",
        "bucket",
        "container",
        "drawer",
        "sink",
        "tray",
        "vase",
        "glass",
    }
)
_SHELL = frozenset({"floor", "wall", "ceiling", "ground", "ground_plane", "groundplane", "room"})


@dataclass(frozen=True)
class RoleInference:
    """A role, its affordances, and the reason in words (kept in reports)."""

    sim_role: SimRole
    affordances: tuple[str, ...]
    reason: str


def infer_role(obj: SceneObject, semantic_class: str, joints: Sequence[Joint]) -> RoleInference:
    """The role of one object; `joints` are the joints it owns."""
    label = semantic_class.lower().replace(" ", "_")
    container = ("Containable",) if _words(label) & _CONTAINERS else ()
    moving_joints = [j for j in joints if j.type in ("revolute", "prismatic")]
    if moving_joints or obj.motion == "articulated_part":
        role: SimRole = (
            "articulated_appliance" if _words(label) & _APPLIANCES else ("articulated_furniture")
        )
        turnable = ("Turnable",) if _words(label) & _TURNABLE else ()
        return RoleInference(
            role, ("Openable", *turnable, *container), "has a revolute or prismatic joint"
        )
    dims = sorted(obj.oriented_size)
    mass = obj.physics.mass_kg
    if obj.is_free_body:
        light_enough = mass is None or mass <= GRASP_MAX_MASS_KG
        if dims[0] <= GRASP_MAX_THICKNESS_M and dims[2] <= GRASP_MAX_LENGTH_M and light_enough:
            return RoleInference(
                "manipulable_object", ("Graspable", *container), "free rigid body of graspable size"
            )
        return RoleInference(
            "interactive", ("Pushable", *container), "free rigid body too large or heavy to grasp"
        )
    if _words(label) & _SHELL or _words(obj.name.lower()) & _SHELL:
        return RoleInference("scene_shell", (), "static floor, wall or ground")
    flat_and_wide = dims[0] <= FLAT_THICKNESS_M and dims[2] >= 1.0
    if dims[2] >= BACKGROUND_MIN_EXTENT_M or flat_and_wide:
        return RoleInference("background", (), "large static geometry")
    return RoleInference("static", container, "static geometry")


def _words(label: str) -> set[str]:
    return {label, *(piece for piece in re.split(r"[_/\-\s]+", label) if piece)}
