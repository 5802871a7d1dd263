"""Language annotations: several instructions per task, near-duplicates removed by MiniLM.

Each task keeps the planner's own instructions (their object references are disambiguated in
scenes that repeat a name) and gains variants built from the objects' semantics:
- the planner's sentences with an object's noun replaced by a synonym of its class (`SYNONYMS`)
  or, for the one container of the scene, by "the container", when the object's name is unique
  in the scene and the new noun names no other object;
- the kind's extra templates (`TEMPLATES`), filled with "the <name>" of target and destination
  when both names are unique in the scene.
Candidates are then embedded with all-MiniLM-L6-v2 and taken in order, each dropped when its
cosine similarity to one already kept is at least `NEAR_DUPLICATE` (0.97: "Put the mug on the
table." and "Place the mug on the table." score 0.98, "Set the mug down on the table." 0.96),
up to `MAX_INSTRUCTIONS`. Without the model only exact repeats (ignoring case, spaces and the
final full stop) are removed.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from bp_scene_contract import SceneGraph, SceneNode, TaskConfig, TaskSpec

from bp_export.embeddings.asset_embeddings import EmbeddingProvider

NEAR_DUPLICATE = 0.97
MAX_INSTRUCTIONS = 8

SYNONYMS: dict[str, str] = {
    "mug": "cup",
    "cup": "mug",
    "cube": "block",
    "block": "cube",
    "bowl": "dish",
    "can": "tin",
    "table": "tabletop",
    "cabinet": "cupboard",
    "box": "carton",
    "bin": "basket",
    "plate": "dish",
}

TEMPLATES: dict[str, tuple[str, ...]] = {
    "pick_place": ("Grab {what} and put it on {where}.", "Take {what} over to {where}."),
    "place_in": ("Drop {what} into {where}.", "Put {what} into {where}."),
    "stack": ("Set {what} on top of {where}.", "Stack {what} onto {where}."),
    "open_close": (),
}


def _unique_names(graph: SceneGraph) -> set[str]:
    counts = Counter(node.name for node in graph.nodes)
    return {name for name, count in counts.items() if count == 1}


def _nouns(node: SceneNode, graph: SceneGraph, unique: set[str]) -> list[str]:
    """Other nouns that name `node` alone in this scene."""
    if node.name not in unique:
        return []
    names = {n.name for n in graph.nodes}
    out = []
    synonym = SYNONYMS.get(node.name)
    if synonym and synonym not in names:
        out.append(synonym)
    containers = [n for n in graph.nodes if n.has_affordance("Containable") and not n.is_static]
    if containers == [node] and "container" not in names:
        out.append("container")
    return out


def candidates(task: TaskSpec, graph: SceneGraph) -> list[str]:
    """The planner's instructions, then the variants of the module docstring, in order."""
    unique = _unique_names(graph)
    involved = [graph.node(task.target)]
    if task.destination is not None:
        involved.append(graph.node(task.destination))
    lines = list(task.instructions)
    for node in involved:
        for noun in _nouns(node, graph, unique):
            pattern = re.compile(rf"\bthe {re.escape(node.name)}\b")
            lines += [pattern.sub(f"the {noun}", line) for line in task.instructions]
    if task.destination is not None and all(n.name in unique for n in involved):
        what, where = (f"the {n.name}" for n in involved)
        lines += [t.format(what=what, where=where) for t in TEMPLATES.get(task.kind, ())]
    return lines


def _key(line: str) -> str:
    return " ".join(line.lower().rstrip(".!").split())


def without_near_duplicates(lines: Sequence[str], provider: EmbeddingProvider | None) -> list[str]:
    """Lines in order, dropping exact repeats and, with a provider, near-duplicates."""
    distinct: list[str] = []
    for line in lines:
        if line.strip() and _key(line) not in {_key(kept) for kept in distinct}:
            distinct.append(line.strip())
    if provider is None or len(distinct) < 2:
        return distinct[:MAX_INSTRUCTIONS]
    vectors = np.asarray(provider.embed(distinct), dtype=np.float64)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    kept: list[int] = []
    for index in range(len(distinct)):
        if all(float(vectors[index] @ vectors[k]) < NEAR_DUPLICATE for k in kept):
            kept.append(index)
        if len(kept) == MAX_INSTRUCTIONS:
            break
    return [distinct[k] for k in kept]


def annotate_instructions(
    config: TaskConfig, graph: SceneGraph, provider: EmbeddingProvider | None
) -> TaskConfig:
    """The task config with every task's instructions extended and de-duplicated."""
    tasks = tuple(
        task.model_copy(
            update={
                "instructions": tuple(without_near_duplicates(candidates(task, graph), provider))
            }
        )
        for task in config.tasks
    )
    return config.model_copy(update={"tasks": tasks})
