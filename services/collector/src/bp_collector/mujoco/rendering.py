"""Offscreen camera capture: RGB, depth in millimetres and segmentation ids for one frame.

One MuJoCo renderer is shared by all cameras of a world. Shadows, reflections and
multisampling are off: they cost most of the CPU rendering time and add nothing a policy needs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import mujoco
import numpy as np

from bp_collector.mujoco.world import World

DEPTH_MAX_MM = np.iinfo(np.uint16).max


class RenderingUnavailable(RuntimeError):
    """No offscreen OpenGL backend: MuJoCo was imported without MUJOCO_GL=egl or osmesa."""


def _check_gl_backend() -> None:
    from mujoco import gl_context

    backend = getattr(getattr(gl_context, "GLContext", None), "__module__", "")
    if not backend or (backend.startswith("mujoco.glfw") and not os.environ.get("DISPLAY")):
        raise RenderingUnavailable(
            f"MuJoCo's OpenGL backend is {backend or 'none'!r} and there is no display: set "
            "MUJOCO_GL=egl (or osmesa) before mujoco is first imported, or import bp_collector "
            "first, which sets it"
        )


@dataclass(frozen=True)
class CameraImages:
    rgb: np.ndarray
    depth_mm: np.ndarray
    segmentation: np.ndarray


class CameraRig:
    """Renders every camera of a world from a physics state."""

    def __init__(self, world: World, width: int, height: int) -> None:
        _check_gl_backend()
        self.world = world
        self.renderer = mujoco.Renderer(world.model, height=height, width=width)
        flags = self.renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = 0
        self.far_m = float(world.model.vis.map.zfar * world.model.stat.extent)
        self.width = width
        self.height = height

    def capture(self, data: mujoco.MjData, camera: str) -> CameraImages:
        r = self.renderer
        r.update_scene(data, camera=self.world.camera_name(camera))
        rgb = r.render().copy()
        r.enable_depth_rendering()
        depth = r.render()
        r.disable_depth_rendering()
        r.enable_segmentation_rendering()
        seg = r.render()
        r.disable_segmentation_rendering()
        # Pixels at the far plane saw nothing: 0 marks them invalid, as depth sensors do.
        depth_mm = np.rint(np.clip(depth, 0.0, DEPTH_MAX_MM / 1000.0) * 1000.0).astype(np.uint16)
        depth_mm[depth >= self.far_m * 0.999] = 0
        ids = np.zeros(seg.shape[:2], dtype=np.uint16)
        is_geom = seg[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)
        ids[is_geom] = self.world.geom_entity[seg[..., 0][is_geom]]
        return CameraImages(rgb=rgb, depth_mm=depth_mm, segmentation=ids)

    def close(self) -> None:
        self.renderer.close()
