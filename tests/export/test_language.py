"""Several instructions per task from templates and the objects' semantics, near-duplicates
removed with the real MiniLM encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bp_export.embeddings.asset_embeddings import MiniLmProvider
from bp_export.export import export_scene
from bp_export.tasks.language import NEAR_DUPLICATE, without_near_duplicates
from bp_scene_contract import read_task_config

KITCHEN = Path(__file__).resolve().parents[2] / "examples" / "kitchen_table" / "scene.usda"


@pytest.fixture(scope="module")
def minilm() -> MiniLmProvider:
    return MiniLmProvider.load()


def test_a_one_word_paraphrase_is_a_near_duplicate_and_a_new_phrasing_is_not(
    minilm: MiniLmProvider,
) -> None:
    lines = [
        "Put the mug on the table.",
        "Place the mug on the table.",  # 0.98 with the first
        "put the mug on the table",  # the same sentence
        "Set the mug down on the table.",  # 0.96: another phrasing
        "Put the cup on the table.",  # another noun for the mug
    ]
    assert without_near_duplicates(lines, minilm) == [lines[0], lines[3], lines[4]]
    # Without the model only the exact repeat goes.
    assert without_near_duplicates(lines, None) == [lines[0], lines[1], lines[3], lines[4]]
    assert 0.9 < NEAR_DUPLICATE < 1


def test_export_writes_several_distinct_instructions_per_task(minilm: MiniLmProvider) -> None:
    result = export_scene(
        KITCHEN, "kitchen_table", environment="local", require_embeddings=True, provider=minilm
    )
    config = read_task_config(json.loads(result.files["task_config.json"]))

    for task in config.tasks:
        lines = list(task.instructions)
        assert len(lines) >= 3, task.task_id
        vectors = minilm.embed(lines)
        for i in range(len(lines)):
            for j in range(i):
                similarity = sum(a * b for a, b in zip(vectors[i], vectors[j], strict=True))
                assert similarity < NEAR_DUPLICATE, (lines[i], lines[j])
    cube = next(
        t
        for t in config.tasks
        if t.kind == "place_in" and (t.target, t.destination) == ("cube", "bowl")
    )
    # The planner's sentence comes first; the objects' semantics give other nouns (a block).
    assert cube.instructions[0] == "Put the cube in the bowl."
    assert any("the block" in line for line in cube.instructions)
