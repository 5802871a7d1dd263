"""Authored geometry reaches the scene graph with its true shapes, in any up axis and unit."""

from __future__ import annotations

import hashlib
import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bp_export.usd.scene import load_scene
from PIL import Image
from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade

from tests.textured_usd import BLUE, FALLBACK_RGB, GREEN, RED, textured_quad, write_quadrant_png
from tests.usd_authoring import WorldStage

SHELVES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "public-usd"


def _write(path: Path, up: str, metres_per_unit: float) -> None:
    """One scene, authored in `up` and `metres_per_unit`: the same objects in the world."""
    authored = WorldStage(path, up, metres_per_unit)
    stage, at, body, k = authored.stage, authored.at, authored.body, authored.k

    cube = UsdGeom.Cube.Define(stage, body("Crate", 0.0, 0.0, 0.1) + "/Shape")
    cube.CreateSizeAttr(0.2 * k)
    cube.CreateDisplayColorAttr([(0.8, 0.1, 0.1)])
    UsdPhysics.CollisionAPI.Apply(cube.GetPrim())
    ball = UsdGeom.Sphere.Define(stage, body("Ball", 0.5, 0.0, 0.05) + "/Shape")
    ball.CreateRadiusAttr(0.05 * k)
    can = UsdGeom.Cylinder.Define(stage, body("Can", 0.0, 0.5, 0.06) + "/Shape")
    can.CreateRadiusAttr(0.03 * k)
    can.CreateHeightAttr(0.12 * k)
    can.CreateAxisAttr("Y" if up == "Y" else "Z")  # upright in either stage
    pill = UsdGeom.Capsule.Define(stage, body("Pill", 0.5, 0.5, 0.02) + "/Shape")
    pill.CreateRadiusAttr(0.02 * k)
    pill.CreateHeightAttr(0.08 * k)
    pill.CreateAxisAttr("X")
    tile = UsdGeom.Mesh.Define(stage, body("Tile", -0.5, 0.0, 0.0) + "/Shape")
    corners = [(0, 0, 0), (0.1, 0, 0), (0.1, 0.1, 0), (0, 0.1, 0), (0.05, 0.05, 0.05)]
    tile.CreatePointsAttr([at(*c) for c in corners])
    tile.CreateFaceVertexCountsAttr([4, 3, 3, 3, 3])
    tile.CreateFaceVertexIndicesAttr([0, 3, 2, 1, 0, 1, 4, 1, 2, 4, 2, 3, 4, 3, 0, 4])
    material = UsdShade.Material.Define(stage, "/World/Looks/Blue")
    shader = UsdShade.Shader.Define(stage, "/World/Looks/Blue/Surface")
    shader.CreateIdAttr("UsdPreviewSurface")
    shader.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f).Set(Gf.Vec3f(0.1, 0.2, 0.9))
    material.CreateSurfaceOutput().ConnectToSource(shader.ConnectableAPI(), "surface")
    UsdShade.MaterialBindingAPI.Apply(tile.GetPrim()).Bind(material)
    stage.GetRootLayer().Save()


def _shapes(path: Path) -> dict[str, object]:
    scene = load_scene(str(path), "unit")
    return {o.asset_id: o.shapes[0] for o in scene.objects}


def test_a_y_up_centimetre_scene_and_a_z_up_metre_scene_give_the_same_shapes(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "y_cm.usda", "Y", 0.01)
    _write(tmp_path / "z_m.usda", "Z", 1.0)
    y_cm, z_m = _shapes(tmp_path / "y_cm.usda"), _shapes(tmp_path / "z_m.usda")
    assert set(y_cm) == set(z_m) == {"Crate", "Ball", "Can", "Pill", "Tile"}
    for name, a in y_cm.items():
        b = z_m[name]
        assert a.kind == b.kind  # type: ignore[attr-defined]
        np.testing.assert_allclose(a.pose.position, b.pose.position, atol=1e-9)  # type: ignore[attr-defined]
        np.testing.assert_allclose(a.size, b.size, atol=1e-9)  # type: ignore[attr-defined]
        ra, rb = _rotation(a.pose.orientation), _rotation(b.pose.orientation)  # type: ignore[attr-defined]
        # The same extent along each world axis (a cube's own frame may be turned about it).
        np.testing.assert_allclose(np.abs(ra) @ a.size, np.abs(rb) @ b.size, atol=1e-9)  # type: ignore[attr-defined]
        if a.kind == "mesh":  # type: ignore[attr-defined]
            np.testing.assert_allclose(a.mesh.vertices, b.mesh.vertices, atol=1e-9)  # type: ignore[attr-defined]
    crate, can, pill, tile = z_m["Crate"], z_m["Can"], z_m["Pill"], z_m["Tile"]
    assert crate.kind == "box" and crate.size == pytest.approx((0.1,) * 3)  # type: ignore[attr-defined]
    assert crate.rgba == pytest.approx((0.8, 0.1, 0.1, 1.0))  # type: ignore[attr-defined]
    assert can.kind == "cylinder" and can.size == pytest.approx((0.03, 0.03, 0.06))  # type: ignore[attr-defined]
    np.testing.assert_allclose(np.abs(_rotation(can.pose.orientation)[:, 2]), [0, 0, 1], atol=1e-9)  # type: ignore[attr-defined]
    np.testing.assert_allclose(np.abs(_rotation(pill.pose.orientation)[:, 2]), [1, 0, 0], atol=1e-9)  # type: ignore[attr-defined]
    assert z_m["Ball"].kind == "sphere"  # type: ignore[attr-defined]
    assert tile.kind == "mesh" and len(tile.mesh.triangles) == 6  # type: ignore[attr-defined]
    assert tile.rgba == pytest.approx((0.1, 0.2, 0.9, 1.0))  # type: ignore[attr-defined]


def _rotation(q: tuple[float, float, float, float]) -> np.ndarray:
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def test_the_public_shape_scene_keeps_each_primitive_kind() -> None:
    scene = load_scene(str(SHELVES / "sdf_shapes_zup_cm" / "test" / "usd" / "upAxisZ.usda"), "s")
    kinds = {o.asset_id: {s.kind for s in o.shapes if s.collision} for o in scene.objects}
    assert kinds["box"] == {"box"} and kinds["sphere"] == {"sphere"}
    assert kinds["cylinder"] == {"cylinder"} and kinds["capsule"] == {"capsule"}
    assert kinds["ellipsoid"] == {"ellipsoid"}


def _poster(path: Path, up: str, metres_per_unit: float, texture_file: str, **kw: Any) -> None:
    """A 20 x 10 cm quad on a body, its texture's bottom-left at the body, u along x, v along y."""
    authored = WorldStage(path, up, metres_per_unit)
    corners = [(0.0, 0.0, 0.0), (0.2, 0.0, 0.0), (0.2, 0.1, 0.0), (0.0, 0.1, 0.0)]
    body = authored.body("Poster", 0.3, 0.2, 0.1)
    textured_quad(authored, body + "/Quad", corners, texture_file, **kw)
    authored.stage.GetRootLayer().Save()


@pytest.mark.parametrize(
    ("up", "metres_per_unit", "interpolation"),
    [("Z", 1.0, "faceVarying"), ("Y", 0.01, "faceVarying"), ("Z", 1.0, "vertex")],
)
def test_a_mesh_drawn_with_a_uv_texture_carries_the_image_and_its_corner_uv(
    tmp_path: Path, up: str, metres_per_unit: float, interpolation: str
) -> None:
    write_quadrant_png(tmp_path / "poster.png", 600, 300)
    _poster(
        tmp_path / "poster.usda", up, metres_per_unit, "./poster.png", interpolation=interpolation
    )
    (shape,) = load_scene(str(tmp_path / "poster.usda"), "s").objects[0].shapes
    assert shape.kind == "mesh" and shape.texture is not None and shape.mesh is not None
    texture, mesh = shape.texture, shape.mesh
    assert texture.asset_path == "./poster.png"
    # Downsampled to at most 256 px a side, the aspect kept; the PNG is the one it says.
    assert (texture.width, texture.height) == (256, 128)
    assert texture.sha256 == hashlib.sha256(texture.png).hexdigest()
    with Image.open(io.BytesIO(texture.png)) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (128, 256, 3)
    assert tuple(pixels[96, 64]) == RED and tuple(pixels[96, 192]) == BLUE
    assert tuple(pixels[32, 192]) == GREEN
    # One (u, v) per triangle corner, each the corner's place on the quad (u = x / 20 cm,
    # v = y / 10 cm), whichever way the primvar is stored.
    assert mesh.uv is not None and len(mesh.uv) == 3 * len(mesh.triangles) == 6
    corners = np.asarray(mesh.vertices)[np.asarray(mesh.triangles).ravel()]
    np.testing.assert_allclose(mesh.uv, corners[:, :2] / [0.2, 0.1], atol=1e-6)
    # The diffuse colour under the texture is kept for what cannot draw it.
    assert shape.rgba == pytest.approx((*FALLBACK_RGB, 1.0))


def test_a_textures_scale_and_bias_are_applied_to_the_image_carried(tmp_path: Path) -> None:
    write_quadrant_png(tmp_path / "poster.png", 64, 32)
    _poster(
        tmp_path / "poster.usda",
        "Z",
        1.0,
        "./poster.png",
        scale=(0.5, 1.0, 2.0, 1.0),
        bias=(0.0, 0.25, 0.0, 0.0),
    )
    (shape,) = load_scene(str(tmp_path / "poster.usda"), "s").objects[0].shapes
    assert shape.texture is not None
    with Image.open(io.BytesIO(shape.texture.png)) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    # red (255, 0, 0) -> (128, 64, 0); blue (0, 0, 255) -> (0, 64, 255), clipped at 1.
    np.testing.assert_allclose(pixels[24, 16], (128, 64, 0), atol=1)
    np.testing.assert_allclose(pixels[24, 48], (0, 64, 255), atol=1)


def test_a_texture_scale_authored_as_one_number_is_ignored(tmp_path: Path) -> None:
    write_quadrant_png(tmp_path / "poster.png", 64, 32)
    _poster(tmp_path / "poster.usda", "Z", 1.0, "./poster.png")
    stage = Usd.Stage.Open(str(tmp_path / "poster.usda"))
    (image,) = [UsdShade.Shader(p) for p in stage.Traverse() if p.GetName() == "Image"]
    image.CreateInput("scale", Sdf.ValueTypeNames.Float).Set(0.5)
    stage.GetRootLayer().Save()
    (shape,) = load_scene(str(tmp_path / "poster.usda"), "s").objects[0].shapes
    assert shape.texture is not None
    with Image.open(io.BytesIO(shape.texture.png)) as image_file:
        assert tuple(np.asarray(image_file.convert("RGB"))[24, 16]) == RED


def test_a_texture_whose_file_is_missing_leaves_the_diffuse_colour_without_alarm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _poster(tmp_path / "poster.usda", "Z", 1.0, "./missing.png")
    with caplog.at_level(logging.INFO):
        (shape,) = load_scene(str(tmp_path / "poster.usda"), "s").objects[0].shapes
    assert shape.kind == "mesh" and shape.texture is None
    assert shape.mesh is not None and shape.mesh.uv is None
    assert shape.rgba == pytest.approx((*FALLBACK_RGB, 1.0))
    assert not [r for r in caplog.records if "missing.png" in r.getMessage()]


def test_a_texture_outside_the_scenes_folder_is_not_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    scene = tmp_path / "scene"
    scene.mkdir()
    write_quadrant_png(tmp_path / "elsewhere.png", 8, 8)
    _poster(scene / "poster.usda", "Z", 1.0, str(tmp_path / "elsewhere.png"))
    with caplog.at_level(logging.WARNING):
        (shape,) = load_scene(str(scene / "poster.usda"), "s").objects[0].shapes
    assert shape.texture is None and shape.mesh is not None and shape.mesh.uv is None
    assert shape.rgba == pytest.approx((*FALLBACK_RGB, 1.0))
    assert any("outside the scene's folder" in r.getMessage() for r in caplog.records)
