"""A shape's carried diffuse texture as MuJoCo draws it: a 2D texture, a material, texcoords.

The scene graph holds the image as a PNG inline and the texture coordinates per triangle
corner, with (0, 0) at the image's bottom-left as USD has it. MuJoCo takes the texture's first
row of pixels as v = 0, so v is turned over here. A material binds the texture in its RGB role;
its colour multiplies the texture's, which is how the episode's randomised colour scale still
applies to a textured object.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import mujoco
import numpy as np
from bp_scene_contract import Texture
from PIL import Image


def add_texture(spec: mujoco.MjSpec, texture: Texture) -> str:
    """The name of a 2D texture holding `texture`'s pixels, added once per image."""
    name = f"texture/{texture.sha256[:16]}"
    if spec.texture(name) is not None:
        return name
    with Image.open(io.BytesIO(texture.png)) as opened:
        pixels = np.asarray(opened.convert("RGB"), dtype=np.uint8)
    height, width, channels = pixels.shape
    added = spec.add_texture(
        name=name,
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        width=width,
        height=height,
        nchannel=channels,
    )
    added.data = pixels.tobytes()
    return name


def add_textured_material(
    spec: mujoco.MjSpec, name: str, texture: Texture, rgba: Sequence[float]
) -> str:
    """A material named `name` drawing `texture` scaled by `rgba`; its name."""
    material = spec.add_material(name=name)
    material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = add_texture(spec, texture)
    material.rgba = list(rgba)
    return name


def texture_coordinates(uv: Sequence[tuple[float, float]]) -> tuple[list[float], list[int]]:
    """MuJoCo's `usertexcoord` and `userfacetexcoord` for a (u, v) per triangle corner."""
    flipped = np.asarray(uv, dtype=float).reshape(-1, 2) * [1.0, -1.0] + [0.0, 1.0]
    return flipped.ravel().tolist(), list(range(len(flipped)))
