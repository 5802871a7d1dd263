"""Read an object's semantic labels from every spelling tools use, and pick its class.

Three sources, strongest first:
- `UsdSemantics.LabelsAPI`: `token[] semantics:labels:<taxonomy>`.
- Isaac Sim's older `SemanticsAPI`, not registered in usd-core, so read as raw attributes:
  `semantic:<instance>:params:semanticType` names the taxonomy and
  `semantic:<instance>:params:semanticData` the label; instance names are arbitrary.
- `customData` keys `class`, `semantic_class`, `category` or `semantic` (a string), or
  `semantics` (a dictionary of taxonomy to label or labels).

When an object carries several "class" labels (Isaac scenes often hold a generic one such as
`prop_general` next to the real one), the label repeated by the object's other taxonomies
(`bottle` in `prop_general_type` and in the hierarchy `container/vessel/bottle`) wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pxr import Usd

from bp_export.scene.model import Semantics

_LABELS_PREFIX = "semantics:labels:"
_ISAAC_TYPE = re.compile(r"^semantic:(?P<instance>[^:]+):params:semanticType$")
_CUSTOM_CLASS_KEYS = ("class", "semantic_class", "category", "semantic")
_CLASS_TAXONOMY = "class"


def read_semantics(object_prim: Usd.Prim, descendants: Iterable[Usd.Prim] = ()) -> Semantics:
    """Labels of the object prim, or of its nearest labelled descendant when it has none."""
    labels, sources = _labels_on(object_prim, include_custom_data=True)
    if not labels:
        for prim in descendants:
            labels, sources = _labels_on(prim, include_custom_data=False)
            if labels:
                break
    frozen = {taxonomy: tuple(values) for taxonomy, values in labels.items()}
    return Semantics(primary_class=_primary_class(frozen), labels=frozen, sources=tuple(sources))


def has_semantic_labels(prim: Usd.Prim) -> bool:
    labels, _ = _labels_on(prim, include_custom_data=True)
    return bool(labels)


def authored_custom_data(prim: Usd.Prim) -> dict[str, Any]:
    """customData authored on the prim (composed over its layers), without schema defaults."""
    merged: dict[str, Any] = {}
    for spec in reversed(prim.GetPrimStack()):
        merged.update(dict(spec.customData))
    return merged


def name_class(name: str) -> str:
    """A class guessed from a prim name: `obj_mug_01` -> `mug`."""
    stem = re.sub(r"^obj_", "", name, flags=re.IGNORECASE)
    stem = re.sub(r"[_\d]+$", "", stem)
    return (stem or name).lower()


def _labels_on(
    prim: Usd.Prim, *, include_custom_data: bool
) -> tuple[dict[str, list[str]], list[str]]:
    labels: dict[str, list[str]] = {}
    sources: list[str] = []

    def add(taxonomy: str, value: Any, source: str) -> None:
        text = str(value).strip()
        if not text:
            return
        bucket = labels.setdefault(taxonomy, [])
        if text not in bucket:
            bucket.append(text)
        if source not in sources:
            sources.append(source)

    for attr in prim.GetAuthoredAttributes():
        name = attr.GetName()
        if name.startswith(_LABELS_PREFIX):
            for token in attr.Get() or []:
                add(name[len(_LABELS_PREFIX) :], token, "UsdSemantics")
    for attr in prim.GetAuthoredAttributes():
        match = _ISAAC_TYPE.match(attr.GetName())
        if not match:
            continue
        data = prim.GetAttribute(f"semantic:{match['instance']}:params:semanticData")
        taxonomy, value = attr.Get(), data.Get() if data else None
        if taxonomy and value:
            add(str(taxonomy), value, "IsaacSemantics")
    if include_custom_data:
        _labels_from_custom_data(authored_custom_data(prim), add)
    return labels, sources


def _labels_from_custom_data(custom: Mapping[str, Any], add: Any) -> None:
    for key in _CUSTOM_CLASS_KEYS:
        value = custom.get(key)
        if isinstance(value, str):
            add(_CLASS_TAXONOMY, value, "customData")
    nested = custom.get("semantics")
    if isinstance(nested, Mapping):
        for taxonomy, value in nested.items():
            values = [value] if isinstance(value, str) else value
            if isinstance(values, (list, tuple)):
                for item in values:
                    if isinstance(item, str):
                        add(str(taxonomy), item, "customData")


def _primary_class(labels: Mapping[str, tuple[str, ...]]) -> str | None:
    candidates = list(labels.get(_CLASS_TAXONOMY, ()))
    if not candidates:
        for taxonomy, values in labels.items():
            if "type" in taxonomy or "category" in taxonomy:
                candidates.extend(values)
    if not candidates:
        for values in labels.values():
            candidates.extend(v.rsplit("/", 1)[-1] for v in values)
    if not candidates:
        return None
    echoes: list[str] = []
    for taxonomy, values in labels.items():
        if taxonomy == _CLASS_TAXONOMY:
            continue
        for value in values:
            echoes.append(value.lower())
            echoes.extend(part.lower() for part in value.split("/"))
    best = max(candidates, key=lambda c: (echoes.count(c.lower()), -candidates.index(c)))
    return best
