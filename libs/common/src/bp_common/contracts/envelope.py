"""Turns events into bus messages (JSON data + attributes) and back, validating both ways."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from bp_common.contracts.events import EVENTS_BY_TOPIC, Event, SceneUpload
from bp_common.errors import InvalidMessage

# Events point at blobs; anything near this size is a payload that belongs in the blob store.
MAX_EVENT_BYTES = 64 * 1024
TRACE_ATTRIBUTES = ("traceparent", "tracestate")


@dataclass(frozen=True)
class Envelope:
    """What travels on the bus: bytes plus string attributes, as Pub/Sub carries them."""

    topic: str
    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)


def encode(event: Event, trace: dict[str, str] | None = None) -> Envelope:
    data = event.model_dump_json(by_alias=True).encode()
    if len(data) > MAX_EVENT_BYTES:
        raise InvalidMessage(
            f"event of {len(data)} bytes exceeds {MAX_EVENT_BYTES}: store the payload as a blob",
            topic=event.TOPIC,
            run_id=event.run_id,
        )
    attributes = {
        "scene_id": event.scene_id,
        "run_id": event.run_id,
        "schema_version": str(event.schema_version),
    }
    for key in TRACE_ATTRIBUTES:
        if trace and trace.get(key):
            attributes[key] = trace[key]
    return Envelope(event.TOPIC, data, attributes)


def decode(topic: str, data: bytes, attributes: dict[str, str]) -> BaseModel:
    """Validate a message against its topic's model; any mismatch is a permanent InvalidMessage."""
    model = EVENTS_BY_TOPIC.get(topic)
    if model is None:
        raise InvalidMessage("no contract for topic", topic=topic)
    try:
        payload: Any = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidMessage(f"message data is not JSON: {exc}", topic=topic) from exc
    try:
        if model is SceneUpload:
            return SceneUpload.model_validate({"attributes": attributes, "object": payload})
        declared = attributes.get("schema_version")
        if declared is not None and declared != str(getattr(model, "SCHEMA_VERSION", 1)):
            raise InvalidMessage(
                f"schema_version {declared} is not supported (expected {model.SCHEMA_VERSION})",  # type: ignore[attr-defined]
                topic=topic,
            )
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise InvalidMessage(
            f"message does not match the {topic} contract: {problems}", topic=topic
        ) from exc
