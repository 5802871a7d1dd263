"""Spatial relations between scene objects, computed from their boxes in the pipeline frame.

Relations (source -> target):
- `on`: the source rests on a top surface of the target. Surfaces are the tops of the target's
  individual shapes (a table top, a shelf board), so an object on a shelf inside a cabinet is on
  the cabinet. Contact means the source's bottom is within a tolerance of the surface (1 cm, or
  a quarter of the source's height for small objects) and their footprints overlap. A free
  rigid body that touches nothing is `on` the highest surface below it, where it will land, with
  a lower confidence (scenes from physics tools often start objects in the air).
- `stacked`: an `on` where both objects are free rigid bodies; it replaces the `on` edge.
- `in`: at least 90% of the source's box lies inside the target's box, and the source rests on
  the target or on nothing else.
- `adjacent`: side by side at the same height with a footprint gap of at most 15 cm; one edge
  per pair, from the smaller asset id to the larger.
- `aligned`: three or more objects sharing a support whose centres line up along X or Y; an
  edge joins neighbours along the row.
Confidences are in [0, 1]; the edge list is sorted so the same scene always gives the same list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from bp_scene_contract import Relation

from bp_export.scene.model import Box3, SceneObject

CONTACT_TOLERANCE_M = 0.01
MIN_CONTACT_TOLERANCE_M = 0.001
CONTAINMENT_FRACTION = 0.9
ADJACENT_GAP_M = 0.15
ALIGNMENT_TOLERANCE_M = 0.02
MIN_ROW_LENGTH = 3
_RELATION_ORDER = {"on": 0, "stacked": 1, "in": 2, "adjacent": 3, "aligned": 4}


@dataclass(frozen=True)
class SpatialRelation:
    source: str
    target: str
    relation: Relation
    confidence: float


def compute_relations(objects: Sequence[SceneObject]) -> list[SpatialRelation]:
    """Every relation between the objects, sorted by relation, source and target."""
    supports = _supports(objects)
    relations: list[SpatialRelation] = []
    for (source, target), confidence in supports.items():
        a, b = _by_id(objects, source), _by_id(objects, target)
        relation: Relation = "stacked" if a.is_free_body and b.is_free_body else "on"
        relations.append(SpatialRelation(source, target, relation, confidence))
    relations.extend(_containment(objects, supports))
    relations.extend(_adjacency(objects, relations))
    relations.extend(_alignment(objects, supports))
    relations.sort(key=lambda r: (_RELATION_ORDER[r.relation], r.source, r.target))
    return relations


def _by_id(objects: Sequence[SceneObject], asset_id: str) -> SceneObject:
    return next(o for o in objects if o.asset_id == asset_id)


def _tolerance(obj: SceneObject) -> float:
    return min(CONTACT_TOLERANCE_M, max(MIN_CONTACT_TOLERANCE_M, 0.25 * obj.bbox.size[2]))


def _footprint_overlap(a: Box3, b: Box3) -> float:
    dx = min(a.max[0], b.max[0]) - max(a.min[0], b.min[0])
    dy = min(a.max[1], b.max[1]) - max(a.min[1], b.min[1])
    return max(0.0, dx) * max(0.0, dy)


def _centre_inside(a: Box3, b: Box3, margin: float) -> bool:
    cx, cy, _ = a.center
    return (
        b.min[0] - margin <= cx <= b.max[0] + margin
        and b.min[1] - margin <= cy <= b.max[1] + margin
    )


def _coverage(a: Box3, surface: Box3, margin: float) -> float:
    """How much of `a`'s footprint the surface carries: 1 when its centre is over it."""
    if _centre_inside(a, surface, margin):
        return 1.0
    area = a.size[0] * a.size[1]
    return _footprint_overlap(a, surface) / area if area > 0 else 0.0


def _supports(objects: Sequence[SceneObject]) -> dict[tuple[str, str], float]:
    supports: dict[tuple[str, str], float] = {}
    for a in objects:
        tol = _tolerance(a)
        bottom = a.bbox.min[2]
        contacts: dict[str, float] = {}
        landing: tuple[float, str, float] | None = None
        for b in objects:
            if b is a:
                continue
            for part in b.parts:
                top = part.bbox.max[2]
                coverage = _coverage(a.bbox, part.bbox, tol)
                if coverage <= 0 or a.bbox.center[2] <= top:
                    continue
                gap = bottom - top
                if abs(gap) <= tol and coverage >= 0.25:
                    score = (0.6 + 0.4 * coverage) * (1.0 - 0.3 * abs(gap) / tol)
                    contacts[b.asset_id] = max(contacts.get(b.asset_id, 0.0), score)
                elif gap > tol and (landing is None or top > landing[0]):
                    landing = (top, b.asset_id, coverage)
        if contacts:
            for target, score in contacts.items():
                supports[(a.asset_id, target)] = round(score, 3)
        elif a.is_free_body and landing is not None:
            supports[(a.asset_id, landing[1])] = round(0.3 + 0.2 * landing[2], 3)
    return supports


def _volume(box: Box3) -> float:
    sx, sy, sz = box.size
    return max(sx, 0.0) * max(sy, 0.0) * max(sz, 0.0)


def _intersection(a: Box3, b: Box3) -> Box3 | None:
    lo = tuple(max(a.min[i], b.min[i]) for i in range(3))
    hi = tuple(min(a.max[i], b.max[i]) for i in range(3))
    if any(hi[i] < lo[i] for i in range(3)):
        return None
    return Box3((lo[0], lo[1], lo[2]), (hi[0], hi[1], hi[2]))


def _containment(
    objects: Sequence[SceneObject], supports: dict[tuple[str, str], float]
) -> list[SpatialRelation]:
    relations = []
    for a in objects:
        volume = _volume(a.bbox)
        if volume <= 0:
            continue
        rests_on = {t for (s, t) in supports if s == a.asset_id}
        for b in objects:
            if b is a or _volume(b.bbox) <= volume:
                continue
            if rests_on and b.asset_id not in rests_on:
                continue
            inside = _intersection(a.bbox, b.bbox)
            fraction = _volume(inside) / volume if inside else 0.0
            if fraction >= CONTAINMENT_FRACTION:
                relations.append(SpatialRelation(a.asset_id, b.asset_id, "in", round(fraction, 3)))
    return relations


def _adjacency(
    objects: Sequence[SceneObject], related: Sequence[SpatialRelation]
) -> list[SpatialRelation]:
    linked = {frozenset((r.source, r.target)) for r in related}
    relations = []
    ordered = sorted(objects, key=lambda o: o.asset_id)
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if frozenset((a.asset_id, b.asset_id)) in linked:
                continue
            lower = min(a.bbox.size[2], b.bbox.size[2])
            shared = min(a.bbox.max[2], b.bbox.max[2]) - max(a.bbox.min[2], b.bbox.min[2])
            if lower <= 0 or shared < 0.5 * lower:
                continue
            gap_x = max(b.bbox.min[0] - a.bbox.max[0], a.bbox.min[0] - b.bbox.max[0])
            gap_y = max(b.bbox.min[1] - a.bbox.max[1], a.bbox.min[1] - b.bbox.max[1])
            gap = max(gap_x, gap_y)
            if -_tolerance(a) <= gap <= ADJACENT_GAP_M:
                confidence = min(1.0, max(0.05, 1.0 - max(gap, 0.0) / ADJACENT_GAP_M))
                relations.append(
                    SpatialRelation(a.asset_id, b.asset_id, "adjacent", round(confidence, 3))
                )
    return relations


def _alignment(
    objects: Sequence[SceneObject], supports: dict[tuple[str, str], float]
) -> list[SpatialRelation]:
    groups: dict[str | None, list[SceneObject]] = defaultdict(list)
    for obj in objects:
        targets = sorted(t for (s, t) in supports if s == obj.asset_id)
        if targets:
            groups[targets[0]].append(obj)
    relations: list[SpatialRelation] = []
    for members in groups.values():
        if len(members) < MIN_ROW_LENGTH:
            continue
        for along, across in ((0, 1), (1, 0)):
            relations.extend(_rows(members, along, across))
    return relations


def _rows(members: Sequence[SceneObject], along: int, across: int) -> list[SpatialRelation]:
    relations: list[SpatialRelation] = []
    remaining = sorted(members, key=lambda o: (o.bbox.center[across], o.asset_id))
    while remaining:
        seed = remaining[0]
        row = [
            o
            for o in remaining
            if abs(o.bbox.center[across] - seed.bbox.center[across]) <= ALIGNMENT_TOLERANCE_M
        ]
        remaining = [o for o in remaining if o not in row]
        if len(row) < MIN_ROW_LENGTH:
            continue
        centre = sum(o.bbox.center[across] for o in row) / len(row)
        deviation = max(abs(o.bbox.center[across] - centre) for o in row)
        confidence = round(max(0.05, 1.0 - deviation / ALIGNMENT_TOLERANCE_M), 3)
        row.sort(key=lambda o: (o.bbox.center[along], o.asset_id))
        for first, second in pairwise(row):
            relations.append(
                SpatialRelation(first.asset_id, second.asset_id, "aligned", confidence)
            )
    return relations
