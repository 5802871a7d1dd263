"""Scene graphs in the `scene_graph.json` shape, built by hand for the task-planning tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TABLE_TOP = 0.75


def node(
    asset_id: str,
    semantic: str,
    lo: Sequence[float],
    hi: Sequence[float],
    *,
    role: str = "manipulable_object",
    affordances: Sequence[str] = ("Graspable",),
    mass: float | None = None,
    static: bool = False,
    articulation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "asset_id": asset_id,
        "semantic": semantic,
        "size": [h - low for low, h in zip(lo, hi, strict=True)],
        "pose": {
            "position": [(low + h) / 2 for low, h in zip(lo, hi, strict=True)],
            "orientation": [1.0, 0.0, 0.0, 0.0],
        },
        "bbox": {"min": list(lo), "max": list(hi)},
        "sim_role": role,
        "affordances": list(affordances),
        "properties": {"mass": mass, "friction": 0.6},
        "is_static": static,
        "usd_path": f"/World/Objects/{asset_id}",
        "articulation": articulation,
    }


def item_on(
    asset_id: str,
    semantic: str,
    centre: tuple[float, float],
    top: float,
    size: tuple[float, float, float],
    **kwargs: Any,
) -> dict[str, Any]:
    """An object standing on a surface whose top is at height `top`."""
    (cx, cy), (sx, sy, sz) = centre, size
    return node(
        asset_id, semantic, (cx - sx / 2, cy - sy / 2, top), (cx + sx / 2, cy + sy / 2, top + sz),
        **kwargs,
    )  # fmt: skip


def floor() -> dict[str, Any]:
    return node(
        "floor", "floor", (-4, -4, -0.05), (6, 4, 0.0),
        role="scene_shell", affordances=(), static=True,
    )  # fmt: skip


def table(
    asset_id: str = "table_01",
    centre: tuple[float, float] = (0.0, 0.0),
    semantic: str = "dining_table",
) -> dict[str, Any]:
    cx, cy = centre
    return node(
        asset_id, semantic, (cx - 0.6, cy - 0.4, 0.0), (cx + 0.6, cy + 0.4, TABLE_TOP),
        role="static", affordances=(), static=True,
    )  # fmt: skip


def on(source: str, target: str, confidence: float = 0.95) -> dict[str, Any]:
    return {"source": source, "target": target, "relation": "on", "confidence": confidence}


def scene(
    scene_id: str, nodes: list[dict[str, Any]], edges: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "scene_id": scene_id,
        "frame": {"up_axis": "z", "units": "m", "handedness": "right"},
        "nodes": nodes,
        "edges": edges,
    }


def kitchen_table() -> dict[str, Any]:
    """A dining table with a mug, an apple, two blocks and a bowl on it."""
    items = [
        item_on("mug_01", "coffee_mug", (-0.2, 0.1), TABLE_TOP, (0.08, 0.08, 0.10), mass=0.3),
        item_on("apple_01", "apple", (0.15, -0.15), TABLE_TOP, (0.07, 0.07, 0.07), mass=0.2),
        item_on("block_01", "wooden_block", (0.0, -0.05), TABLE_TOP, (0.05, 0.05, 0.05)),
        item_on("cube_01", "red_cube", (0.25, 0.15), TABLE_TOP, (0.06, 0.06, 0.06)),
        item_on(
            "bowl_01",
            "bowl",
            (-0.3, -0.2),
            TABLE_TOP,
            (0.18, 0.18, 0.07),
            affordances=("Graspable", "Containable"),
            mass=0.4,
        ),
    ]
    return scene(
        "kitchen_table",
        [floor(), table(), *items],
        [on(i["asset_id"], "table_01") for i in items],
    )


def cabinet(*, door_open: bool = False, upper: float = 1.57) -> dict[str, Any]:
    """A 0.9 m cabinet whose 0.6 m front (-x) door turns about a vertical hinge at y = -0.3.

    The door opens towards -x through `upper` radians. With `door_open` the scene shows it
    swung a quarter turn out, standing along the hinge side; the cabinet's box then takes it in.
    """
    if door_open:
        door = {"min": [0.39, -0.31, 0.05], "max": [0.99, -0.29, 0.85]}
        lo: tuple[float, ...] = (0.39, -0.31, 0.0)
    else:
        door = {"min": [0.98, -0.3, 0.05], "max": [1.0, 0.3, 0.85]}
        lo = (0.98, -0.3, 0.0)
    articulation = {
        "joints": [
            {
                "name": "door_hinge",
                "type": "revolute",
                "axis": [0.0, 0.0, 1.0],
                "anchor": [0.99, -0.3, 0.0],
                "lower": 0.0,
                "upper": upper,
                "moving_part_bbox": door,
            }
        ]
    }
    return node(
        "cabinet_01", "kitchen_cabinet", lo, (1.5, 0.3, 0.9),
        role="articulated_furniture", affordances=("Openable",), static=True,
        articulation=articulation,
    )  # fmt: skip


def cabinet_with_door() -> dict[str, Any]:
    """The cabinet, closed, alone on the floor."""
    return scene("cabinet_door", [floor(), cabinet()], [])


def cabinet_with_contents(*, door_open: bool = False) -> dict[str, Any]:
    """A can and a small bowl on the cabinet's middle shelf, and a mug on a table 1.5 m away.

    The door is closed across the shelf unless `door_open`.
    """
    shelf = 0.45
    can = item_on("can_01", "soda_can", (1.2, -0.1), shelf, (0.066, 0.066, 0.12), mass=0.35)
    bowl = item_on(
        "bowl_01", "bowl", (1.3, 0.15), shelf, (0.12, 0.12, 0.05),
        affordances=("Graspable", "Containable"),
    )  # fmt: skip
    mug = item_on("mug_01", "mug", (0.0, 1.5), TABLE_TOP, (0.07, 0.07, 0.08))
    return scene(
        "cabinet_contents",
        [floor(), cabinet(door_open=door_open), can, bowl, table(centre=(0.0, 1.5)), mug],
        [on("can_01", "cabinet_01"), on("bowl_01", "cabinet_01"), on("mug_01", "table_01")],
    )


def bare_table() -> dict[str, Any]:
    """Furniture only: nothing to grasp, nothing to open."""
    lamp = node(
        "lamp_01", "floor_lamp", (1.2, 1.0, 0.0), (1.5, 1.3, 1.6),
        role="static", affordances=(), static=True,
    )  # fmt: skip
    return scene("bare_table", [floor(), table(), lamp], [])


def far_side_table() -> dict[str, Any]:
    """A mug and an apple on the main table, and a cube on a side table 4 m away."""
    items = [
        item_on("mug_01", "coffee_mug", (-0.1, 0.0), TABLE_TOP, (0.07, 0.07, 0.10)),
        item_on("apple_01", "apple", (0.15, -0.1), TABLE_TOP, (0.07, 0.07, 0.07)),
    ]
    far_cube = item_on("cube_01", "red_cube", (4.0, 0.0), TABLE_TOP, (0.06, 0.06, 0.06))
    return scene(
        "far_side_table",
        [floor(), table(), table("side_table_01", (4.0, 0.0), "side_table"), *items, far_cube],
        [*(on(i["asset_id"], "table_01") for i in items), on("cube_01", "side_table_01")],
    )
