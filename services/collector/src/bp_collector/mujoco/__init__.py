"""The MuJoCo backend: episodes simulated, rendered and judged on the CPU."""

import os


def use_offscreen_gl() -> None:
    """MuJoCo picks its OpenGL backend when it is first imported; without a display only EGL or
    OSMesa can render, so choose EGL unless the caller already chose."""
    os.environ.setdefault("MUJOCO_GL", "egl")


use_offscreen_gl()
