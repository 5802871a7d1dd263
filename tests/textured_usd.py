"""A textured quad for tests: a real PNG written with Pillow, read by a UsdPreviewSurface's
diffuse colour through a UsdUVTexture and a `st` primvar reader, as DCC tools author it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from pxr import Gf, Sdf, UsdGeom, UsdShade, Vt

from tests.usd_authoring import WorldStage

RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 255, 0)
FALLBACK_RGB = (0.5, 0.5, 0.5)
"""The diffuse colour authored under the texture: what is seen when the texture is not."""


def write_quadrant_png(path: Path, width: int, height: int) -> None:
    """Left half red; right half blue below and green above (top as the image is viewed)."""
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = RED
    pixels[:, width // 2 :] = BLUE
    pixels[: height // 2, width // 2 :] = GREEN
    Image.fromarray(pixels, "RGB").save(path)


def textured_quad(
    authored: WorldStage,
    path: str,
    corners: list[tuple[float, float, float]],
    texture_file: str,
    *,
    interpolation: str = "faceVarying",
    scale: tuple[float, float, float, float] | None = None,
    bias: tuple[float, float, float, float] | None = None,
) -> UsdGeom.Mesh:
    """A quad at `corners` (world, Z up, metres; relative to its parent's origin) whose
    texture's bottom-left is at corners[0], bottom-right at [1], top-right at [2]."""
    stage = authored.stage
    quad = UsdGeom.Mesh.Define(stage, path)
    quad.CreatePointsAttr([authored.at(*c) for c in corners])
    quad.CreateFaceVertexCountsAttr([4])
    quad.CreateFaceVertexIndicesAttr([0, 1, 2, 3])
    st = UsdGeom.PrimvarsAPI(quad.GetPrim()).CreatePrimvar(
        "st", Sdf.ValueTypeNames.TexCoord2fArray, interpolation
    )
    square = [Gf.Vec2f(0, 0), Gf.Vec2f(1, 0), Gf.Vec2f(1, 1), Gf.Vec2f(0, 1)]
    if interpolation == "faceVarying":
        # Indexed, as exporters often write it: each value once, an index per face-vertex
        # (here out of order, so that a reader ignoring the indices gets them wrong).
        st.Set(Vt.Vec2fArray([square[1], square[2], square[3], square[0]]))
        st.SetIndices(Vt.IntArray([3, 0, 1, 2]))
    else:
        st.Set(Vt.Vec2fArray(square))

    looks = f"/World/Looks{path.replace('/', '_')}"
    material = UsdShade.Material.Define(stage, looks)
    surface = UsdShade.Shader.Define(stage, f"{looks}/Surface")
    surface.CreateIdAttr("UsdPreviewSurface")
    diffuse = surface.CreateInput("diffuseColor", Sdf.ValueTypeNames.Color3f)
    diffuse.Set(Gf.Vec3f(*FALLBACK_RGB))
    image = UsdShade.Shader.Define(stage, f"{looks}/Image")
    image.CreateIdAttr("UsdUVTexture")
    image.CreateInput("file", Sdf.ValueTypeNames.Asset).Set(texture_file)
    for name, value in (("scale", scale), ("bias", bias)):
        if value is not None:
            image.CreateInput(name, Sdf.ValueTypeNames.Float4).Set(Gf.Vec4f(*value))
    reader = UsdShade.Shader.Define(stage, f"{looks}/Reader")
    reader.CreateIdAttr("UsdPrimvarReader_float2")
    reader.CreateInput("varname", Sdf.ValueTypeNames.Token).Set("st")
    image.CreateInput("st", Sdf.ValueTypeNames.Float2).ConnectToSource(
        reader.CreateOutput("result", Sdf.ValueTypeNames.Float2)
    )
    diffuse.ConnectToSource(image.CreateOutput("rgb", Sdf.ValueTypeNames.Float3))
    material.CreateSurfaceOutput().ConnectToSource(surface.ConnectableAPI(), "surface")
    UsdShade.MaterialBindingAPI.Apply(quad.GetPrim()).Bind(material)
    return quad
