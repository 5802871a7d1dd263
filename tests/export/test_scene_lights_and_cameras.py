"""The scene's UsdLux lights and perspective UsdGeom cameras reach the scene graph, posed in the
pipeline frame whatever the stage's up axis and unit."""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import numpy as np
import pytest
from bp_export.scene.graph import build_scene_graph
from bp_export.usd.scene import load_scene
from bp_scene_contract import SceneGraph

ROOT = Path(__file__).resolve().parents[2]

# The same room in metres: a box on the floor, a camera looking at it, a sun and a lamp.
_CONTENT = """
        def Cube "box" (prepend apiSchemas = ["PhysicsCollisionAPI", "PhysicsRigidBodyAPI"])
        {
            double size = 0.1
            double3 xformOp:translate = (0.5, 0, 0.05)
            uniform token[] xformOpOrder = ["xformOp:translate"]
        }
        def Camera "Eye"
        {
            float focalLength = 18
            float verticalAperture = 15.29
            double3 xformOp:translate = (1.5, -0.5, 1.2)
            float3 xformOp:rotateXYZ = (55, 0, 60)
            uniform token[] xformOpOrder = ["xformOp:translate", "xformOp:rotateXYZ"]
        }
        def Camera "Map"
        {
            token projection = "orthographic"
        }
        def DistantLight "Sun"
        {
            float inputs:intensity = 2000
            float3 xformOp:rotateXYZ = (-30, 20, 0)
            uniform token[] xformOpOrder = ["xformOp:rotateXYZ"]
        }
        def SphereLight "Lamp"
        {
            float inputs:intensity = 500
            double3 xformOp:translate = (0, 1, 2)
            uniform token[] xformOpOrder = ["xformOp:translate"]
        }
"""


def _stage(folder: Path, name: str, up: str, metres_per_unit: float, root_ops: str) -> Path:
    path = folder / f"{name}.usda"
    path.write_text(
        f"""#usda 1.0
(
    upAxis = "{up}"
    metersPerUnit = {metres_per_unit}
    defaultPrim = "World"
)
def Xform "World"
{{
{root_ops}
    def Xform "Room"
    {{
{_CONTENT}
    }}
}}
"""
    )
    return path


def _graph(path: Path) -> SceneGraph:
    return build_scene_graph(load_scene(path, "room"))


def _axes(orientation: tuple[float, float, float, float]) -> np.ndarray:
    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, np.asarray(orientation, dtype=float))
    return m.reshape(3, 3)


def test_lights_and_perspective_cameras_are_recorded_in_the_scene_graph(tmp_path: Path) -> None:
    graph = _graph(_stage(tmp_path, "zup_m", "Z", 1.0, ""))
    assert [c.name for c in graph.cameras] == ["usd_Eye"]  # the orthographic map is left out
    eye = graph.cameras[0]
    assert eye.usd_path == "/World/Room/Eye"
    assert eye.pose.position == pytest.approx((1.5, -0.5, 1.2))
    assert eye.fovy_deg == pytest.approx(math.degrees(2 * math.atan(15.29 / 36)))
    lights = {light.usd_path: light for light in graph.lights}
    assert set(lights) == {"/World/Room/Sun", "/World/Room/Lamp"}
    assert lights["/World/Room/Sun"].type_name == "DistantLight"
    assert lights["/World/Room/Sun"].intensity == 2000
    assert lights["/World/Room/Lamp"].pose.position == pytest.approx((0.0, 1.0, 2.0))


def test_a_y_up_centimetre_stage_gives_the_same_lights_and_cameras(tmp_path: Path) -> None:
    z_up = _graph(_stage(tmp_path, "zup_m", "Z", 1.0, ""))
    # The same room authored Y up in centimetres: z-up metres turned to y-up, times 100.
    ops = (
        "    float xformOp:rotateX = -90\n    float3 xformOp:scale = (100, 100, 100)\n"
        '    uniform token[] xformOpOrder = ["xformOp:rotateX", "xformOp:scale"]'
    )
    y_up = _graph(_stage(tmp_path, "yup_cm", "Y", 0.01, ops))
    assert len(z_up.cameras) == len(y_up.cameras) == 1
    assert len(z_up.lights) == len(y_up.lights) == 2
    for camera, same in zip(z_up.cameras, y_up.cameras, strict=True):
        assert camera.name == same.name and camera.fovy_deg == pytest.approx(same.fovy_deg)
        assert camera.pose.position == pytest.approx(same.pose.position, abs=1e-6)
        assert np.allclose(_axes(camera.pose.orientation), _axes(same.pose.orientation), atol=1e-6)
    for light, twin in zip(z_up.lights, y_up.lights, strict=True):
        assert (light.usd_path, light.intensity) == (twin.usd_path, twin.intensity)
        assert light.pose.position == pytest.approx(twin.pose.position, abs=1e-6)
        assert np.allclose(_axes(light.pose.orientation), _axes(twin.pose.orientation), atol=1e-6)


def test_the_kitchen_sample_camera_looks_at_its_table() -> None:
    graph = _graph(ROOT / "examples/kitchen_table/scene.usda")
    [camera] = graph.cameras
    table = np.array(graph.node("table").bbox.centre)
    looking = -_axes(camera.pose.orientation)[:, 2]
    towards = table - np.array(camera.pose.position)
    # The table is within the camera's view cone, near its axis.
    angle = math.degrees(math.acos(float(looking @ towards) / np.linalg.norm(towards)))
    assert angle < camera.fovy_deg / 2
    assert _axes(camera.pose.orientation)[2, 1] > 0  # image up is up
    assert [light.type_name for light in graph.lights] == ["DistantLight"]
