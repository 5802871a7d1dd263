"""Read a scene graph or task config document into its model, or say what is wrong with it.

A document is JSON bytes or text, or an already decoded dict. Whatever is wrong (not JSON, another
schema version, a missing or mistyped field, parts that contradict each other) becomes one
`InvalidSceneDocument` naming the scene and the first offending field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bp_scene_contract.errors import Inconsistent, InvalidSceneDocument
from bp_scene_contract.scene_graph import SceneGraph
from bp_scene_contract.task_config import TaskConfig

Document = bytes | str | Mapping[str, Any]
SUPPORTED_SCHEMA_VERSION = 1

_Model = TypeVar("_Model", bound=BaseModel)


def read_scene_graph(document: Document) -> SceneGraph:
    """The scene graph in `document`, verified."""
    return _read(document, SceneGraph, "scene graph")


def read_task_config(document: Document) -> TaskConfig:
    """The task config in `document`, verified."""
    return _read(document, TaskConfig, "task config")


def _read(document: Document, model: type[_Model], what: str) -> _Model:
    data = _decode(document, what)
    scene_id = data.get("scene_id") if isinstance(data.get("scene_id"), str) else None
    version = data.get("schema_version")
    if version != SUPPORTED_SCHEMA_VERSION:
        raise InvalidSceneDocument(
            f"unsupported {what} schema_version {version!r}; this reader knows"
            f" {SUPPORTED_SCHEMA_VERSION}",
            scene_id=scene_id,
            field="schema_version",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        cause = (first.get("ctx") or {}).get("error")
        if isinstance(cause, Inconsistent):
            raise InvalidSceneDocument(
                f"{what} is inconsistent: {cause}",
                scene_id=scene_id,
                field=cause.field,
                object=cause.object,
            ) from exc
        where = ".".join(str(part) for part in first["loc"])
        raise InvalidSceneDocument(
            f"{what} is invalid: {first['msg']}", scene_id=scene_id, field=where or None
        ) from exc


def _decode(document: Document, what: str) -> Mapping[str, Any]:
    if isinstance(document, Mapping):
        return document
    try:
        data = json.loads(document)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidSceneDocument(f"{what} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidSceneDocument(f"{what} is not a JSON object")
    return data
