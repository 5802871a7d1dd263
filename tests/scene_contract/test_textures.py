"""A mesh shape's texture and texture coordinates: optional, so older documents stay readable;
a texture record is the PNG it says it is, and only a mesh with texture coordinates has one."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from bp_collector.demo_scenes import tabletop_scene
from bp_scene_contract import InvalidSceneDocument, Texture, read_scene_graph
from pydantic import ValidationError

from tests.textured_usd import write_quadrant_png

QUAD = {
    "vertices": [[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.1, 0.1, 0.0], [0.0, 0.1, 0.0]],
    "triangles": [[0, 1, 2], [0, 2, 3]],
    "sha256": "a" * 64,
}


def _png(tmp_path: Path) -> Texture:
    write_quadrant_png(tmp_path / "small.png", 8, 4)
    return Texture.from_png((tmp_path / "small.png").read_bytes(), "./small.png")


def _graph_with(shape: dict[str, Any]) -> dict[str, Any]:
    graph, _ = tabletop_scene("franka_panda")
    graph = copy.deepcopy(graph)
    graph["nodes"][0]["shapes"] = [shape]
    return graph


def _shape(**fields: Any) -> dict[str, Any]:
    return {
        "usd_path": "/World/Poster/Quad",
        "kind": "mesh",
        "pose": {"position": [0.0, 0.0, 0.0], "orientation": [1.0, 0.0, 0.0, 0.0]},
        "size": [1.0, 1.0, 1.0],
        "collision": True,
        "visual": True,
        "rgba": None,
        **fields,
    }


def test_a_mesh_without_uv_or_texture_reads_as_untextured() -> None:
    (shape,) = read_scene_graph(_graph_with(_shape(mesh=QUAD))).nodes[0].shapes
    assert shape.texture is None and shape.mesh is not None and shape.mesh.uv is None


def test_a_texture_reads_back_as_written(tmp_path: Path) -> None:
    texture = _png(tmp_path)
    assert (texture.width, texture.height) == (8, 4)
    assert texture.png == (tmp_path / "small.png").read_bytes()
    uv = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    document = _graph_with(_shape(mesh={**QUAD, "uv": uv}, texture=texture.model_dump(mode="json")))
    graph = read_scene_graph(document)
    assert graph.nodes[0].shapes[0].texture == texture
    assert (
        graph.model_dump(mode="json")["nodes"][0]["shapes"][0] == document["nodes"][0]["shapes"][0]
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"width": 9}, "width and height"),
        ({"sha256": "0" * 64}, "sha256"),
        ({"png_base64": "not base64!"}, "base64"),
        ({"png_base64": "aGVsbG8gd29ybGQsIG5vdCBhIHBuZw=="}, "not a PNG"),
    ],
)
def test_a_texture_record_that_is_not_its_png_is_refused(
    tmp_path: Path, change: dict[str, Any], field: str
) -> None:
    record = _png(tmp_path).model_dump(mode="json")
    with pytest.raises(ValidationError, match=field):
        Texture.model_validate({**record, **change})


def test_uv_is_one_pair_per_triangle_corner_and_a_texture_needs_it(tmp_path: Path) -> None:
    texture = _png(tmp_path).model_dump(mode="json")
    with pytest.raises(InvalidSceneDocument):
        read_scene_graph(_graph_with(_shape(mesh={**QUAD, "uv": [[0.0, 0.0]] * 4})))
    with pytest.raises(InvalidSceneDocument):
        read_scene_graph(_graph_with(_shape(mesh=QUAD, texture=texture)))
