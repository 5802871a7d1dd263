"""Reconcile a scene manifest with the USD it describes, or derive a manifest from the USD alone.

Manifest ids match USD objects by prim name, either exactly or in the upstream form where the
object `id` lives at `/World/Objects/obj_{id}`. Objects missing on either side, a different up
axis or unit, or masses that disagree, are one permanent `ManifestMismatch` listing everything
that differs. Where the manifest is silent (no role, no affordances, no class), the value is
inferred from the USD (see `scene.roles`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bp_scene_contract import SimRole

from bp_export.scene.manifest import ManifestObject, SceneManifest, find_manifest, load_manifest
from bp_export.scene.model import SceneModel, SceneObject
from bp_export.scene.roles import infer_role
from bp_export.scene_errors import ManifestMismatch
from bp_export.usd.semantics import name_class
from bp_export.usd.world_frame import (
    StageFrame,
    pipeline_point_to_stage,
    pipeline_rotation_to_stage,
    stage_point_to_pipeline,
)

MASS_TOLERANCE = 0.05
"""Relative difference above which manifest and USD masses disagree."""
POSITION_TOLERANCE_M = 0.05
MANIFEST_VERSION = "1.0"


@dataclass(frozen=True)
class ObjectDescription:
    """What the pipeline knows about one object once USD and manifest agree."""

    asset_id: str
    manifest_id: str
    semantic: str
    sim_role: SimRole
    affordances: tuple[str, ...]
    description: str | None
    licence: str | None
    source: str | None
    asset_path: str | None
    mass_kg: float | None
    friction: float | None


@dataclass(frozen=True)
class ReconciledScene:
    """A scene together with its (given or derived) manifest, object by object."""

    scene: SceneModel
    manifest: SceneManifest
    manifest_derived: bool
    objects: Mapping[str, ObjectDescription]
    warnings: tuple[str, ...]


def reconcile_scene(
    scene: SceneModel, scene_path: Path | None = None, manifest: SceneManifest | None = None
) -> ReconciledScene:
    """Use `manifest`, else the manifest beside `scene_path`, else one derived from the USD."""
    if manifest is None and scene_path is not None:
        found = find_manifest(Path(scene_path))
        if found is not None:
            manifest = load_manifest(found, scene.scene_id)
    if manifest is None:
        derived = derive_manifest(scene)
        return _reconcile(scene, derived, derived=True)
    return _reconcile(scene, manifest, derived=False)


def derive_manifest(scene: SceneModel) -> SceneManifest:
    """A manifest describing the USD, in the USD's own frame and units."""
    frame = _stage_frame(scene)
    objects = []
    for obj in scene.objects:
        semantic = obj.semantics.primary_class or name_class(obj.name)
        inferred = infer_role(obj, semantic, scene.joints_of(obj.asset_id))
        position = pipeline_point_to_stage(frame, obj.pose.position)
        w, x, y, z = pipeline_rotation_to_stage(frame, obj.pose.orientation)
        width, depth, height = obj.bbox.size
        objects.append(
            {
                "id": obj.asset_id,
                "name": obj.name,
                "category": semantic,
                "sim_role": inferred.sim_role,
                "asset": {
                    "path": _relative_asset_path(scene, obj),
                    "source": _custom_text(obj.custom_data, ("source", "asset_source")),
                    "license": _custom_text(obj.custom_data, ("license", "licence")),
                },
                "transform": {
                    "position": list(position),
                    "rotation_quaternion": {"w": w, "x": x, "y": y, "z": z},
                },
                "dimensions_est": {"width": width, "depth": depth, "height": height},
                "semantics": {"class": semantic, "affordances": list(inferred.affordances)},
                "physics": {
                    "mass": obj.physics.mass_kg,
                    "friction": obj.physics.friction,
                    "restitution": obj.physics.restitution,
                },
                "articulation": _articulation_summary(scene, obj),
            }
        )
    return SceneManifest.model_validate(
        {
            "version": MANIFEST_VERSION,
            "scene_id": scene.scene_id,
            "scene": {
                "coordinate_frame": "y_up" if scene.authored_up_axis == "Y" else "z_up",
                "meters_per_unit": scene.authored_meters_per_unit,
            },
            "objects": objects,
        }
    )


def _reconcile(scene: SceneModel, manifest: SceneManifest, *, derived: bool) -> ReconciledScene:
    problems: dict[str, Any] = {}
    warnings: list[str] = []
    _check_frame(scene, manifest, problems)

    asset_ids = {obj.asset_id for obj in scene.objects}
    matched: dict[str, ManifestObject] = {}
    missing_in_usd: list[str] = []
    for entry in manifest.objects:
        asset_id = _match(entry.id, asset_ids)
        if asset_id is None or asset_id in matched:
            missing_in_usd.append(entry.id)
        else:
            matched[asset_id] = entry
    missing_in_manifest = sorted(asset_ids - matched.keys())

    descriptions: dict[str, ObjectDescription] = {}
    for obj in scene.objects:
        matched_entry = matched.get(obj.asset_id)
        if matched_entry is None:
            continue
        descriptions[obj.asset_id] = _describe(
            scene, obj, matched_entry, problems, warnings, manifest
        )

    if missing_in_usd or missing_in_manifest or problems:
        parts = []
        if missing_in_usd:
            parts.append(f"{len(missing_in_usd)} manifest object(s) not in the USD")
        if missing_in_manifest:
            parts.append(f"{len(missing_in_manifest)} USD object(s) not in the manifest")
        parts.extend(f"{field} differs" for field in problems)
        field = next(iter(problems), "objects")
        raise ManifestMismatch(
            "manifest and USD disagree: " + "; ".join(parts),
            missing_in_usd=missing_in_usd,
            missing_in_manifest=missing_in_manifest,
            scene_id=scene.scene_id,
            field=field,
            **(
                {"differences": "; ".join(f"{k}: {v}" for k, v in problems.items())}
                if problems
                else {}
            ),
        )
    return ReconciledScene(
        scene=scene,
        manifest=manifest,
        manifest_derived=derived,
        objects=descriptions,
        warnings=tuple(warnings),
    )


def _check_frame(scene: SceneModel, manifest: SceneManifest, problems: dict[str, Any]) -> None:
    frame = manifest.scene.coordinate_frame
    usd_frame = "y_up" if scene.authored_up_axis == "Y" else "z_up"
    if frame is not None and frame != usd_frame:
        note = "" if scene.up_axis_authored else " (USD does not author upAxis)"
        problems["scene.coordinate_frame"] = f"manifest {frame}, USD {usd_frame}{note}"
    mpu = manifest.scene.meters_per_unit
    if mpu is not None and not math.isclose(mpu, scene.authored_meters_per_unit, rel_tol=1e-6):
        note = "" if scene.meters_per_unit_authored else " (USD does not author metersPerUnit)"
        problems["scene.meters_per_unit"] = (
            f"manifest {mpu}, USD {scene.authored_meters_per_unit}{note}"
        )


def _match(manifest_id: str, asset_ids: set[str]) -> str | None:
    for candidate in (manifest_id, f"obj_{manifest_id}"):
        if candidate in asset_ids:
            return candidate
    if manifest_id.startswith("obj_") and manifest_id[4:] in asset_ids:
        return manifest_id[4:]
    return None


def _describe(
    scene: SceneModel,
    obj: SceneObject,
    entry: ManifestObject,
    problems: dict[str, Any],
    warnings: list[str],
    manifest: SceneManifest,
) -> ObjectDescription:
    semantics = entry.semantics
    semantic = (
        (semantics.class_ if semantics else None)
        or entry.category
        or obj.semantics.primary_class
        or name_class(obj.name)
    )
    inferred = infer_role(obj, semantic, scene.joints_of(obj.asset_id))
    affordances = (
        tuple(semantics.affordances)
        if semantics is not None and "affordances" in semantics.model_fields_set
        else inferred.affordances
    )
    manifest_mass = entry.physics.mass if entry.physics else None
    usd_mass = obj.physics.mass_kg
    if (
        manifest_mass is not None
        and usd_mass is not None
        and not math.isclose(manifest_mass, usd_mass, rel_tol=MASS_TOLERANCE)
    ):
        problems[f"objects[{entry.id}].physics.mass"] = f"manifest {manifest_mass}, USD {usd_mass}"
    if entry.transform is not None:
        frame = _manifest_frame(scene, manifest)
        stated = stage_point_to_pipeline(frame, entry.transform.position)
        distance = math.dist(stated, obj.pose.position)
        if distance > POSITION_TOLERANCE_M:
            warnings.append(
                f"{entry.id}: manifest position is {distance:.3f} m from the USD position"
            )
    asset = entry.asset
    manifest_friction = entry.physics.friction if entry.physics else None
    return ObjectDescription(
        asset_id=obj.asset_id,
        manifest_id=entry.id,
        semantic=semantic,
        sim_role=entry.sim_role or inferred.sim_role,
        affordances=affordances,
        description=entry.description,
        licence=(asset.license if asset and asset.license else None)
        or _custom_text(obj.custom_data, ("license", "licence")),
        source=(asset.source if asset and asset.source else None)
        or _custom_text(obj.custom_data, ("source", "asset_source")),
        asset_path=asset.path if asset else None,
        mass_kg=usd_mass if usd_mass is not None else manifest_mass,
        friction=obj.physics.friction if obj.physics.friction is not None else manifest_friction,
    )


def _stage_frame(scene: SceneModel) -> StageFrame:
    return StageFrame(
        up_axis="Y" if scene.authored_up_axis == "Y" else "Z",
        meters_per_unit=scene.authored_meters_per_unit,
    )


def _manifest_frame(scene: SceneModel, manifest: SceneManifest) -> StageFrame:
    frame = manifest.scene.coordinate_frame
    up = ("Y" if frame == "y_up" else "Z") if frame else _stage_frame(scene).up_axis
    mpu = manifest.scene.meters_per_unit or scene.authored_meters_per_unit
    return StageFrame(up_axis=up, meters_per_unit=mpu)


def _custom_text(custom: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = custom.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    nested = custom.get("asset")
    if isinstance(nested, Mapping):
        return _custom_text(nested, keys)
    return None


def _relative_asset_path(scene: SceneModel, obj: SceneObject) -> str | None:
    if not obj.asset_files:
        return None
    scene_dir = Path(scene.source_path).parent
    first = Path(obj.asset_files[0])
    try:
        return first.relative_to(scene_dir).as_posix()
    except ValueError:
        return first.name


def _articulation_summary(scene: SceneModel, obj: SceneObject) -> dict[str, Any] | None:
    joints = [j for j in scene.joints_of(obj.asset_id) if j.type in ("revolute", "prismatic")]
    if not joints:
        return None
    return {
        "joints": [
            {"name": j.name, "type": j.type, "lower": j.lower, "upper": j.upper} for j in joints
        ]
    }
