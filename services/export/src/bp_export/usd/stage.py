"""Open a scene file with usd-core and prove that everything it composes resolves offline.

A sublayer, reference or payload that cannot be resolved (an https address, a path on someone
else's computer, a file that is not there) makes the scene unusable: the geometry it would bring
is simply absent, so the scene graph would be silently wrong. That is a permanent error naming
the asset. Textures and shader libraries do not change geometry: in a loose file they are only
reported, but a `.usdz` package is meant to be self-contained, so there a missing texture is an
error too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from pxr import Ar, Sdf, Tf, Usd, UsdGeom, UsdPhysics

from bp_export.scene_errors import (
    AssetOutsideScene,
    CompositionFailed,
    InvalidStageMetadata,
    MissingDefaultPrim,
    SceneTooLarge,
    SceneUnparsable,
    UnresolvedAsset,
    UnsupportedSceneFormat,
)
from bp_export.usd.world_frame import StageFrame

SCENE_SUFFIXES = (".usda", ".usd", ".usdc", ".usdz")
DEFAULT_MAX_SCENE_BYTES = 512 * 1024 * 1024
DEFAULT_MAX_OBJECTS = 1000
# The units a scene may be authored in: a tenth of a millimetre to a kilometre. Outside, a
# tabletop scene is either smaller than a grain of sand or larger than a town: a unit mistake.
METERS_PER_UNIT_RANGE = (1e-4, 1e3)
_MAX_LISTED_WARNINGS = 20


@dataclass(frozen=True)
class OpenedStage:
    """A composed stage whose arcs all resolved, with its validated frame metadata."""

    stage: Usd.Stage
    path: Path
    frame: StageFrame
    up_axis_authored: bool
    meters_per_unit_authored: bool
    kilograms_per_unit: float
    default_prim: Usd.Prim | None
    layers: tuple[str, ...]
    """Every file layer composed: the root layer first, then the others sorted."""
    warnings: tuple[str, ...]


def open_scene_stage(
    path: Path,
    scene_id: str,
    *,
    max_bytes: int = DEFAULT_MAX_SCENE_BYTES,
    require_default_prim: bool = False,
) -> OpenedStage:
    """Open `path`, load every payload, and check composition, assets and stage metadata."""
    path = Path(path)
    _check_file(path, scene_id, max_bytes)
    # usd-core keeps layers in a registry while anything holds them; a file rewritten since
    # (a re-upload) must not be served from there.
    already_open = Sdf.Layer.Find(str(path)) is not None
    _check_confined(path, scene_id)
    try:
        stage = Usd.Stage.Open(str(path), Usd.Stage.LoadAll)
        if stage is not None and already_open:
            stage.Reload()
    except Tf.ErrorException as exc:
        raise SceneUnparsable(
            "usd-core cannot read the scene file",
            scene_id=scene_id,
            field=path.name,
            detail=_first_error_line(exc),
        ) from exc
    if stage is None:
        raise SceneUnparsable(
            "usd-core cannot read the scene file", scene_id=scene_id, field=path.name
        )

    warnings: list[str] = []
    _check_composition(stage, scene_id, warnings)
    _check_non_composition_assets(stage, scene_id, path.suffix.lower() == ".usdz", warnings)
    frame, up_authored, mpu_authored = _read_frame(stage, scene_id, warnings)
    kilograms_per_unit = _read_kilograms_per_unit(stage, scene_id)
    default_prim = _read_default_prim(stage, scene_id, require_default_prim)
    root = stage.GetRootLayer().realPath
    others = {
        layer.realPath
        for layer in stage.GetUsedLayers()
        if not layer.anonymous and layer.realPath and layer.realPath != root
    }
    layers = (root, *sorted(others))
    return OpenedStage(
        stage=stage,
        path=path,
        frame=frame,
        up_axis_authored=up_authored,
        meters_per_unit_authored=mpu_authored,
        kilograms_per_unit=kilograms_per_unit,
        default_prim=default_prim,
        layers=layers,
        warnings=tuple(warnings),
    )


def _check_file(path: Path, scene_id: str, max_bytes: int) -> None:
    if path.suffix.lower() not in SCENE_SUFFIXES:
        raise UnsupportedSceneFormat(
            f"scene file must end in one of {', '.join(SCENE_SUFFIXES)}",
            scene_id=scene_id,
            field=path.name,
        )
    if not path.is_file():
        raise SceneUnparsable("scene file does not exist", scene_id=scene_id, field=str(path))
    size = path.stat().st_size
    if size > max_bytes:
        raise SceneTooLarge(
            f"scene file is {size} bytes, more than the {max_bytes} allowed",
            scene_id=scene_id,
            field=path.name,
            size=size,
            max_bytes=max_bytes,
        )
    if size == 0:
        raise SceneUnparsable("scene file is empty", scene_id=scene_id, field=path.name)


def _check_confined(path: Path, scene_id: str) -> None:
    """Every sublayer, reference and payload stays inside the scene's folder, checked layer by
    layer before anything is composed, so a file outside the drop is never opened."""
    folder = path.parent.resolve()
    outside: list[str] = []
    try:
        root = Sdf.Layer.FindOrOpen(str(path))
    except Tf.ErrorException:
        return  # not a layer at all: opening the stage reports it as unparsable
    pending, seen = [root] if root else [], {str(path)}
    while pending:
        layer = pending.pop()
        for asset in layer.GetCompositionAssetDependencies():
            if not asset:
                continue
            absolute = layer.ComputeAbsolutePath(asset)
            # a file inside a .usdz is `package.usdz[inner.usda]`: the package is what counts
            file = absolute.split("[", 1)[0]
            if "://" in asset or ":" in file.split("/", 1)[0] or not _inside(file, folder):
                outside.append(asset)
                continue
            if absolute in seen or not Path(file).is_file():
                continue  # a cycle, or missing: composition names it
            seen.add(absolute)
            try:
                child = Sdf.Layer.FindOrOpen(absolute)
            except Tf.ErrorException:
                continue  # not a layer: composition names it
            if child:
                pending.append(child)
    if outside:
        raise AssetOutsideScene(
            "the scene composes files outside its own folder (.., absolute paths or URLs)",
            assets=outside,
            scene_id=scene_id,
        )


def _inside(file: str, folder: Path) -> bool:
    return Path(file).resolve().is_relative_to(folder)


def _first_error_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


def _check_composition(stage: Usd.Stage, scene_id: str, warnings: list[str]) -> None:
    errors = list(stage.GetCompositionErrors())
    unresolved = _unresolved_composition_assets(stage)
    if errors and unresolved:
        raise UnresolvedAsset(
            "the scene composes assets that cannot be resolved offline",
            assets=unresolved,
            scene_id=scene_id,
        )
    if errors:
        raise CompositionFailed(
            "USD composition failed",
            scene_id=scene_id,
            detail="; ".join(str(e) for e in errors[:5]),
        )
    # Without a composition error an unresolvable path can only sit in an unselected variant.
    warnings.extend(f"unselected variant names an unresolvable asset: {a}" for a in unresolved)


def _unresolved_composition_assets(stage: Usd.Stage) -> list[str]:
    resolver = Ar.GetResolver()
    missing: list[str] = []
    for layer in stage.GetUsedLayers():
        for asset_path in layer.GetCompositionAssetDependencies():
            if not asset_path:
                continue
            if not resolver.Resolve(layer.ComputeAbsolutePath(asset_path)):
                missing.append(asset_path)
    return sorted(set(missing))


def _check_non_composition_assets(
    stage: Usd.Stage, scene_id: str, is_package: bool, warnings: list[str]
) -> None:
    missing: set[str] = set()
    for prim in stage.Traverse():
        for attr in prim.GetAuthoredAttributes():
            type_name = attr.GetTypeName()
            if type_name not in (Sdf.ValueTypeNames.Asset, Sdf.ValueTypeNames.AssetArray):
                continue
            # Shader implementation sources name renderer libraries found on the renderer's
            # own search path, and ui: icons belong to an editor: neither travels with a scene.
            if attr.GetName().startswith(("info:", "ui:")):
                continue
            value = attr.Get()
            values = [value] if isinstance(value, Sdf.AssetPath) else list(value or [])
            for asset in values:
                if asset.path and not asset.resolvedPath:
                    missing.add(asset.path)
    if missing and is_package:
        raise UnresolvedAsset(
            "the .usdz package refers to files it does not contain",
            assets=sorted(missing),
            scene_id=scene_id,
        )
    listed = sorted(missing)
    warnings.extend(f"unresolved non-geometry asset: {a}" for a in listed[:_MAX_LISTED_WARNINGS])
    if len(listed) > _MAX_LISTED_WARNINGS:
        warnings.append(f"... and {len(listed) - _MAX_LISTED_WARNINGS} more unresolved assets")


def _read_frame(
    stage: Usd.Stage, scene_id: str, warnings: list[str]
) -> tuple[StageFrame, bool, bool]:
    up_authored = stage.HasAuthoredMetadata("upAxis")
    up_axis = str(UsdGeom.GetStageUpAxis(stage))
    if up_axis not in ("Y", "Z"):
        raise InvalidStageMetadata(
            "upAxis must be Y or Z", scene_id=scene_id, field="upAxis", value=repr(up_axis)
        )
    if not up_authored:
        warnings.append(f"upAxis not authored; using the USD fallback {up_axis}")
    mpu_authored = UsdGeom.StageHasAuthoredMetersPerUnit(stage)
    meters_per_unit = float(UsdGeom.GetStageMetersPerUnit(stage))
    if not math.isfinite(meters_per_unit) or meters_per_unit <= 0:
        raise InvalidStageMetadata(
            "metersPerUnit must be a positive number",
            scene_id=scene_id,
            field="metersPerUnit",
            value=repr(meters_per_unit),
        )
    low, high = METERS_PER_UNIT_RANGE
    if not low <= meters_per_unit <= high:
        raise InvalidStageMetadata(
            f"metersPerUnit must lie between {low:g} and {high:g}: a unit mistake",
            scene_id=scene_id,
            field="metersPerUnit",
            value=repr(meters_per_unit),
        )
    if not mpu_authored:
        warnings.append(f"metersPerUnit not authored; using the USD fallback {meters_per_unit}")
    frame = StageFrame(up_axis="Y" if up_axis == "Y" else "Z", meters_per_unit=meters_per_unit)
    return frame, up_authored, mpu_authored


def _read_kilograms_per_unit(stage: Usd.Stage, scene_id: str) -> float:
    kilograms_per_unit = float(UsdPhysics.GetStageKilogramsPerUnit(stage))
    if not math.isfinite(kilograms_per_unit) or kilograms_per_unit <= 0:
        raise InvalidStageMetadata(
            "kilogramsPerUnit must be a positive number",
            scene_id=scene_id,
            field="kilogramsPerUnit",
            value=repr(kilograms_per_unit),
        )
    return kilograms_per_unit


def _read_default_prim(stage: Usd.Stage, scene_id: str, required: bool) -> Usd.Prim | None:
    root = stage.GetRootLayer()
    if root.HasDefaultPrim():
        prim = stage.GetDefaultPrim()
        if not prim or not prim.IsValid():
            raise MissingDefaultPrim(
                "defaultPrim names a prim that does not exist",
                scene_id=scene_id,
                field="defaultPrim",
                value=repr(root.defaultPrim),
            )
        return prim
    if required:
        raise MissingDefaultPrim(
            "the scene has no defaultPrim", scene_id=scene_id, field="defaultPrim"
        )
    return None
