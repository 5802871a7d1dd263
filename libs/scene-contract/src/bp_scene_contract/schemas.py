"""Exports the JSON Schemas of both scene documents to the checked-in folder (`make schemas`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from bp_scene_contract.scene_graph import SceneGraph
from bp_scene_contract.task_config import TaskConfig

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
DOCUMENTS: dict[str, type[BaseModel]] = {"scene_graph": SceneGraph, "task_config": TaskConfig}


def render() -> dict[str, str]:
    """File name -> JSON text, for each document's model."""
    out: dict[str, str] = {}
    for document, model in DOCUMENTS.items():
        version = model.model_fields["schema_version"].default
        name = f"{document}.v{version}.schema.json"
        schema = model.model_json_schema()
        schema["$id"] = f"https://blueprint-pipeline/schemas/{name}"
        schema["x-document"] = f"{document}.json"
        out[name] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return out


def write(folder: Path = SCHEMA_DIR) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render().items():
        path = folder / name
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write(Path(sys.argv[1]) if len(sys.argv) > 1 else SCHEMA_DIR):
        print(p)
