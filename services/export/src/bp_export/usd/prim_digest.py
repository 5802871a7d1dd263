"""A content hash of a composed prim subtree, for assets defined inline in the scene file.

The digest covers, for the prim and every descendant: its path relative to the prim, type,
applied schemas, and every authored attribute value (the object's own transform included) and
relationship target. It does not depend on the subtree's path in the scene, on layer formatting
or on comments, so the same object authored again the same way hashes the same.
"""

from __future__ import annotations

import hashlib

import numpy as np
from pxr import Sdf, Usd


def prim_description_sha256(prim: Usd.Prim) -> str:
    digest = hashlib.sha256()
    root = prim.GetPath()
    for member in Usd.PrimRange(prim, Usd.PrimAllPrimsPredicate):
        relative = member.GetPath().MakeRelativePath(root)
        _feed(
            digest,
            "prim",
            str(relative),
            str(member.GetTypeName()),
            ",".join(applied_schema_names(member)),
        )
        for attr in sorted(member.GetAuthoredAttributes(), key=lambda a: a.GetName()):
            value = attr.Get()
            _feed(digest, "attr", attr.GetName(), str(attr.GetTypeName()))
            _feed_value(digest, value)
        for rel in sorted(member.GetAuthoredRelationships(), key=lambda r: r.GetName()):
            targets = [
                str(t.MakeRelativePath(root)) if t.HasPrefix(root) else str(t)
                for t in rel.GetTargets()
            ]
            _feed(digest, "rel", rel.GetName(), *targets)
    return digest.hexdigest()


def _feed(digest: hashlib._Hash, *parts: str) -> None:
    for part in parts:
        encoded = part.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)


def _feed_value(digest: hashlib._Hash, value: object) -> None:
    if isinstance(value, Sdf.AssetPath):
        _feed(digest, "asset", value.path)
        return
    if value is not None and hasattr(value, "__len__") and not isinstance(value, str):
        try:
            array = np.asarray(value)
        except (TypeError, ValueError):
            array = None
        if array is not None and array.dtype.kind in "biuf":
            _feed(digest, "array", str(array.shape))
            digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
            return
    _feed(digest, "value", repr(value))


def applied_schema_names(prim: Usd.Prim) -> list[str]:
    """Applied API schemas, including unregistered ones (Physx*, SemanticsAPI) as authored."""
    names = list(prim.GetAppliedSchemas())
    listed = prim.GetMetadata("apiSchemas")
    if isinstance(listed, Sdf.TokenListOp):
        for item in listed.GetAddedOrExplicitItems():
            if item not in names:
                names.append(str(item))
    return names
