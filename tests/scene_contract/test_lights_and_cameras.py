"""A scene graph's lights and cameras: optional, so older documents stay readable; a camera's
name is one a run can ask for, and no two cameras share one."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from bp_collector.demo_scenes import tabletop_scene
from bp_scene_contract import InvalidSceneDocument, read_scene_graph

CAMERA = {
    "name": "usd_Camera",
    "usd_path": "/World/Camera",
    "pose": {"position": [-1.0, 0.0, 1.5], "orientation": [1.0, 0.0, 0.0, 0.0]},
    "fovy_deg": 46.0,
}
LIGHT = {
    "usd_path": "/World/KeyLight",
    "type_name": "DistantLight",
    "pose": {"position": [0.0, 0.0, 0.0], "orientation": [1.0, 0.0, 0.0, 0.0]},
    "intensity": 3000.0,
}


def _graph() -> dict[str, Any]:
    graph, _ = tabletop_scene("franka_panda")
    return copy.deepcopy(graph)


def test_a_document_without_lights_or_cameras_reads_with_none() -> None:
    graph = _graph()
    assert "lights" not in graph and "cameras" not in graph
    read = read_scene_graph(graph)
    assert read.lights == () and read.cameras == ()


def test_lights_and_cameras_read_back_as_written() -> None:
    graph = {**_graph(), "lights": [LIGHT], "cameras": [CAMERA]}
    read = read_scene_graph(graph)
    assert read.cameras[0].name == "usd_Camera" and read.cameras[0].fovy_deg == 46.0
    assert read.lights[0].type_name == "DistantLight" and read.lights[0].intensity == 3000.0
    assert read.model_dump(mode="json")["cameras"] == [CAMERA]


@pytest.mark.parametrize(
    ("cameras", "field"),
    [
        ([{**CAMERA, "name": "overhead"}], "cameras.0.name"),
        ([{**CAMERA, "name": "usd_a b"}], "cameras.0.name"),
        ([{**CAMERA, "fovy_deg": 180.0}], "cameras.0.fovy_deg"),
        ([CAMERA, {**CAMERA, "usd_path": "/World/Other"}], "cameras.1.name"),
    ],
)
def test_a_camera_a_run_could_not_ask_for_is_refused(
    cameras: list[dict[str, Any]], field: str
) -> None:
    with pytest.raises(InvalidSceneDocument) as caught:
        read_scene_graph({**_graph(), "cameras": cameras})
    assert caught.value.context["field"] == field
