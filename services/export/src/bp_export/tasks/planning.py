"""Generates a scene's `task_config.json` from object affordances, roles and geometry.

Task kinds (the output shape is documented in `bp_scene_contract.task_config`):

- `pick_place`: a graspable object onto a free spot of a support surface (its own or another).
- `place_in`: a graspable object into a container (`Containable`) no smaller than it outside.
- `stack`: a graspable object onto a flat-topped graspable object (block, box, book...).
- `open_close`: each joint of an articulated object, opened from closed and closed from open.

A task the scene itself rules out is still listed, with the reason recorded for every robot,
and no robot gets it:

- its object, or its goal, is enclosed behind a closed door or drawer (nothing here opens it
  first), or something sits right above the object, in the way of a top-down grasp;
- its goal is not free: something occupies the goal or the column the gripper comes down;
- a `place_in` whose object does not fit: its footprint must fit the container's inside with
  `FIT_MARGIN` to spare on every side, and standing on the container's floor its centre must be
  no higher than the rim (so it does not topple out, and `object_inside` can hold); a container
  authored as a collision mesh (a bowl's shell) is measured on that mesh, where the object comes
  to rest on the inner wall as wide as its footprint (`bp_export.tasks.opening`);
- an `open_close` whose part would hit another object on its way.

A `pick_place` goal region holds the places the object's centre may come to rest: within
`PLACE_TOLERANCE` of the chosen spot's centre, which keeps the whole object on the support's
top, clear of its edges and of every other object, wherever in the region it lands.

Every other task is then checked per robot by `bp_export.tasks.reach`: a robot keeps a task only
when its gripper can take the object and all its gripper poses (above the object, at the
grasp, at the goal and above it, or at the handle before and after the motion) are reachable
from the robot's one base pose, which keeps clear of every object and every door's sweep. A
scene with nothing graspable and nothing articulated has no tasks, which is not an error.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from bp_common.errors import InvalidInput
from bp_scene_contract import (
    ArticulationJoint,
    Box,
    Difficulty,
    DroppedTask,
    JointAtLeast,
    JointAtMost,
    JointGoal,
    ObjectInRegion,
    ObjectInside,
    ObjectOn,
    Pose,
    RobotAssignment,
    SceneGraph,
    SceneNode,
    SuccessPredicate,
    TaskConfig,
    TaskKind,
    TaskSpec,
    Vec3,
    read_scene_graph,
)

from bp_export.tasks.layout import (
    SceneLayout,
    articulated_joints,
    build_layout,
    closed_and_open,
    container_interior,
    enclosure,
    free_spot,
    handle_closing,
    handle_pose,
    is_container,
    is_graspable,
    neighbours_within,
    occupants,
    swept_region,
)
from bp_export.tasks.opening import Fit, authored_fit
from bp_export.tasks.reach import DOWN, GraspNeed, ReachTarget, TaskRequirements, place_robot
from bp_export.tasks.robots import ROBOT_NAMES, get_robot

DEFAULT_ROBOTS: tuple[str, ...] = tuple(n for n in ROBOT_NAMES if n != "gr1")
"""Every robot but GR1, planned for when a scene or BP_ROBOTS asks: the humanoid is the slowest
to simulate and render, and a default robot adds episodes to every run (docs/decisions/0030)."""
STACKABLE_WORDS = ("block", "cube", "box", "book", "brick", "crate", "tin", "case", "plate")
APPROACH_HEIGHT = 0.10
"""How far above a grasp or release point the gripper arrives from (m)."""
OPEN_FRACTION = 0.6
"""An open task succeeds once the joint has travelled this share of its range."""
CLOSED_FRACTION = 0.05
PLACE_TOLERANCE = 0.04
"""How far (m) from its goal spot's centre a placed object's centre may come to rest."""
SPOT_CLEARANCE = 0.01
"""Gap (m) a placed object keeps from its neighbours even at the edge of its goal region."""
FIT_MARGIN = 0.005
"""Room (m) an object needs on every side inside a container it goes into."""
HANDLE_PATH_STEP = math.radians(20.0)
"""Largest swing (rad) between the door-handle poses checked for reach along an opening."""
KIND_ORDER: dict[TaskKind, int] = {"pick_place": 0, "place_in": 1, "stack": 2, "open_close": 3}
KIND_EFFORT: dict[TaskKind, float] = {
    "pick_place": 0.0,
    "place_in": 0.1,
    "stack": 0.15,
    "open_close": 0.1,
}


def select_robots(
    scene_robots: Sequence[str] | None = None, configured: Sequence[str] | None = None
) -> list[str]:
    """The robots to plan for: the scene's own list, else the configured one, else the defaults.

    Names are checked; repeats are dropped keeping the first.
    """
    chosen = scene_robots if scene_robots else configured if configured else DEFAULT_ROBOTS
    out: list[str] = []
    for name in chosen:
        get_robot(name)
        if name not in out:
            out.append(name)
    return out


@dataclass(frozen=True)
class PlannedTask:
    spec: TaskSpec
    requirements: TaskRequirements
    infeasible: str | None = None
    """Why the scene itself rules the task out, whatever the robot; None when it does not."""


def _task_id(scene_id: str, kind: str, *parts: str) -> str:
    digest = hashlib.sha256(json.dumps([scene_id, kind, *parts]).encode()).hexdigest()
    return f"{kind}-{digest[:12]}"


def _rounded(v: Iterable[float]) -> tuple[float, float, float]:
    a, b, c = (round(float(x), 4) for x in v)
    return (a, b, c)


def _box(min_: Iterable[float], max_: Iterable[float]) -> Box:
    return Box(min=_rounded(min_), max=_rounded(max_))


def _describe(layout: SceneLayout, node: SceneNode) -> str:
    """'the mug', or for a name the scene repeats, 'the mug next to the plate' (or 'mug 2')."""
    same = sorted((n for n in layout.graph.nodes if n.name == node.name), key=lambda n: n.asset_id)
    if len(same) <= 1:
        return f"the {node.name}"
    name_counts: dict[str, int] = {}
    for n in layout.graph.nodes:
        name_counts[n.name] = name_counts.get(n.name, 0) + 1
    here = np.asarray(node.bbox.centre)
    landmarks = [
        n
        for n in layout.graph.nodes
        if name_counts[n.name] == 1
        and is_graspable(n)
        and layout.resting_on.get(n.asset_id) == layout.resting_on.get(node.asset_id)
    ]
    if landmarks:
        nearest = min(
            landmarks,
            key=lambda n: (float(np.linalg.norm(np.asarray(n.bbox.centre) - here)), n.asset_id),
        )
        others = [o for o in same if o.asset_id != node.asset_id]
        mine = float(np.linalg.norm(np.asarray(nearest.bbox.centre) - here))
        if all(
            float(np.linalg.norm(np.asarray(nearest.bbox.centre) - np.asarray(o.bbox.centre)))
            > mine + 0.02
            for o in others
        ):
            return f"the {node.name} next to the {nearest.name}"
    return f"{node.name} {same.index(node) + 1}"


def _difficulty(
    kind: TaskKind, clutter: int, distance: float, smallest_extent: float
) -> Difficulty:
    size_term = min(max((0.08 - smallest_extent) / 0.06, 0.0), 1.0)
    score = (
        0.4 * min(clutter / 4.0, 1.0)
        + 0.3 * min(distance / 0.8, 1.0)
        + 0.3 * size_term
        + KIND_EFFORT[kind]
    )
    score = round(min(score, 1.0), 3)
    level: Literal["easy", "medium", "hard"] = (
        "easy" if score < 0.33 else "medium" if score < 0.66 else "hard"
    )
    return Difficulty(
        level=level,
        score=score,
        clutter=clutter,
        distance_m=round(distance, 3),
        smallest_extent_m=round(smallest_extent, 3),
    )


def _grasp_targets(item: SceneNode) -> tuple[list[ReachTarget], float]:
    """Top-down approach and grasp of `item`; also the grasp point's height above its bottom."""
    cx, cy, _ = item.bbox.centre
    depth = min(0.03, item.bbox.size[2] / 2)
    grasp_z = item.bbox.max[2] - depth
    targets = [
        ReachTarget(
            f"approach above the {item.name}", (cx, cy, item.bbox.max[2] + APPROACH_HEIGHT)
        ),
        ReachTarget(f"grasp of the {item.name}", (cx, cy, grasp_z)),
    ]
    return targets, grasp_z - item.bbox.min[2]


def _grasp_need(item: SceneNode) -> GraspNeed:
    width = min(item.bbox.size[0], item.bbox.size[1])
    if not is_container(item):
        return GraspNeed(width)
    inside = container_interior(item).size
    return GraspNeed(width, rim_inside=min(inside[0], inside[1]))


def _cm(metres: float) -> str:
    return f"{metres * 100:.1f} cm"


def _access_problem(layout: SceneLayout, item: SceneNode) -> str | None:
    """Why `item` cannot be taken top-down where it stands, or None."""
    shut = enclosure(layout, item.bbox, exclude=[item.asset_id])
    if shut is not None:
        return (
            f"the {item.name} is enclosed behind a closed door ({shut.describe()}) and no task "
            f"opens it first"
        )
    above = _box(
        (item.bbox.min[0], item.bbox.min[1], item.bbox.max[2] + 0.005),
        (item.bbox.max[0], item.bbox.max[1], item.bbox.max[2] + APPROACH_HEIGHT),
    )
    holder = layout.resting_on.get(item.asset_id)
    # A bowl the object sits in is open above it; a cabinet shelf it stands on is not.
    open_top = [holder] if holder is not None and is_container(layout.node(holder)) else []
    blocking = occupants(layout, above, [item.asset_id, *open_top])
    if blocking:
        names = ", ".join(sorted(n.asset_id for n in blocking))
        return f"no room above the {item.name} for a top-down grasp: {names} in the way"
    return None


def _goal_problem(
    layout: SceneLayout, item: SceneNode, destination: SceneNode, space: Box
) -> str | None:
    """Why the goal `space` (where the object goes, with the gripper's way down) is not
    usable, or None."""
    shut = enclosure(layout, space, exclude=[item.asset_id])
    if shut is not None:
        return (
            f"the goal on the {destination.name} is enclosed behind a closed door "
            f"({shut.describe()}) and no task opens it first"
        )
    blocking = occupants(layout, space, [item.asset_id, destination.asset_id])
    if blocking:
        names = ", ".join(sorted(n.asset_id for n in blocking))
        return f"the goal on the {destination.name} is not free: {names} in the way"
    return None


def _move_problem(
    layout: SceneLayout, item: SceneNode, destination: SceneNode, space: Box
) -> str | None:
    return _access_problem(layout, item) or _goal_problem(layout, item, destination, space)


def _release_targets(
    item: SceneNode, x: float, y: float, bottom_z: float, lift: float
) -> list[ReachTarget]:
    release = (x, y, bottom_z + lift + 0.01)
    return [
        ReachTarget(f"release of the {item.name}", release),
        ReachTarget(
            f"retreat above the {item.name}'s goal", (x, y, release[2] + APPROACH_HEIGHT), DOWN
        ),
    ]


def _clutter(layout: SceneLayout, boxes: Sequence[Box], exclude: Sequence[str]) -> int:
    near: set[str] = set()
    for box in boxes:
        near.update(n.asset_id for n in neighbours_within(layout, box, 0.10, exclude))
    return len(near)


def _horizontal_distance(a: Vec3, b: Vec3) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def _workplace(layout: SceneLayout, asset_id: str | None, fallback: SceneNode) -> Box:
    if asset_id is None:
        return fallback.bbox
    return layout.node(asset_id).bbox


def _move_task(
    layout: SceneLayout,
    item: SceneNode,
    destination: SceneNode,
    *,
    kind: TaskKind,
    goal_region: Box,
    success: SuccessPredicate,
    instructions: tuple[str, ...],
    clutter: int,
    goal_centre: Vec3,
    release_at: tuple[float, float, float],
    workplace: Box,
    problem: str | None,
) -> PlannedTask:
    """A task that carries `item` to `destination`: pick, carry, release at `release_at`
    (x, y and the height the item's bottom comes to rest at)."""
    grasp, lift = _grasp_targets(item)
    task_id = _task_id(layout.graph.scene_id, kind, item.asset_id, destination.asset_id)
    spec = TaskSpec(
        task_id=task_id,
        kind=kind,
        target=item.asset_id,
        destination=destination.asset_id,
        goal_region=goal_region,
        success=success,
        instructions=instructions,
        difficulty=_difficulty(
            kind, clutter, _horizontal_distance(item.bbox.centre, goal_centre), min(item.bbox.size)
        ),
    )
    x, y, bottom = release_at
    requirements = TaskRequirements(
        task_id,
        tuple(grasp + _release_targets(item, x, y, bottom, lift)),
        workplace=workplace,
        grasp=_grasp_need(item),
        mass_kg=item.properties.mass,
    )
    return PlannedTask(spec, requirements, problem)


def _pick_place_tasks(layout: SceneLayout, item: SceneNode) -> list[PlannedTask]:
    out: list[PlannedTask] = []
    current = layout.resting_on.get(item.asset_id)
    for support in layout.supports:
        if support.asset_id == item.asset_id:
            continue
        spot = free_spot(layout, support, item, margin=PLACE_TOLERANCE + SPOT_CLEARANCE)
        if spot is None:
            continue
        top = support.bbox.max[2]
        gx, gy, _ = spot.centre
        region = _box(
            (gx - PLACE_TOLERANCE, gy - PLACE_TOLERANCE, top - 0.01),
            (gx + PLACE_TOLERANCE, gy + PLACE_TOLERANCE, spot.max[2] + 0.02),
        )
        way_down = _box(
            (spot.min[0], spot.min[1], top + 0.005),
            (spot.max[0], spot.max[1], spot.max[2] + APPROACH_HEIGHT),
        )
        what, where = _describe(layout, item), _describe(layout, support)
        if support.asset_id == current:
            instructions: tuple[str, ...] = (
                f"Move {what} to a clear spot on {where}.",
                f"Pick up {what} and set it down elsewhere on {where}.",
                f"Relocate {what} to the free area of {where}.",
            )
        else:
            instructions = (
                f"Put {what} on {where}.",
                f"Pick up {what} and place it on {where}.",
                f"Move {what} onto {where}.",
                f"Set {what} down on {where}.",
            )
        out.append(
            _move_task(
                layout,
                item,
                support,
                kind="pick_place",
                goal_region=region,
                success=ObjectInRegion(object=item.asset_id, region=region),
                instructions=instructions,
                clutter=_clutter(layout, [item.bbox, spot], [item.asset_id]),
                goal_centre=spot.centre,
                release_at=(gx, gy, top),
                workplace=support.bbox,
                problem=_move_problem(layout, item, support, way_down),
            )
        )
    return out


def _fits(inner: Sequence[float], outer: Sequence[float], margin: float = 0.0) -> bool:
    a, b = sorted(inner[:2])
    c, d = sorted(outer[:2])
    return a + 2 * margin <= c and b + 2 * margin <= d


def _misfit(item: SceneNode, container: SceneNode) -> str | None:
    """Why `item` cannot go into `container` and stay there, or None when it can: on the
    container's authored collision mesh where it has one, else on its box less its walls."""
    fit = authored_fit(item, container, FIT_MARGIN)
    if fit is not None:
        return None if fit.fits else _authored_misfit(item, container, fit)
    inside = container_interior(container)
    problems = []
    if not _fits(item.bbox.size, inside.size, FIT_MARGIN):
        a, b = sorted(item.bbox.size[:2])
        c, d = sorted(inside.size[:2])
        problems.append(
            f"its {_cm(a)} x {_cm(b)} footprint does not fit the {_cm(c)} x {_cm(d)} inside "
            f"with {_cm(FIT_MARGIN)} to spare on each side"
        )
    depth = inside.size[2]
    rise = item.bbox.size[2] / 2
    if rise > depth:
        problems.append(
            f"at {_cm(item.bbox.size[2])} tall its centre would stand {_cm(rise)} above the "
            f"floor of a {_cm(depth)} deep inside, above the rim, so it would topple out"
        )
    if not problems:
        return None
    return f"the {item.name} does not fit in the {container.name}: " + "; ".join(problems)


def _authored_misfit(item: SceneNode, container: SceneNode, fit: Fit) -> str:
    head = f"the {item.name} does not fit in the {container.name}'s authored shape: "
    if fit.rest_bottom_m >= fit.depth_m - 1e-6:
        return head + (
            f"its footprint needs {_cm(fit.footprint_m + 2 * FIT_MARGIN)} across with "
            f"{_cm(FIT_MARGIN)} to spare on each side and the opening is {_cm(fit.opening_m)} "
            f"at the rim, so it would rest on the rim, not inside"
        )
    return head + (
        f"it would come to rest {_cm(fit.rest_bottom_m)} above the bottom, where the inside is "
        f"wide enough for its {_cm(fit.footprint_m)} footprint, with its centre "
        f"{_cm(fit.centre_m)} up, above the {_cm(fit.depth_m)} high rim, so it would topple out"
    )


def _place_in_tasks(layout: SceneLayout, item: SceneNode) -> list[PlannedTask]:
    out: list[PlannedTask] = []
    for container in layout.graph.nodes:
        if container.asset_id == item.asset_id or not is_container(container):
            continue
        if layout.resting_on.get(item.asset_id) == container.asset_id:
            continue
        if layout.resting_on.get(container.asset_id) == item.asset_id:
            continue
        if not _fits(item.bbox.size, container.bbox.size):
            continue
        interior = container_interior(container)
        region = _box(interior.min, (interior.max[0], interior.max[1], interior.max[2] + 0.02))
        above_rim = interior.max[2] + item.bbox.size[2] + APPROACH_HEIGHT
        way_down = _box(
            (interior.min[0], interior.min[1], interior.min[2] + 0.005),
            (interior.max[0], interior.max[1], above_rim),
        )
        cx, cy, _ = container.bbox.centre
        what, where = _describe(layout, item), _describe(layout, container)
        out.append(
            _move_task(
                layout,
                item,
                container,
                kind="place_in",
                goal_region=region,
                success=ObjectInside(object=item.asset_id, container=container.asset_id),
                instructions=(
                    f"Put {what} in {where}.",
                    f"Place {what} inside {where}.",
                    f"Pick up {what} and drop it into {where}.",
                ),
                clutter=_clutter(
                    layout, [item.bbox, container.bbox], [item.asset_id, container.asset_id]
                ),
                goal_centre=container.bbox.centre,
                release_at=(cx, cy, container.bbox.max[2]),
                workplace=_workplace(layout, layout.resting_on.get(container.asset_id), container),
                problem=(
                    _access_problem(layout, item)
                    or _misfit(item, container)
                    or _goal_problem(layout, item, container, way_down)
                ),
            )
        )
    return out


def _stackable(layout: SceneLayout, node: SceneNode) -> bool:
    if not is_graspable(node) or is_container(node):
        return False
    words = node.name.split()
    if any(word in words for word in STACKABLE_WORDS):
        return True
    return any(
        e.relation == "stacked" and node.asset_id in (e.source, e.target)
        for e in layout.graph.edges
    )


def _stack_tasks(layout: SceneLayout, item: SceneNode) -> list[PlannedTask]:
    out: list[PlannedTask] = []
    if not _stackable(layout, item):
        return out
    for base in layout.graph.nodes:
        if not _stackable(layout, base):
            continue
        if item.asset_id in (base.asset_id, layout.resting_on.get(base.asset_id)):
            continue
        if layout.resting_on.get(item.asset_id) == base.asset_id:
            continue
        if not _fits(item.bbox.size, base.bbox.size):
            continue
        top = base.bbox.max[2]
        region = _box(
            (base.bbox.min[0], base.bbox.min[1], top - 0.01),
            (base.bbox.max[0], base.bbox.max[1], top + item.bbox.size[2] + 0.02),
        )
        way_down = _box(
            (base.bbox.min[0], base.bbox.min[1], top + 0.005),
            (base.bbox.max[0], base.bbox.max[1], top + item.bbox.size[2] + APPROACH_HEIGHT),
        )
        cx, cy, _ = base.bbox.centre
        what, where = _describe(layout, item), _describe(layout, base)
        out.append(
            _move_task(
                layout,
                item,
                base,
                kind="stack",
                goal_region=region,
                success=ObjectOn(object=item.asset_id, support=base.asset_id),
                instructions=(
                    f"Stack {what} on {where}.",
                    f"Put {what} on top of {where}.",
                    f"Place {what} onto {where}.",
                ),
                clutter=_clutter(layout, [item.bbox, base.bbox], [item.asset_id, base.asset_id]),
                goal_centre=base.bbox.centre,
                release_at=(cx, cy, top),
                workplace=_workplace(layout, layout.resting_on.get(base.asset_id), base),
                problem=_move_problem(layout, item, base, way_down),
            )
        )
    return out


def _part_name(joint: ArticulationJoint) -> str:
    noise = {"joint", "hinge", "slide", "slider", "axis", "revolute", "prismatic", "j"}
    words = [
        w
        for w in joint.name.replace("-", "_").replace(".", "_").lower().split("_")
        if w and w not in noise and not w.isdigit()
    ]
    if words:
        return " ".join(words)
    return "door" if joint.type == "revolute" else "drawer"


def _union(a: Box, b: Box) -> Box:
    return Box(
        min=(min(a.min[0], b.min[0]), min(a.min[1], b.min[1]), min(a.min[2], b.min[2])),
        max=(max(a.max[0], b.max[0]), max(a.max[1], b.max[1]), max(a.max[2], b.max[2])),
    )


def _swing_problem(
    layout: SceneLayout, owner: SceneNode, joint: ArticulationJoint, start: float, goal: float
) -> str | None:
    """Why the part cannot travel from `start` to `goal` (something in its way), or None."""
    sweep = swept_region(owner, joint, start, goal)
    blocking = [
        node
        for node in occupants(layout, sweep.bbox, [owner.asset_id])
        if not owner.bbox.contains_point(node.bbox.centre) and sweep.overlaps(node.bbox)
    ]
    if not blocking:
        return None
    names = ", ".join(sorted(n.asset_id for n in blocking))
    return f"the {_part_name(joint)} of the {owner.name} would hit {names} on its way"


def _handle_path(
    owner: SceneNode, joint: ArticulationJoint, start: float, goal: float, label: str
) -> list[ReachTarget]:
    """The handle's poses between `start` and `goal`, HANDLE_PATH_STEP apart: a door's handle
    swings on an arc the gripper has to follow, not only reach at its ends."""
    if joint.type == "prismatic":
        return []
    closed, _ = closed_and_open(joint)
    steps = math.ceil(abs(goal - start) / HANDLE_PATH_STEP)
    out = []
    for i in range(1, steps):
        value = start + (goal - start) * i / steps
        position, approach = handle_pose(owner, joint, value, closed)
        share = round(100 * i / steps)
        closing = handle_closing(owner, joint, approach)
        out.append(ReachTarget(f"{label}, {share}% of the way)", position, approach, True, closing))
    return out


def _open_close_tasks(layout: SceneLayout, owner: SceneNode) -> list[PlannedTask]:
    out: list[PlannedTask] = []
    for joint in articulated_joints(owner):
        closed, fully_open = closed_and_open(joint)
        span = fully_open - closed
        if abs(span) < 1e-6:
            continue
        workplace = _union(owner.bbox, swept_region(owner, joint, closed, fully_open).bbox)
        part = _part_name(joint)
        owner_name = _describe(layout, owner)
        for action in ("open", "close"):
            if action == "open":
                start, goal = closed, closed + OPEN_FRACTION * span
                reached = JointAtLeast if span > 0 else JointAtMost
                verbs = (
                    f"Open the {part} of {owner_name}.",
                    f"Pull the {part} of {owner_name} open.",
                    f"Swing {owner_name}'s {part} open."
                    if joint.type == "revolute"
                    else f"Slide {owner_name}'s {part} out.",
                )
            else:
                start, goal = closed + 0.8 * span, closed + CLOSED_FRACTION * span
                reached = JointAtMost if span > 0 else JointAtLeast
                verbs = (
                    f"Close the {part} of {owner_name}.",
                    f"Push the {part} of {owner_name} shut.",
                    f"Shut {owner_name}'s {part}.",
                )
            handle_start, approach_start = handle_pose(owner, joint, start, closed)
            handle_goal, approach_goal = handle_pose(owner, joint, goal, closed)
            back = np.asarray(handle_start) - np.asarray(approach_start) * APPROACH_HEIGHT
            closing_start = handle_closing(owner, joint, approach_start)
            closing_goal = handle_closing(owner, joint, approach_goal)
            targets = (
                ReachTarget(
                    f"approach to the {part} handle",
                    _rounded(back),
                    approach_start,
                    True,
                    closing_start,
                ),
                ReachTarget(
                    f"{part} handle ({action} start)",
                    handle_start,
                    approach_start,
                    True,
                    closing_start,
                ),
                *_handle_path(owner, joint, start, goal, f"{part} handle ({action}"),
                ReachTarget(
                    f"{part} handle ({action} end)",
                    handle_goal,
                    approach_goal,
                    True,
                    closing_goal,
                ),
            )
            task_id = _task_id(
                layout.graph.scene_id, "open_close", owner.asset_id, joint.name, action
            )
            spec = TaskSpec(
                task_id=task_id,
                kind="open_close",
                target=owner.asset_id,
                action=action,
                joint_goal=JointGoal(
                    joint=joint.name, initial_value=round(start, 4), value=round(goal, 4)
                ),
                success=reached(object=owner.asset_id, joint=joint.name, value=round(goal, 4)),
                instructions=verbs,
                difficulty=_difficulty(
                    "open_close",
                    _clutter(layout, [joint.moving_part_bbox], [owner.asset_id]),
                    float(np.linalg.norm(np.asarray(handle_goal) - np.asarray(handle_start))),
                    min(joint.moving_part_bbox.size),
                ),
            )
            out.append(
                PlannedTask(
                    spec,
                    TaskRequirements(task_id, targets, workplace),
                    _swing_problem(layout, owner, joint, start, goal),
                )
            )
    return out


def plan_tasks(layout: SceneLayout) -> list[PlannedTask]:
    """Every task the scene affords, in a fixed order, before any robot is considered."""
    planned: list[PlannedTask] = []
    for node in sorted(layout.graph.nodes, key=lambda n: n.asset_id):
        if is_graspable(node):
            planned += _pick_place_tasks(layout, node)
            planned += _place_in_tasks(layout, node)
            planned += _stack_tasks(layout, node)
        planned += _open_close_tasks(layout, node)
    planned.sort(
        key=lambda p: (
            KIND_ORDER[p.spec.kind],
            p.spec.target,
            p.spec.destination or "",
            p.spec.joint_goal.joint if p.spec.joint_goal else "",
            p.spec.action or "",
        )
    )
    return planned


def build_task_config(graph: SceneGraph, robots: Sequence[str]) -> TaskConfig:
    """Plan the scene's tasks and place each robot; the typed form of `generate_tasks`."""
    layout = build_layout(graph)
    planned = plan_tasks(layout)
    requirements = [p.requirements for p in planned if p.infeasible is None]
    assignments: list[RobotAssignment] = []
    dropped: list[DroppedTask] = []
    for name in robots:
        dropped += [
            DroppedTask(task_id=p.spec.task_id, robot=name, reason=f"{name}: {p.infeasible}")
            for p in planned
            if p.infeasible is not None
        ]
        placement = place_robot(get_robot(name), layout, requirements)
        pose = placement.base_pose if placement.kept else None
        assignments.append(
            RobotAssignment(
                robot=get_robot(name).name,
                base_pose=None
                if pose is None
                else Pose(
                    position=_rounded(pose.position),
                    orientation=tuple(round(v, 6) for v in pose.orientation),  # type: ignore[arg-type]
                ),
                tasks=placement.kept,
            )
        )
        dropped += [DroppedTask(task_id=t, robot=name, reason=r) for t, r in placement.dropped]
    return TaskConfig(
        scene_id=graph.scene_id,
        robots=tuple(assignments),
        tasks=tuple(p.spec for p in planned),
        dropped=tuple(dropped),
    )


def generate_tasks(
    scene_graph: Mapping[str, Any] | SceneGraph, robots: Sequence[str] | None = None
) -> dict[str, Any]:
    """`task_config.json` content for a scene graph and the robots to plan for (default: all).

    Raises `InvalidInput` for a malformed scene graph or an unknown robot name.
    """
    graph = scene_graph if isinstance(scene_graph, SceneGraph) else read_scene_graph(scene_graph)
    try:
        names = select_robots(None, robots)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, scene_id=graph.scene_id, **exc.context) from exc
    return build_task_config(graph, names).model_dump(mode="json")
