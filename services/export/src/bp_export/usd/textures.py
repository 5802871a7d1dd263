"""A mesh's diffuse texture as the scene graph carries it: a small PNG and a (u, v) per corner.

A bound UsdPreviewSurface whose `diffuseColor` is read from a `UsdUVTexture` has a texture; the
texture's `st` names the mesh primvar holding the texture coordinates (through a
`UsdPrimvarReader_float2` and its `varname`). Connections are followed through material and
node-graph interfaces. The texture's `scale` and `bias` are applied to its pixels as carried
(value * scale + bias, per channel, clipped to [0, 1]). A texture whose file does not resolve,
or that Pillow cannot read, is not an error of the scene: the shape keeps its diffuse colour,
with a debug note.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from bp_scene_contract import Texture
from PIL import Image, UnidentifiedImageError
from pxr import Ar, Sdf, Usd, UsdGeom, UsdShade

log = logging.getLogger(__name__)

MAX_TEXTURE_SIDE = 256
"""Longest side of a carried texture, in pixels. The cameras see an object at tens of pixels,
so more detail would never reach an image, and the scene graph stays a document, not an asset
store: a 4K texture inline would outweigh the rest of the scene many times over."""

_CHANNELS = ("r", "g", "b", "a")
"""UsdUVTexture's single-channel outputs: a diffuse colour read from one is grey."""

Float4 = tuple[float, float, float, float]
NO_SCALE: Float4 = (1.0, 1.0, 1.0, 1.0)
NO_BIAS: Float4 = (0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class DiffuseTexture:
    """Where a mesh's diffuse colour comes from: an image file, one of its outputs, a primvar."""

    asset_path: str
    """As authored, for the record."""
    resolved_path: str
    output: str
    """The UsdUVTexture output the diffuse colour reads: `rgb`, or one channel (`r`...`a`)."""
    varname: str
    """The mesh primvar holding the texture coordinates (commonly `st`)."""
    scale: Float4 = NO_SCALE
    bias: Float4 = NO_BIAS
    """UsdUVTexture's `scale` and `bias`: each channel is read as value * scale + bias."""


def bound_preview_surface(prim: Usd.Prim) -> UsdShade.Shader | None:
    """The UsdPreviewSurface of the prim's bound material, if that is its surface."""
    material, _ = UsdShade.MaterialBindingAPI(prim).ComputeBoundMaterial()
    if not material:
        return None
    surface = material.ComputeSurfaceSource()[0]
    if not surface or surface.GetIdAttr().Get() != "UsdPreviewSurface":
        return None
    return surface


def _source_output(shader: UsdShade.Shader, name: str) -> Usd.Attribute | None:
    """The shader output that in the end feeds input `name`, through any interface."""
    shader_input = shader.GetInput(name)
    if not shader_input:
        return None
    for attribute in shader_input.GetValueProducingAttributes(shaderOutputsOnly=True):
        if UsdShade.Output.IsOutput(attribute):
            return attribute
    return None


def _input_value(shader: UsdShade.Shader, name: str) -> object:
    """The value input `name` takes, from an interface input it is connected to or its own."""
    shader_input = shader.GetInput(name)
    if not shader_input:
        return None
    for attribute in shader_input.GetValueProducingAttributes():
        if UsdShade.Input.IsInput(attribute):
            return attribute.Get()
    return shader_input.Get()


def _shader_of(output: Usd.Attribute, shader_id: str) -> UsdShade.Shader | None:
    shader = UsdShade.Shader(output.GetPrim())
    if not shader or shader.GetIdAttr().Get() != shader_id:
        return None
    return shader


def diffuse_texture(prim: Usd.Prim) -> DiffuseTexture | None:
    """The image the prim's diffuse colour is read from, when it is one that can be carried."""
    surface = bound_preview_surface(prim)
    if surface is None:
        return None
    output = _source_output(surface, "diffuseColor")
    reader = _shader_of(output, "UsdUVTexture") if output is not None else None
    if output is None or reader is None:
        return None
    where = str(prim.GetPath())
    channel = UsdShade.Output(output).GetBaseName()
    if channel != "rgb" and channel not in _CHANNELS:
        log.debug("%s: diffuse colour reads texture output %r; colour kept", where, channel)
        return None
    asset = _input_value(reader, "file")
    if not isinstance(asset, Sdf.AssetPath) or not asset.path:
        return None
    if not asset.resolvedPath:
        log.debug("%s: texture %s does not resolve; diffuse colour kept", where, asset.path)
        return None
    if not _inside_scene(prim, asset.resolvedPath):
        # As for composed layers: a file outside the drop is never opened, so a scene cannot
        # have the export read (and publish) images from elsewhere on the machine.
        log.warning(
            "%s: texture %s lies outside the scene's folder; not read, colour kept",
            where,
            asset.path,
        )
        return None
    st = _source_output(reader, "st")
    primvar_reader = _shader_of(st, "UsdPrimvarReader_float2") if st is not None else None
    varname = _input_value(primvar_reader, "varname") if primvar_reader is not None else None
    if not varname:
        log.debug("%s: texture %s reads no primvar for st; colour kept", where, asset.path)
        return None
    return DiffuseTexture(
        asset.path,
        asset.resolvedPath,
        channel,
        str(varname),
        _float4(reader, "scale", NO_SCALE),
        _float4(reader, "bias", NO_BIAS),
    )


def _float4(shader: UsdShade.Shader, name: str, default: Float4) -> Float4:
    """Input `name` as four finite numbers; `default` when it is unset or authored otherwise."""
    value = _input_value(shader, name)
    try:
        x, y, z, w = (float(c) for c in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return default
    return (x, y, z, w) if np.isfinite((x, y, z, w)).all() else default


def _inside_scene(prim: Usd.Prim, resolved: str) -> bool:
    """Is the file (a package's, for a file inside a .usdz) in the root layer's folder?"""
    root = prim.GetStage().GetRootLayer().realPath
    if not root or "://" in resolved:
        return False
    folder = Path(root).parent.resolve()
    return Path(resolved.split("[", 1)[0]).resolve().is_relative_to(folder)


def texture_record(found: DiffuseTexture, where: str) -> Texture | None:
    """The image as the scene graph holds it, or None (with a note) when it cannot be read."""
    resolved = Ar.ResolvedPath(found.resolved_path)
    stamp = Ar.GetResolver().GetModificationTimestamp(found.asset_path, resolved)
    changed = stamp.GetTime() if stamp.IsValid() else None
    try:
        return _encoded(
            found.resolved_path, found.output, found.asset_path, changed, found.scale, found.bias
        )
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        log.debug("%s: texture %s is unreadable (%s); colour kept", where, found.asset_path, error)
        return None


@lru_cache(maxsize=64)
def _encoded(
    resolved_path: str,
    output: str,
    asset_path: str,
    changed: float | None,
    scale: Float4 = NO_SCALE,
    bias: Float4 = NO_BIAS,
) -> Texture:
    """Read through USD's resolver (so a file inside a .usdz package reads too), no side over
    MAX_TEXTURE_SIDE, to RGB with scale and bias applied, as PNG. Cached, since the meshes of a
    scene often share a texture; `changed` (the file's modification time) keys the cache so an
    edit is seen."""
    asset = Ar.GetResolver().OpenAsset(Ar.ResolvedPath(resolved_path))
    if asset is None:
        raise OSError(f"USD's resolver cannot open {resolved_path}")
    with Image.open(io.BytesIO(asset.GetBuffer())) as opened:
        image = opened.convert("RGBA")
    image.thumbnail((MAX_TEXTURE_SIDE, MAX_TEXTURE_SIDE), Image.Resampling.LANCZOS)
    # The diffuse colour is RGB (how opaque the surface is comes from the shape's rgba); one
    # channel read alone is grey.
    channels = [0, 1, 2] if output == "rgb" else 3 * [_CHANNELS.index(output)]
    values = np.asarray(image, dtype=float)[..., channels] / 255.0
    values = values * np.take(scale, channels) + np.take(bias, channels)
    image = Image.fromarray(np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return Texture.from_png(buffer.getvalue(), asset_path)


def corner_uv(
    mesh: UsdGeom.Mesh,
    varname: str,
    corners: np.ndarray,
    corner_faces: np.ndarray,
) -> tuple[tuple[float, float], ...] | None:
    """The texture coordinates of each triangle corner, from primvar `varname`.

    `corners` are the triangle corners as positions in the mesh's face-vertex list, and
    `corner_faces` the face each belongs to. The primvar's indices are applied, and its
    interpolation says what it holds one value for: a point (vertex, varying), a face-vertex
    (faceVarying), a face (uniform) or the whole mesh (constant). None when it has no value
    that fits.
    """
    primvar = UsdGeom.PrimvarsAPI(mesh.GetPrim()).GetPrimvar(varname)
    if not primvar or not primvar.HasValue() or primvar.GetElementSize() != 1:
        return None
    flattened = primvar.ComputeFlattened()
    if flattened is None:
        return None
    values = np.asarray(flattened, dtype=float)
    if values.ndim != 2 or values.shape[1] != 2 or not np.isfinite(values).all():
        return None
    indices = np.asarray(mesh.GetFaceVertexIndicesAttr().Get(), dtype=np.int64)
    interpolation = primvar.GetInterpolation()
    if interpolation in (UsdGeom.Tokens.vertex, UsdGeom.Tokens.varying):
        per_corner = indices[corners]
    elif interpolation == UsdGeom.Tokens.faceVarying:
        per_corner = corners
    elif interpolation == UsdGeom.Tokens.uniform:
        per_corner = corner_faces
    elif interpolation == UsdGeom.Tokens.constant:
        per_corner = np.zeros_like(corners)
    else:
        return None
    if len(per_corner) and int(per_corner.max()) >= len(values):
        return None
    return tuple((round(float(u), 6), round(float(v), 6)) for u, v in values[per_corner])
