"""Small scene graphs and task configs in the export stage's format, for tests and benchmarks.

They stand in for exported scenes when none are at hand: a table with a cube and a cylinder
(two pick-and-place tasks) and a cabinet with a hinged door and a drawer (two open tasks).
"""

from __future__ import annotations

from typing import Any

TABLE_TOP_Z = 0.75
_FRAME = {"up_axis": "z", "units": "m", "handedness": "right"}


def _difficulty(level: str, score: float, distance_m: float, smallest_m: float) -> dict[str, Any]:
    return {
        "level": level,
        "score": score,
        "clutter": 0,
        "distance_m": distance_m,
        "smallest_extent_m": smallest_m,
    }


def _node(
    asset_id: str,
    semantic: str,
    lo: list[float],
    hi: list[float],
    *,
    static: bool,
    mass: float = 0.2,
    friction: float = 0.9,
    role: str = "manipulable_object",
    articulation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    center = [(a + b) / 2 for a, b in zip(lo, hi, strict=True)]
    return {
        "asset_id": asset_id,
        "semantic": semantic,
        "size": [b - a for a, b in zip(lo, hi, strict=True)],
        "pose": {"position": center, "orientation": [1.0, 0.0, 0.0, 0.0]},
        "bbox": {"min": lo, "max": hi},
        "sim_role": role,
        "affordances": [] if static else ["Graspable"],
        "properties": {"mass": mass, "friction": friction},
        "is_static": static,
        "usd_path": f"/World/Objects/obj_{asset_id}",
        "articulation": articulation,
    }


def tabletop_scene(robot: str = "franka_panda") -> tuple[dict[str, Any], dict[str, Any]]:
    """A table with a 5 cm cube and a 6 cm wide cylinder; place each in a region on the table."""
    z = TABLE_TOP_Z
    nodes = [
        _node(
            "table",
            "table",
            [0.25, -0.5, 0.0],
            [1.05, 0.5, z],
            static=True,
            mass=20.0,
            role="static",
        ),
        _node(
            "cube", "cube", [0.425, -0.205, z], [0.475, -0.155, z + 0.05], static=False, mass=0.1
        ),
        _node(
            "can", "cylinder can", [0.57, 0.17, z], [0.63, 0.23, z + 0.1], static=False, mass=0.15
        ),
    ]
    edges = [
        {"source": "cube", "target": "table", "relation": "on", "confidence": 1.0},
        {"source": "can", "target": "table", "relation": "on", "confidence": 1.0},
    ]
    cube_goal = {"min": [0.43, 0.02, z], "max": [0.57, 0.16, z + 0.1]}
    can_goal = {"min": [0.56, -0.2, z], "max": [0.7, -0.06, z + 0.15]}
    graph = {
        "schema_version": 1,
        "scene_id": "demo_tabletop",
        "frame": _FRAME,
        "nodes": nodes,
        "edges": edges,
    }
    tasks = [
        {
            "task_id": "pick_place_cube",
            "kind": "pick_place",
            "target": "cube",
            "destination": "table",
            "goal_region": cube_goal,
            "success": {"predicate": "object_in_region", "object": "cube", "region": cube_goal},
            "instructions": ["put the cube in the marked area"],
            "difficulty": _difficulty("easy", 0.25, 0.33, 0.05),
        },
        {
            "task_id": "pick_place_can",
            "kind": "pick_place",
            "target": "can",
            "destination": "table",
            "goal_region": can_goal,
            "success": {"predicate": "object_in_region", "object": "can", "region": can_goal},
            "instructions": ["move the can to the right"],
            "difficulty": _difficulty("easy", 0.24, 0.34, 0.06),
        },
    ]
    # Arms stand on a pedestal level with the table top; Fetch is a mobile base on the floor.
    base = [-0.2, 0.0, 0.0] if robot == "fetch" else [0.0, 0.0, z]
    config = {
        "schema_version": 1,
        "scene_id": "demo_tabletop",
        "robots": [
            {
                "robot": robot,
                "base_pose": {"position": base, "orientation": [1.0, 0.0, 0.0, 0.0]},
                "tasks": [t["task_id"] for t in tasks],
            }
        ],
        "tasks": tasks,
        "dropped": [],
    }
    return graph, config


def cabinet_scene(robot: str = "franka_panda") -> tuple[dict[str, Any], dict[str, Any]]:
    """A cabinet facing the robot, with a drawer on top and a hinged door below it."""
    front_x = 0.65
    lo = [front_x, -0.25, 0.0]
    hi = [front_x + 0.4, 0.25, 0.9]
    drawer = {
        "name": "drawer",
        "type": "prismatic",
        "axis": [-1.0, 0.0, 0.0],
        "anchor": [front_x, 0.0, 0.8],
        "lower": 0.0,
        "upper": 0.3,
        "moving_part_bbox": {"min": [front_x, -0.23, 0.72], "max": [front_x + 0.36, 0.23, 0.88]},
    }
    door = {
        "name": "door",
        "type": "revolute",
        "axis": [0.0, 0.0, -1.0],
        "anchor": [front_x, 0.23, 0.5],
        "lower": 0.0,
        "upper": 1.8,
        "moving_part_bbox": {"min": [front_x, -0.23, 0.3], "max": [front_x + 0.02, 0.23, 0.7]},
    }
    nodes = [
        _node(
            "cabinet",
            "cabinet",
            lo,
            hi,
            static=True,
            mass=30.0,
            role="articulated_furniture",
            articulation={"joints": [drawer, door]},
        )
    ]
    graph = {
        "schema_version": 1,
        "scene_id": "demo_cabinet",
        "frame": _FRAME,
        "nodes": nodes,
        "edges": [],
    }
    tasks = [
        {
            "task_id": "open_drawer",
            "kind": "open_close",
            "target": "cabinet",
            "action": "open",
            "success": {
                "predicate": "joint_at_least",
                "object": "cabinet",
                "joint": "drawer",
                "value": 0.15,
            },
            "instructions": ["open the drawer"],
            "difficulty": _difficulty("medium", 0.45, 0.15, 0.16),
        },
        {
            "task_id": "open_door",
            "kind": "open_close",
            "target": "cabinet",
            "action": "open",
            "success": {
                "predicate": "joint_at_least",
                "object": "cabinet",
                "joint": "door",
                "value": 0.8,
            },
            "instructions": ["open the cabinet door"],
            "difficulty": _difficulty("hard", 0.7, 0.4, 0.02),
        },
    ]
    config = {
        "schema_version": 1,
        "scene_id": "demo_cabinet",
        "robots": [
            {
                "robot": robot,
                "base_pose": {
                    "position": [-0.2, 0.0, 0.0] if robot == "fetch" else [0.0, 0.0, 0.45],
                    "orientation": [1.0, 0.0, 0.0, 0.0],
                },
                "tasks": [t["task_id"] for t in tasks],
            }
        ],
        "tasks": tasks,
        "dropped": [],
    }
    return graph, config
