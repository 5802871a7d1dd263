"""Event contracts: strict models, checked-in schemas that cannot drift, small messages."""

from __future__ import annotations

import json

import pytest
from bp_common.contracts import EVENTS_BY_TOPIC, SceneExported, decode, encode
from bp_common.contracts.envelope import MAX_EVENT_BYTES
from bp_common.contracts.events import ExportSummary
from bp_common.contracts.schemas import SCHEMA_DIR, render
from bp_common.errors import InvalidMessage

RUN = "run-0123456789abcdef0123"


def exported(**over: object) -> SceneExported:
    fields: dict[str, object] = dict(
        scene_id="kitchen",
        run_id=RUN,
        bucket="b",
        source_object="scenes/kitchen/scene.usda",
        source_generation=7,
        export_prefix=f"runs/kitchen/{RUN}/export/",
        manifest=f"runs/kitchen/{RUN}/export/export_manifest.json",
        manifest_sha256="a" * 64,
        summary=ExportSummary(objects=3, tasks=2, robots=["franka_panda"]),
    )
    fields.update(over)
    return SceneExported(**fields)  # type: ignore[arg-type]


def test_checked_in_schemas_match_the_models() -> None:
    rendered = render()
    on_disk = {p.name: p.read_text() for p in SCHEMA_DIR.glob("*.schema.json")}
    assert set(on_disk) == set(rendered), "run `make schemas` and commit the result"
    for name, text in rendered.items():
        assert on_disk[name] == text, f"{name} drifted from its model: run `make schemas`"
    assert len(rendered) == len(EVENTS_BY_TOPIC) == 6


def test_event_round_trips_with_ids_version_and_trace_in_attributes() -> None:
    trace = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    envelope = encode(exported(), trace)
    assert envelope.topic == "scenes-exported"
    assert envelope.attributes == {
        "scene_id": "kitchen",
        "run_id": RUN,
        "schema_version": "1",
        **trace,
    }
    assert decode(envelope.topic, envelope.data, envelope.attributes) == exported()


@pytest.mark.parametrize(
    ("data", "attributes", "why"),
    [
        (b"not json", {}, "not JSON"),
        (b'{"scene_id": "kitchen"}', {}, "run_id"),
        (json.dumps({**json.loads(encode(exported()).data), "extra": 1}).encode(), {}, "extra"),
        (encode(exported()).data, {"schema_version": "2"}, "schema_version 2"),
        (encode(exported()).data.replace(b"kitchen", b"../etc"), {}, "scene_id"),
    ],
)
def test_invalid_messages_are_permanent_errors(
    data: bytes, attributes: dict[str, str], why: str
) -> None:
    with pytest.raises(InvalidMessage, match="(?s)" + why.replace("(", r"\(")) as err:
        decode("scenes-exported", data, attributes)
    assert err.value.permanent


def test_scene_upload_is_validated_from_gcs_attributes_and_object() -> None:
    attributes = {
        "eventType": "OBJECT_FINALIZE",
        "payloadFormat": "JSON_API_V1",
        "bucketId": "b",
        "objectId": "scenes/x/scene.usda",
        "objectGeneration": "12",
    }
    obj = {"name": "scenes/x/scene.usda", "bucket": "b", "generation": "12", "size": "10"}
    upload = decode("scene-uploads", json.dumps(obj).encode(), attributes)
    assert upload.object.generation == "12"  # type: ignore[attr-defined]
    with pytest.raises(InvalidMessage, match="payloadFormat"):
        decode("scene-uploads", json.dumps(obj).encode(), {**attributes, "payloadFormat": "NONE"})


def test_large_payloads_are_refused_they_belong_in_the_blob_store() -> None:
    big = exported(summary=ExportSummary(objects=1, tasks=1, robots=["r"] * (MAX_EVENT_BYTES // 4)))
    with pytest.raises(InvalidMessage, match="store the payload as a blob"):
        encode(big)
