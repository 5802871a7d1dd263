"""Build `asset_index.json`: every asset of a scene with source, licence, content hash and
provenance, and enforce the commercial-licence policy on it.

An asset is one scene object. Its content hash is the sha256 of the file(s) it is referenced or
payloaded from, or, for an object defined inline in the scene file, of its composed prim
description (see `usd.prim_digest`). Licences come from the manifest's `asset.license`, else the
object prim's `customData` (`license` / `licence`). Paths are written relative to the scene's
folder when they are inside it, so the index does not leak the machine's layout.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bp_export.assets.licences import classify_licence
from bp_export.scene.model import SceneObject
from bp_export.scene.reconciliation import ReconciledScene
from bp_export.scene_errors import LicenceRejected

ASSET_INDEX_FILE_NAME = "asset_index.json"
PRODUCTION_ENVIRONMENT = "production"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HashedFile(_Strict):
    path: str
    sha256: str
    bytes: int


class AssetProvenance(_Strict):
    usd_path: str
    defined_in: str
    """The layer holding the object prim's strongest opinion."""
    referenced_files: list[str]
    manifest_id: str
    manifest_derived: bool
    """True when no scene_manifest.json came with the scene and the manifest was derived."""


class AssetEntry(_Strict):
    asset_id: str
    usd_path: str
    source: str | None
    licence: str | None
    licence_normalised: str | None
    licence_status: Literal["allowed", "rejected"]
    licence_reason: str
    licence_obligations: list[str]
    content_hash: str
    """`sha256:<hex>` of the referenced file(s), or of the prim description when inline."""
    hash_of: Literal["file", "files", "prim"]
    files: list[HashedFile]
    provenance: AssetProvenance


class AssetIndex(_Strict):
    """The whole `asset_index.json`."""

    schema_version: Literal[1] = 1
    scene_id: str
    scene_file: HashedFile
    layers: list[HashedFile]
    assets: list[AssetEntry]

    def rejected(self) -> list[AssetEntry]:
        return [a for a in self.assets if a.licence_status == "rejected"]


@dataclass(frozen=True)
class LicenceReport:
    """The outcome of the licence policy: what was refused, and whether that blocked export."""

    allowed: tuple[str, ...]
    rejected: dict[str, str]
    blocked: bool


def build_asset_index(reconciled: ReconciledScene) -> AssetIndex:
    """Hash and describe every asset of a reconciled scene."""
    scene = reconciled.scene
    base = Path(scene.source_path).parent
    hasher = _FileHasher(base)
    assets = [_entry(obj, reconciled, hasher) for obj in scene.objects]
    return AssetIndex(
        scene_id=scene.scene_id,
        scene_file=hasher.hashed(scene.source_path),
        layers=[hasher.hashed(layer) for layer in scene.layers],
        assets=assets,
    )


def block_noncommercial_for(environment: str) -> bool:
    """Non-commercial or unknown licences block export in production; elsewhere, reported."""
    return environment == PRODUCTION_ENVIRONMENT


def enforce_licence_policy(index: AssetIndex, *, block_noncommercial: bool) -> LicenceReport:
    """Raise `LicenceRejected` listing the offending assets when blocking; else report them."""
    rejected = {a.asset_id: f"{a.licence_reason} ({a.licence!r})" for a in index.rejected()}
    allowed = tuple(a.asset_id for a in index.assets if a.licence_status == "allowed")
    if rejected and block_noncommercial:
        raise LicenceRejected(
            f"{len(rejected)} asset(s) do not allow commercial use: "
            + "; ".join(f"{k}: {v}" for k, v in sorted(rejected.items())),
            offending=list(rejected),
            scene_id=index.scene_id,
            field="licence",
        )
    return LicenceReport(allowed=allowed, rejected=rejected, blocked=False)


def asset_index_json(index: AssetIndex) -> str:
    return json.dumps(index.model_dump(mode="json"), indent=2) + "\n"


def write_asset_index(index: AssetIndex, directory: Path) -> Path:
    path = Path(directory) / ASSET_INDEX_FILE_NAME
    path.write_text(asset_index_json(index), encoding="utf-8")
    return path


def _entry(obj: SceneObject, reconciled: ReconciledScene, hasher: _FileHasher) -> AssetEntry:
    description = reconciled.objects[obj.asset_id]
    verdict = classify_licence(description.licence)
    files = [hasher.hashed(f) for f in obj.asset_files]
    hash_of: Literal["file", "files", "prim"]
    if len(files) == 1:
        content_hash, hash_of = files[0].sha256, "file"
    elif files:
        combined = hashlib.sha256("".join(sorted(f.sha256 for f in files)).encode())
        content_hash, hash_of = f"sha256:{combined.hexdigest()}", "files"
    else:
        content_hash, hash_of = f"sha256:{obj.description_sha256}", "prim"
    return AssetEntry(
        asset_id=obj.asset_id,
        usd_path=obj.usd_path,
        source=description.source,
        licence=description.licence,
        licence_normalised=verdict.normalised,
        licence_status="allowed" if verdict.commercial_use else "rejected",
        licence_reason=verdict.reason,
        licence_obligations=list(verdict.obligations),
        content_hash=content_hash,
        hash_of=hash_of,
        files=files,
        provenance=AssetProvenance(
            usd_path=obj.usd_path,
            defined_in=hasher.display(obj.defined_in),
            referenced_files=[f.path for f in files],
            manifest_id=description.manifest_id,
            manifest_derived=reconciled.manifest_derived,
        ),
    )


class _FileHasher:
    """sha256 of files, computed once each; package members hash as their package."""

    def __init__(self, base: Path) -> None:
        self._base = base.resolve()
        self._cache: dict[str, HashedFile] = {}

    def display(self, location: str) -> str:
        if not location:
            return location
        path = Path(_package_file(location))
        try:
            shown = path.resolve().relative_to(self._base).as_posix()
        except (ValueError, OSError):
            shown = path.name
        member = location[len(_package_file(location)) :]
        return shown + member

    def hashed(self, location: str) -> HashedFile:
        key = _package_file(location)
        if key not in self._cache:
            digest = hashlib.sha256()
            with open(key, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            self._cache[key] = HashedFile(
                path=self.display(key),
                sha256=f"sha256:{digest.hexdigest()}",
                bytes=os.path.getsize(key),
            )
        return self._cache[key]


def _package_file(location: str) -> str:
    """`/a/b.usdz[inner.usda]` -> `/a/b.usdz`: a package member is hashed as its package."""
    return location.split("[", 1)[0] if location.endswith("]") else location
