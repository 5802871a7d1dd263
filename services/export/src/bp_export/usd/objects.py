"""Decide which prims of a stage are the scene's physical objects.

The walk starts at the default prim (or, when there is none, at the stage's root prims) and
looks at children:

- A child of an `Objects` container (the upstream layout `/World/Objects/obj_{id}`) is an object.
- A prim that is a rigid body, an articulation root, carries semantic labels, has model kind
  `component`, is a geometric primitive, or holds a joint between two of its children's
  subtrees, is one object with its whole subtree (nested rigid bodies become parts of it).
- Any other prim with physical content (geometry, colliders, bodies, labels below it) is a
  group to split when it has kind `assembly`/`group`, or at least two children with physical
  content of which one is independent (a body or a labelled prim). Otherwise it is one object:
  a ground-plane Xform holding a mesh and a collision plane stays one object, while a wrapper
  holding a floor and a rigid box is split.

A `Scope` only groups prims (it has no transform of its own): it is always a group to split,
never an object, so two pallets filed under one Scope stay two pallets.

Materials, shaders, cameras, lights, physics scenes, joints and inactive prims are never objects.
"""

from __future__ import annotations

from collections.abc import Iterable

from pxr import Kind, Sdf, Usd, UsdGeom, UsdLux, UsdPhysics, UsdShade

from bp_export.usd.physics import is_collider, is_rigid_body
from bp_export.usd.semantics import has_semantic_labels

OBJECT_CONTAINER_NAMES = frozenset({"Objects"})


def scene_roots(stage: Usd.Stage) -> list[Usd.Prim]:
    """Where the object walk starts: the default prim, or the pseudo-root."""
    default = stage.GetDefaultPrim()
    if default and default.IsValid():
        return [default]
    return [stage.GetPseudoRoot()]


def is_structural(prim: Usd.Prim) -> bool:
    """Prims that are never part of an object's physical content."""
    return bool(
        not prim.IsActive()
        or prim.IsA(UsdShade.Material)
        or prim.IsA(UsdShade.Shader)
        or prim.IsA(UsdShade.NodeGraph)
        or prim.IsA(UsdGeom.Camera)
        or prim.HasAPI(UsdLux.LightAPI)
        or prim.IsA(UsdPhysics.Scene)
        or prim.IsA(UsdPhysics.Joint)
        or prim.IsA(UsdGeom.Subset)
    )


def is_visible_geometry(prim: Usd.Prim) -> bool:
    if not prim.IsA(UsdGeom.Gprim):
        return False
    return bool(UsdGeom.Imageable(prim).ComputePurpose() != UsdGeom.Tokens.guide)


class ObjectFinder:
    """Finds object prims; joint body pairs mark articulated assemblies."""

    def __init__(self, stage: Usd.Stage, joint_bodies: Iterable[tuple[str | None, str | None]]):
        self._stage = stage
        self._joint_pairs = [
            (Sdf.Path(a), Sdf.Path(b)) for a, b in joint_bodies if a is not None and b is not None
        ]
        self._content: dict[Sdf.Path, bool] = {}
        self._independent: dict[Sdf.Path, bool] = {}

    def find(self) -> list[Usd.Prim]:
        found: list[Usd.Prim] = []
        for root in scene_roots(self._stage):
            # A file whose default prim is itself one asset (a lone mug) is that one object.
            if not root.IsPseudoRoot() and self._is_whole_object(root, joints_count=False):
                found.append(root)
            else:
                found.extend(self._split(root))
        return found

    def _children(self, prim: Usd.Prim) -> list[Usd.Prim]:
        return [
            c for c in prim.GetFilteredChildren(Usd.PrimDefaultPredicate) if not is_structural(c)
        ]

    def _split(self, group: Usd.Prim) -> list[Usd.Prim]:
        found: list[Usd.Prim] = []
        container = group.GetName() in OBJECT_CONTAINER_NAMES
        for child in self._children(group):
            if child.GetName() in OBJECT_CONTAINER_NAMES:
                found.extend(self._split(child))
            elif container:
                # Declared objects count even when empty, so an empty one is reported.
                found.append(child)
            elif not self._has_content(child):
                continue
            elif self._is_whole_object(child):
                found.append(child)
            elif self._is_group(child):
                found.extend(self._split(child))
            else:
                found.append(child)
        return found

    def _is_whole_object(self, prim: Usd.Prim, *, joints_count: bool = True) -> bool:
        if prim.IsA(UsdGeom.Scope):
            return False
        kind = Usd.ModelAPI(prim).GetKind()
        return bool(
            is_rigid_body(prim)
            or has_semantic_labels(prim)
            or prim.IsA(UsdGeom.Gprim)
            or (kind and Kind.Registry.IsA(kind, Kind.Tokens.component))
            or (joints_count and prim.HasAPI(UsdPhysics.ArticulationRootAPI))
            or (joints_count and self._holds_internal_joint(prim))
        )

    def _is_group(self, prim: Usd.Prim) -> bool:
        if prim.GetName() in OBJECT_CONTAINER_NAMES or prim.IsA(UsdGeom.Scope):
            return True
        kind = Usd.ModelAPI(prim).GetKind()
        if kind and (Kind.Registry.IsA(kind, Kind.Tokens.assembly) or kind == Kind.Tokens.group):
            return True
        with_content = [c for c in self._children(prim) if self._has_content(c)]
        return len(with_content) >= 2 and any(self._has_independent(c) for c in with_content)

    def _holds_internal_joint(self, prim: Usd.Prim) -> bool:
        """A joint between two different children of `prim` makes it one articulated object."""
        root = prim.GetPath()
        depth = root.pathElementCount + 1
        for a, b in self._joint_pairs:
            if a.HasPrefix(root) and b.HasPrefix(root) and a != root and b != root:
                child_a = a.GetPrefixes()[depth - 1] if a.pathElementCount >= depth else a
                child_b = b.GetPrefixes()[depth - 1] if b.pathElementCount >= depth else b
                if child_a != child_b:
                    return True
        return False

    def _has_content(self, prim: Usd.Prim) -> bool:
        path = prim.GetPath()
        if path not in self._content:
            self._content[path] = (
                is_visible_geometry(prim)
                or is_collider(prim)
                or is_rigid_body(prim)
                or has_semantic_labels(prim)
                or any(self._has_content(c) for c in self._children(prim))
            )
        return self._content[path]

    def _has_independent(self, prim: Usd.Prim) -> bool:
        path = prim.GetPath()
        if path not in self._independent:
            kind = Usd.ModelAPI(prim).GetKind()
            self._independent[path] = (
                is_rigid_body(prim)
                or has_semantic_labels(prim)
                or prim.HasAPI(UsdPhysics.ArticulationRootAPI)
                or bool(kind and Kind.Registry.IsA(kind, Kind.Tokens.model))
                or any(self._has_independent(c) for c in self._children(prim))
            )
        return self._independent[path]


def subtree(prim: Usd.Prim) -> list[Usd.Prim]:
    """The prim and its descendants with physical meaning, object root first."""
    prims: list[Usd.Prim] = []
    it = iter(Usd.PrimRange(prim, Usd.PrimDefaultPredicate))
    for candidate in it:
        if candidate != prim and is_structural(candidate):
            it.PruneChildren()
            continue
        prims.append(candidate)
    return prims
