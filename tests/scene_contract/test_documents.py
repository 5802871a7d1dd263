"""The scene contract's documents: what export writes is exactly what the models and the
checked-in JSON Schemas describe, and a broken document is refused naming scene and field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from bp_common.errors import InvalidInput
from bp_export.export import export_scene
from bp_scene_contract import InvalidSceneDocument, read_scene_graph, read_task_config
from bp_scene_contract.schemas import SCHEMA_DIR, render

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module", params=["kitchen_table", "cabinet"])
def exported(request: pytest.FixtureRequest) -> dict[str, bytes]:
    scene: str = request.param
    return export_scene(
        EXAMPLES / scene / "scene.usda", scene, environment="local", require_embeddings=False
    ).files


@pytest.fixture(scope="module")
def kitchen() -> dict[str, Any]:
    files = export_scene(
        EXAMPLES / "kitchen_table" / "scene.usda",
        "kitchen_table",
        environment="local",
        require_embeddings=False,
    ).files
    return {name: json.loads(files[name]) for name in ("scene_graph.json", "task_config.json")}


def test_checked_in_schemas_match_the_models() -> None:
    rendered = render()
    on_disk = {p.name: p.read_text() for p in SCHEMA_DIR.glob("*.schema.json")}
    assert (
        set(on_disk)
        == set(rendered)
        == {
            "scene_graph.v1.schema.json",
            "task_config.v1.schema.json",
        }
    ), "run `make schemas` and commit the result"
    for name, text in rendered.items():
        assert on_disk[name] == text, f"{name} drifted from its model: run `make schemas`"


def test_what_export_writes_reads_back_byte_for_byte_and_meets_the_schemas(
    exported: dict[str, bytes],
) -> None:
    graph = read_scene_graph(exported["scene_graph.json"])
    config = read_task_config(exported["task_config.json"])
    # The models hold every field export writes, in its order and with its values.
    assert (json.dumps(graph.model_dump(mode="json"), indent=2) + "\n").encode() == exported[
        "scene_graph.json"
    ]
    assert json.loads(exported["task_config.json"]) == config.model_dump(mode="json")
    for name in ("scene_graph", "task_config"):
        schema = json.loads((SCHEMA_DIR / f"{name}.v1.schema.json").read_text())
        jsonschema.validate(json.loads(exported[f"{name}.json"]), schema)


def _refusal(read: Any, document: Any) -> InvalidSceneDocument:
    with pytest.raises(InvalidSceneDocument) as caught:
        read(document)
    assert isinstance(caught.value, InvalidInput) and caught.value.permanent
    return caught.value


def test_a_mistyped_field_is_refused_naming_the_scene_and_the_field(
    kitchen: dict[str, Any],
) -> None:
    graph = copy.deepcopy(kitchen["scene_graph.json"])
    graph["nodes"][1]["bbox"]["min"][2] = "low"
    error = _refusal(read_scene_graph, graph)
    assert error.context == {"scene_id": "kitchen_table", "field": "nodes.1.bbox.min.2"}
    config = copy.deepcopy(kitchen["task_config.json"])
    config["tasks"][0]["success"]["max_speed"] = None
    error = _refusal(read_task_config, config)
    assert error.context["scene_id"] == "kitchen_table"
    assert error.context["field"] == "tasks.0.success.object_in_region.max_speed"


def test_another_schema_version_is_refused_before_anything_else(
    kitchen: dict[str, Any],
) -> None:
    readers = {"scene_graph.json": read_scene_graph, "task_config.json": read_task_config}
    for name, read in readers.items():
        document = {**kitchen[name], "schema_version": 2, "nodes": "whatever"}
        error = _refusal(read, document)
        assert "unsupported" in error.message and "schema_version 2" in error.message
        assert error.context == {"scene_id": "kitchen_table", "field": "schema_version"}


def test_an_unknown_field_is_refused_rather_than_ignored(kitchen: dict[str, Any]) -> None:
    config = copy.deepcopy(kitchen["task_config.json"])
    config["tasks"][0]["success"]["slack"] = 0.5
    error = _refusal(read_task_config, config)
    assert error.context["field"] == "tasks.0.success.object_in_region.slack"


def test_documents_whose_parts_contradict_each_other_are_refused(
    kitchen: dict[str, Any],
) -> None:
    graph = copy.deepcopy(kitchen["scene_graph.json"])
    graph["nodes"].append(graph["nodes"][0])
    error = _refusal(read_scene_graph, graph)
    assert error.context["object"] == graph["nodes"][0]["asset_id"]
    assert error.context["field"] == f"nodes.{len(graph['nodes']) - 1}.asset_id"
    graph = copy.deepcopy(kitchen["scene_graph.json"])
    graph["edges"][0]["target"] = "ghost_table"
    assert _refusal(read_scene_graph, graph).context["object"] == "ghost_table"
    config = copy.deepcopy(kitchen["task_config.json"])
    config["robots"][0]["tasks"].append("pick_place-000000000000")
    error = _refusal(read_task_config, config)
    assert (error.context["field"], error.context["object"]) == (
        f"robots.0.tasks.{len(config['robots'][0]['tasks']) - 1}",
        "pick_place-000000000000",
    )
    box = copy.deepcopy(kitchen["scene_graph.json"])
    box["nodes"][0]["bbox"] = {"min": [1.0, 0.0, 0.0], "max": [0.0, 1.0, 1.0]}
    assert _refusal(read_scene_graph, box).context["field"] == "nodes.0.bbox"


def test_what_is_not_a_json_object_is_refused() -> None:
    assert "not JSON" in _refusal(read_scene_graph, b"{nodes: [").message
    assert "not a JSON object" in _refusal(read_task_config, "[1, 2]").message


def test_a_question_about_an_absent_part_is_a_permanent_error(kitchen: dict[str, Any]) -> None:
    graph = read_scene_graph(kitchen["scene_graph.json"])
    config = read_task_config(kitchen["task_config.json"])
    with pytest.raises(InvalidSceneDocument, match="no such node") as node:
        graph.node("ghost")
    assert node.value.context == {"scene_id": "kitchen_table", "object": "ghost"}
    with pytest.raises(InvalidSceneDocument, match="no such task"):
        config.task("nope")
    with pytest.raises(InvalidSceneDocument, match="robot not assigned"):
        config.assignment("spot")
