"""The bad-input corpus: malformed scenes, manifests, assets and forged notifications, generated
at test time from the tiny scene of the concurrency harness (a table and a cube).

Each case is the objects a drop puts under `scenes/{scene_id}/` (the scene file last, as
`bp drop` uploads it) and, for a forged or replayed notification, how the `scene-uploads`
event differs from the one Cloud Storage would send. `expect` is the typed error the export
stage records in the ledger and puts on the dead letter, or, for a notification the stage
rightly does nothing with, the outcome: `skipped` (the run records why) or `ignored` (acked,
no run at all).

| case | what is wrong | outcome |
|---|---|---|
| nan_translate | a NaN in an object's translate | NonFiniteValue |
| inf_translate | an infinite translate | NonFiniteValue |
| nan_scale | a NaN in a part's scale | NonFiniteValue |
| zero_scale | a part scaled to (0, 0, 0) | ZeroSizeObject |
| flat_scale | a part scaled flat on one axis | ZeroSizeObject |
| meters_per_unit_zero | metersPerUnit = 0 | InvalidStageMetadata |
| meters_per_unit_negative | metersPerUnit = -1 | InvalidStageMetadata |
| meters_per_unit_huge | metersPerUnit = 1e9 (a table a million km wide) | InvalidStageMetadata |
| meters_per_unit_tiny | metersPerUnit = 1e-12 | InvalidStageMetadata |
| up_axis_unknown | upAxis = "W" | InvalidStageMetadata |
| cyclic_sublayers | scene -> assets/a.usda -> scene | CompositionFailed |
| self_sublayer | the scene sublayers itself | CompositionFailed |
| missing_sublayer | a sublayer that is not in the drop | UnresolvedAsset |
| missing_payload | a payload that is not in the drop | UnresolvedAsset |
| missing_reference | a reference that is not in the drop | UnresolvedAsset |
| reference_escapes_dotdot | a reference to ../../../../etc/hosts | AssetOutsideScene |
| reference_absolute | a reference to /etc/hosts | AssetOutsideScene |
| reference_url | a payload at https://example.invalid/ | AssetOutsideScene |
| asset_garbage | a referenced asset of binary garbage | CompositionFailed |
| ten_thousand_objects | 10,000 rigid objects | TooManyObjects |
| over_size_cap | a scene over BP_EXPORT_MAX_SCENE_BYTES | SceneTooLarge |
| garbage_usda | random bytes as scene.usda | SceneUnparsable |
| garbage_usdc | random bytes as scene.usdc | SceneUnparsable |
| garbage_usdz | random bytes as scene.usdz | SceneUnparsable |
| empty_scene_file | a zero-byte scene.usda | SceneUnparsable |
| truncated_usda | the scene cut off halfway | SceneUnparsable |
| no_physical_object | a stage with only a Scope | EmptyScene |
| missing_default_prim | defaultPrim names no prim | MissingDefaultPrim |
| negative_mass | physics:mass = -1 | InvalidPhysics |
| negative_friction | dynamicFriction = -0.5 | InvalidPhysics |
| manifest_not_json | scene_manifest.json is not JSON | ManifestInvalid |
| manifest_empty | a zero-byte manifest | ManifestInvalid |
| manifest_garbage | binary garbage as the manifest | ManifestInvalid |
| manifest_schema_no_objects | objects missing | ManifestInvalid |
| manifest_schema_wrong_types | objects is a string | ManifestInvalid |
| manifest_negative_mass | an object's mass is -3 | ManifestInvalid |
| manifest_nan_literal | NaN in the JSON | ManifestInvalid |
| manifest_deeply_nested | JSON nested 100,000 deep | ManifestInvalid |
| manifest_asset_dotdot | an asset path of ../../../etc/passwd | InvalidName |
| manifest_asset_absolute | an asset path of /etc/passwd | InvalidName |
| manifest_object_id_traversal | an object id of ../x | InvalidName |
| manifest_other_scene | the manifest names another scene | ManifestMismatch |
| manifest_objects_disagree | the manifest and the USD name other objects | ManifestMismatch |
| unknown_robot | the manifest asks for robot r2d2 | InvalidInput |
| forged_generation_attribute | attributes: another generation | InvalidMessage, no run |
| forged_object_attribute | attributes: another object | InvalidMessage, no run |
| forged_bucket_attribute | attributes: another bucket | InvalidMessage, no run |
| forged_future_generation | a generation the object never had | NotificationMismatch |
| forged_size | the object's size differs from the stored one | NotificationMismatch |
| forged_other_bucket | a bucket this stage does not read (emulators only) | NotificationMismatch |
| forged_unsafe_scene_id | scenes/../x/scene.usda | InvalidName, no run |
| forged_not_json | the event's data is not JSON | InvalidMessage, no run |
| forged_delete_event | OBJECT_DELETE for a scene file | ignored |
| replayed_old_generation | the notification of a generation since overwritten | skipped |

A message marked `no run` is dead-lettered with its typed error and recorded against no run: the
ids it carries cannot be trusted, and recording a failure against the run it names would let a
forged message fail someone else's run.

A URL as a manifest object's `asset.path` is accepted: it records where the asset came from, and
nothing fetches it (a URL as a USD reference or payload is refused, above).

A replayed old generation maps to its own run, which records
the export `skipped` as superseded: nothing is read and nothing is dead-lettered, since the
notification is genuine, only stale. An OBJECT_DELETE is acked without a run.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.concurrency.harness import write_tiny_scene

# A scene over this many bytes is refused (the tests lower BP_EXPORT_MAX_SCENE_BYTES to it).
SIZE_CAP = 4 * 1024 * 1024
Forgery = Callable[[dict[str, str], dict[str, str]], None]


@dataclass(frozen=True)
class Case:
    name: str
    files: dict[str, bytes]
    """Relative to `scenes/{scene_id}/`; the scene file is uploaded last."""
    expect: str
    """The error type the ledger and the dead letter carry, or `skipped` / `ignored`."""
    forge: Forgery | None = None
    """Changes the notification's (attributes, resource) before it is published."""
    replay_after: dict[str, bytes] = field(default_factory=dict)
    """Uploaded after the first drop; the first drop's notification is then published again."""
    data: bytes | None = None
    """The notification's data instead of the object resource."""
    recorded: bool = True
    """Whether the run the notification names gets a ledger record (forged ids do not)."""

    @property
    def scene_id(self) -> str:
        return "bad-" + self.name.replace("_", "-")

    @property
    def scene_name(self) -> str:
        return next(n for n in self.files if n.startswith("scene."))


def tiny_scene_text(folder: Path) -> str:
    return write_tiny_scene(folder).read_text()


def _garbage(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def _manifest(**changes: object) -> dict[str, object]:
    manifest: dict[str, object] = {
        "version": "1.0",
        "scene_id": "placeholder",
        "scene": {"coordinate_frame": "z_up", "meters_per_unit": 1.0},
        "objects": [{"id": "table"}, {"id": "cube"}],
    }
    manifest.update(changes)
    return manifest


def _with_asset(path: str) -> dict[str, object]:
    return _manifest(objects=[{"id": "table"}, {"id": "cube", "asset": {"path": path}}])


def _many_objects(count: int) -> str:
    parts = [
        '#usda 1.0\n(\n    defaultPrim = "World"\n    metersPerUnit = 1\n    upAxis = "Z"\n)\n\n'
        'def Xform "World"\n{\n    def Scope "Objects"\n    {\n'
    ]
    for i in range(count):
        x, y = (i % 100) * 0.1, (i // 100) * 0.1
        parts.append(
            f'        def Cube "obj_c{i}" (prepend apiSchemas = ["PhysicsRigidBodyAPI",'
            f' "PhysicsCollisionAPI"])\n        {{\n            double size = 0.05\n'
            f"            double3 xformOp:translate = ({x:.1f}, {y:.1f}, 0.8)\n"
            f'            uniform token[] xformOpOrder = ["xformOp:translate"]\n        }}\n'
        )
    parts.append("    }\n}\n")
    return "".join(parts)


def _forge_attribute(key: str, value: str) -> Forgery:
    def forge(attributes: dict[str, str], resource: dict[str, str]) -> None:
        attributes[key] = value

    return forge


def _forge_resource(key: str, value: Callable[[str], str]) -> Forgery:
    def forge(attributes: dict[str, str], resource: dict[str, str]) -> None:
        resource[key] = value(resource[key])
        if key == "generation":
            attributes["objectGeneration"] = resource[key]
        if key == "bucket":
            attributes["bucketId"] = resource[key]

    return forge


def _forge_name(name: str) -> Forgery:
    def forge(attributes: dict[str, str], resource: dict[str, str]) -> None:
        attributes["objectId"] = resource["name"] = name

    return forge


def _delete(attributes: dict[str, str], resource: dict[str, str]) -> None:
    attributes["eventType"] = "OBJECT_DELETE"


def build_corpus(work: Path, *, emulators: bool = False) -> list[Case]:
    """Every case, generated into bytes (nothing binary is committed)."""
    good = tiny_scene_text(work / "tiny")
    usda = "scene.usda"

    def edit(old: str, new: str, count: int = 1) -> bytes:
        assert old in good, old
        return good.replace(old, new, count).encode()

    header = '    upAxis = "Z"\n'
    cube_translate = "double3 xformOp:translate = (0, 0.15, 0.75)"
    block_scale = "float3 xformOp:scale = (0.05, 0.05, 0.05)"

    def sublayers(*paths: str) -> bytes:
        listed = ", ".join(f"@{p}@" for p in paths)
        return edit(header, header + f"    subLayers = [{listed}]\n")

    def arc(kind: str, path: str) -> bytes:
        return edit(
            'def Xform "obj_cube" (\n',
            f'def Xform "obj_cube" (\n            {kind} = @{path}@</Thing>\n',
        )

    cyclic = b"#usda 1.0\n(\n    subLayers = [@../scene.usda@]\n)\n"
    over = good + "\n# " + "x" * SIZE_CAP + "\n"
    scene_cases: list[tuple[str, dict[str, bytes], str]] = [
        ("nan_translate", {usda: edit(cube_translate, cube_translate.replace("0.15", "nan"))},
         "NonFiniteValue"),
        ("inf_translate", {usda: edit(cube_translate, cube_translate.replace("0.75", "inf"))},
         "NonFiniteValue"),
        ("nan_scale", {usda: edit(block_scale, "float3 xformOp:scale = (nan, 0.05, 0.05)")},
         "NonFiniteValue"),
        ("zero_scale", {usda: edit(block_scale, "float3 xformOp:scale = (0, 0, 0)")},
         "ZeroSizeObject"),
        ("flat_scale", {usda: edit(block_scale, "float3 xformOp:scale = (0.05, 0.05, 0)")},
         "ZeroSizeObject"),
        ("meters_per_unit_zero", {usda: edit("metersPerUnit = 1", "metersPerUnit = 0")},
         "InvalidStageMetadata"),
        ("meters_per_unit_negative", {usda: edit("metersPerUnit = 1", "metersPerUnit = -1")},
         "InvalidStageMetadata"),
        ("meters_per_unit_huge", {usda: edit("metersPerUnit = 1", "metersPerUnit = 1e9")},
         "InvalidStageMetadata"),
        ("meters_per_unit_tiny", {usda: edit("metersPerUnit = 1", "metersPerUnit = 1e-12")},
         "InvalidStageMetadata"),
        ("up_axis_unknown", {usda: edit('upAxis = "Z"', 'upAxis = "W"')},
         "InvalidStageMetadata"),
        ("cyclic_sublayers", {"assets/a.usda": cyclic, usda: sublayers("./assets/a.usda")},
         "CompositionFailed"),
        ("self_sublayer", {usda: sublayers("./scene.usda")}, "CompositionFailed"),
        ("missing_sublayer", {usda: sublayers("./assets/absent.usda")}, "UnresolvedAsset"),
        ("missing_payload", {usda: arc("payload", "./assets/absent.usda")}, "UnresolvedAsset"),
        ("missing_reference", {usda: arc("references", "./assets/absent.usda")},
         "UnresolvedAsset"),
        ("reference_escapes_dotdot", {usda: arc("references", "../../../../etc/hosts")},
         "AssetOutsideScene"),
        ("reference_absolute", {usda: arc("references", "/etc/hosts")}, "AssetOutsideScene"),
        ("reference_url", {usda: arc("payload", "https://example.invalid/cube.usda")},
         "AssetOutsideScene"),
        ("asset_garbage", {"assets/cube.usda": _garbage(4096, 1),
                           usda: arc("references", "./assets/cube.usda")}, "CompositionFailed"),
        ("ten_thousand_objects", {usda: _many_objects(10_000).encode()}, "TooManyObjects"),
        ("over_size_cap", {usda: over.encode()}, "SceneTooLarge"),
        ("garbage_usda", {usda: _garbage(8192, 2)}, "SceneUnparsable"),
        ("garbage_usdc", {"scene.usdc": b"PXR-USDC" + _garbage(8192, 3)}, "SceneUnparsable"),
        ("garbage_usdz", {"scene.usdz": b"PK\x03\x04" + _garbage(8192, 4)}, "SceneUnparsable"),
        ("empty_scene_file", {usda: b""}, "SceneUnparsable"),
        ("truncated_usda", {usda: good[: len(good) // 2].encode()}, "SceneUnparsable"),
        ("no_physical_object", {usda: b'#usda 1.0\n(\n    defaultPrim = "World"\n    upAxis = "Z"\n'
                                b'    metersPerUnit = 1\n)\ndef Xform "World"\n{\n'
                                b'    def Scope "Objects"\n    {\n    }\n}\n'}, "EmptyScene"),
        ("missing_default_prim", {usda: edit('defaultPrim = "World"', 'defaultPrim = "Nowhere"')},
         "MissingDefaultPrim"),
        ("negative_mass", {usda: edit("float physics:mass = 0.1", "float physics:mass = -1")},
         "InvalidPhysics"),
        ("negative_friction", {usda: edit("physics:dynamicFriction = 0.7",
                                          "physics:dynamicFriction = -0.5")}, "InvalidPhysics"),
    ]  # fmt: skip
    manifests: list[tuple[str, bytes, str]] = [
        ("manifest_not_json", b"{ this is not json", "ManifestInvalid"),
        ("manifest_empty", b"", "ManifestInvalid"),
        ("manifest_garbage", _garbage(2048, 5), "ManifestInvalid"),
        ("manifest_schema_no_objects", json.dumps({"version": "1.0"}).encode(), "ManifestInvalid"),
        ("manifest_schema_wrong_types", json.dumps(_manifest(objects="all")).encode(),
         "ManifestInvalid"),
        ("manifest_negative_mass", json.dumps(_manifest(
            objects=[{"id": "table"}, {"id": "cube", "physics": {"mass": -3}}])).encode(),
         "ManifestInvalid"),
        ("manifest_nan_literal", json.dumps(_manifest(
            objects=[{"id": "table"}, {"id": "cube", "physics": {"mass": float("nan")}}])).encode(),
         "ManifestInvalid"),
        ("manifest_deeply_nested", b"[" * 100_000 + b"]" * 100_000, "ManifestInvalid"),
        ("manifest_asset_dotdot", json.dumps(_with_asset("../../../etc/passwd")).encode(),
         "InvalidName"),
        ("manifest_asset_absolute", json.dumps(_with_asset("/etc/passwd")).encode(),
         "InvalidName"),
        ("manifest_object_id_traversal", json.dumps(_manifest(
            objects=[{"id": "table"}, {"id": "../x"}])).encode(), "InvalidName"),
        ("manifest_other_scene", b"", "ManifestMismatch"),  # scene_id filled in below
        ("manifest_objects_disagree", json.dumps(_manifest(
            objects=[{"id": "table"}, {"id": "teapot"}])).encode(), "ManifestMismatch"),
        ("unknown_robot", b"", "InvalidInput"),  # filled in below
    ]  # fmt: skip
    cases = [Case(name, files, expect) for name, files, expect in scene_cases]
    for name, data, expect in manifests:
        case = Case(name, {"scene_manifest.json": data, usda: good.encode()}, expect)
        if name == "manifest_other_scene":
            data = json.dumps(_manifest(scene_id="another-scene")).encode()
        elif name == "unknown_robot":
            data = json.dumps(_manifest(scene_id=case.scene_id, robots=["r2d2"])).encode()
        elif data.startswith(b"{") and b'"scene_id": "placeholder"' in data:
            data = data.replace(b'"placeholder"', json.dumps(case.scene_id).encode())
        cases.append(Case(name, {"scene_manifest.json": data, usda: good.encode()}, expect))
    plain = {usda: good.encode()}
    forged = [
        ("forged_generation_attribute", _forge_attribute("objectGeneration", "1"),
         "InvalidMessage"),
        ("forged_object_attribute",
         _forge_attribute("objectId", "scenes/someone-else/scene.usda"), "InvalidMessage"),
        ("forged_bucket_attribute", _forge_attribute("bucketId", "another-bucket"),
         "InvalidMessage"),
        ("forged_future_generation",
         _forge_resource("generation", lambda g: str(int(g) + 1000)), "NotificationMismatch"),
        ("forged_size", _forge_resource("size", lambda s: str(int(s) + 1)),
         "NotificationMismatch"),
        ("forged_unsafe_scene_id", _forge_name("scenes/../x/scene.usda"), "InvalidName"),
        ("forged_delete_event", _delete, "ignored"),
    ]  # fmt: skip
    if emulators:  # the embedded bucket has no name to disagree with
        forged.append(
            (
                "forged_other_bucket",
                _forge_resource("bucket", lambda b: "another-bucket"),
                "NotificationMismatch",
            )
        )
    unnamed = {"InvalidMessage", "InvalidName", "ignored"}  # no run the ledger could trust
    cases += [
        Case(name, plain, expect, forge=forge, recorded=expect not in unnamed)
        for name, forge, expect in forged
    ]
    cases.append(
        Case("forged_not_json", plain, "InvalidMessage", data=b"{not json", recorded=False)
    )
    changed = good.replace("(0, 0.15, 0.75)", "(0, 0.2, 0.75)").encode()
    cases.append(Case("replayed_old_generation", plain, "skipped", replay_after={usda: changed}))
    return cases
