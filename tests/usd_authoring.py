"""Scenes written for tests in any up axis and unit, from points given Z up in metres."""

from __future__ import annotations

from pathlib import Path

from pxr import Gf, Usd, UsdGeom, UsdPhysics


class WorldStage:
    """A new stage under /World, authored with `up` as its up axis and `metres_per_unit`."""

    def __init__(self, path: Path, up: str, metres_per_unit: float) -> None:
        self.up = up
        self.k = 1.0 / metres_per_unit
        self.stage = Usd.Stage.CreateNew(str(path))
        UsdGeom.SetStageUpAxis(self.stage, up)
        UsdGeom.SetStageMetersPerUnit(self.stage, metres_per_unit)
        world = UsdGeom.Xform.Define(self.stage, "/World")
        self.stage.SetDefaultPrim(world.GetPrim())

    def at(self, x: float, y: float, z: float) -> Gf.Vec3d:
        """A world point (Z up, metres) in the stage's axes and unit."""
        k = self.k
        return Gf.Vec3d(x * k, z * k, -y * k) if self.up == "Y" else Gf.Vec3d(x * k, y * k, z * k)

    def body(self, name: str, x: float, y: float, z: float) -> str:
        """A rigid body /World/{name} at a world point; its path."""
        xform = UsdGeom.Xform.Define(self.stage, f"/World/{name}")
        xform.AddTranslateOp().Set(self.at(x, y, z))
        UsdPhysics.RigidBodyAPI.Apply(xform.GetPrim())
        return f"/World/{name}"
