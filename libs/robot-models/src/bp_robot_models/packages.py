"""Where each robot's model files live: inside installed packages, found without importing them.

The packages are read as data. Importing robosuite or gymnasium-robotics would pull in their
controllers and environments; `importlib.util.find_spec` and `importlib.metadata` only locate
the installed files. Nothing here is copied into the repository or downloaded at run time.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from pathlib import Path


class ModelPackageMissing(RuntimeError):
    """A robot's model package is not installed, so the robot cannot be built."""


@dataclass(frozen=True)
class ModelSource:
    """Which installed package a robot's model comes from, and under what licence."""

    package: str
    files: str
    licence: str


def _module_dir(module: str, package: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelPackageMissing(f"the {package} package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def robosuite_assets() -> Path:
    """robosuite's MJCF assets: robots/, grippers/ and their meshes."""
    return _module_dir("robosuite", "robosuite") / "models" / "assets"


def gymnasium_robotics_assets() -> Path:
    """gymnasium-robotics' MJCF assets: fetch/, stls/, textures/."""
    return _module_dir("gymnasium_robotics", "gymnasium-robotics") / "envs" / "assets"


def example_robot_data_robots() -> Path:
    """example-robot-data's robots folder (a cmeel wheel: data under site-packages/cmeel.prefix)."""
    try:
        dist = importlib.metadata.distribution("example-robot-data")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelPackageMissing("the example-robot-data package is not installed") from exc
    return Path(str(dist.locate_file("cmeel.prefix/share/example-robot-data/robots")))
