"""Exports each topic's JSON Schema to the checked-in folder (`make schemas`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bp_common.contracts.events import EVENTS_BY_TOPIC

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"


def render() -> dict[str, str]:
    """File name -> JSON text, for every topic's model."""
    out: dict[str, str] = {}
    for topic, model in EVENTS_BY_TOPIC.items():
        version = getattr(model, "SCHEMA_VERSION", 1)
        schema = model.model_json_schema(by_alias=True)
        schema["$id"] = f"https://blueprint-pipeline/schemas/{topic}.v{version}.schema.json"
        schema["x-topic"] = topic
        out[f"{topic}.v{version}.schema.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
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
