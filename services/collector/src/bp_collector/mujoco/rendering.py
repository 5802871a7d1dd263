"""Offscreen camera capture: RGB, depth in millimetres and segmentation ids for one frame.

One OpenGL context is shared by all cameras of a world. Each capture renders the scene twice:
once lit, for the colours, and once with every geom painted its segmentation id, read back
together with the depth buffer (depth does not depend on colour, so one pass gives both; MuJoCo's
own `Renderer` would render three times). Shadows, reflections and multisampling are off: they
cost most of the CPU rendering time and add nothing a policy needs.
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
        from mujoco import gl_context

        model = world.model
        if width > model.vis.global_.offwidth or height > model.vis.global_.offheight:
            raise ValueError(
                f"{width}x{height} exceeds the model's offscreen buffer "
                f"({model.vis.global_.offwidth}x{model.vis.global_.offheight})"
            )
        self.world = world
        self.width = width
        self.height = height
        self._gl = gl_context.GLContext(width, height)
        self._gl.make_current()
        self._context: mujoco.MjrContext | None = mujoco.MjrContext(
            model, mujoco.mjtFontScale.mjFONTSCALE_100.value
        )
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN.value, self._context)
        # Reversed depth (1 at the near plane, 0 at the far one) keeps float precision far off.
        self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self.scene = mujoco.MjvScene(model, maxgeom=10_000)
        flags = self.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        flags[mujoco.mjtRndFlag.mjRND_SKYBOX] = 0
        self._option = mujoco.MjvOption()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._rect = mujoco.MjrRect(0, 0, width, height)
        extent = float(model.stat.extent)
        near, far = model.vis.map.znear * extent, model.vis.map.zfar * extent
        self.far_m = float(far)
        # The reversed-z perspective projection, undone per pixel: metres = d / (buffer + c).
        self._depth_c = 0.5 * (far + near) / (far - near) - 0.5
        self._depth_d = far * near / (far - near)
        self._rgb = np.empty((height, width, 3), dtype=np.uint8)
        self._ids = np.empty((height, width, 3), dtype=np.uint8)
        self._depth = np.empty((height, width), dtype=np.float32)

    def capture(self, data: mujoco.MjData, camera: str) -> CameraImages:
        if self._context is None:
            raise RuntimeError("the camera rig is closed")
        model, scene = self.world.model, self.scene
        self._gl.make_current()
        self._camera.fixedcamid = model.camera(self.world.camera_name(camera)).id
        mujoco.mjv_updateScene(
            model, data, self._option, None, self._camera, mujoco.mjtCatBit.mjCAT_ALL.value, scene
        )
        mujoco.mjr_render(self._rect, scene, self._context)
        mujoco.mjr_readPixels(self._rgb, None, self._rect, self._context)
        scene.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 1
        scene.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 1
        try:
            mujoco.mjr_render(self._rect, scene, self._context)
            mujoco.mjr_readPixels(self._ids, self._depth, self._rect, self._context)
        finally:
            scene.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 0
            scene.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 0
        # OpenGL's rows run bottom to top.
        rgb = np.flipud(self._rgb).copy()
        depth = self._depth_d / (np.flipud(self._depth).astype(np.float64) + self._depth_c)
        # Pixels at the far plane saw nothing: 0 marks them invalid, as depth sensors do.
        depth_mm = np.rint(np.clip(depth, 0.0, DEPTH_MAX_MM / 1000.0) * 1000.0).astype(np.uint16)
        depth_mm[depth >= self.far_m * 0.999] = 0
        return CameraImages(rgb=rgb, depth_mm=depth_mm, segmentation=self._entities(scene))

    def _entities(self, scene: mujoco.MjvScene) -> np.ndarray:
        """Each pixel's entity id, from the id colour its scene geom was painted."""
        ids = np.flipud(self._ids).astype(np.int64)
        segid = ids[..., 0] + (ids[..., 1] << 8) + (ids[..., 2] << 16)
        # Id colour k + 1 paints the scene geom whose segid is k; 0 is the background.
        entity = np.zeros(scene.ngeom + 2, dtype=np.uint16)
        geom_entity = self.world.geom_entity
        for k in range(scene.ngeom):
            g = scene.geoms[k]
            if g.segid >= 0 and g.objtype == mujoco.mjtObj.mjOBJ_GEOM:
                entity[g.segid + 1] = geom_entity[g.objid]
        return np.asarray(entity[np.clip(segid, 0, scene.ngeom + 1)])

    def close(self) -> None:
        if self._context is not None:
            self._gl.make_current()
            self._context.free()
            self._context = None
            self._gl.free()
