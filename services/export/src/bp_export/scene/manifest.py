"""The typed schema of `scene_manifest.json` (the upstream scene description) and its loading.

Fields follow the upstream schema: `version`, `scene_id`, `scene{coordinate_frame,
meters_per_unit, environment_type, room{bounds}, physics_defaults}` and `objects[]{id, name,
category, description, sim_role, asset{path, source, license...}, transform{position,
rotation_quaternion | rotation_euler, scale}, dimensions_est, semantics{class, affordances,
affordance_params}, physics{mass, friction, restitution}, articulation, relationships}`.
Vectors may be written as lists or as `{x, y, z}` objects. Transforms are in the manifest's own
`coordinate_frame` and `meters_per_unit`; `rotation_euler` is XYZ in degrees; `dimensions_est`
is in metres. Unknown extra fields are kept, not rejected: upstream adds fields over time.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

from bp_common.errors import InvalidName
from bp_common.ids import validate_scene_id
from bp_scene_contract import SimRole
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bp_export.scene_errors import ManifestInvalid, ManifestMismatch

MANIFEST_FILE_NAME = "scene_manifest.json"
DEFAULT_MAX_MANIFEST_BYTES = 16 * 1024 * 1024
OBJECT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,127}$")
AFFORDANCE_PATTERN = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
KNOWN_AFFORDANCES = frozenset(
    {
        "Graspable",
        "Openable",
        "Containable",
        "Turnable",
        "Pressable",
        "Pushable",
        "Pourable",
        "Stackable",
        "Pullable",
        "Slidable",
        "Hangable",
        "Wipeable",
    }
)
_UNSAFE = "unsafe_name"


def _vector(names: tuple[str, ...]) -> Any:
    def parse(value: Any) -> Any:
        if isinstance(value, dict):
            missing = [n for n in names if n not in value]
            if missing:
                raise ValueError(f"missing component(s) {', '.join(missing)}")
            return [value[n] for n in names]
        return value

    return parse


FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Vec3 = Annotated[
    tuple[FiniteFloat, FiniteFloat, FiniteFloat], BeforeValidator(_vector(("x", "y", "z")))
]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class Quaternion(_Open):
    """A rotation as a quaternion; normalised on load."""

    w: FiniteFloat
    x: FiniteFloat
    y: FiniteFloat
    z: FiniteFloat

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            if len(value) != 4:
                raise ValueError("a quaternion has four components w, x, y, z")
            return dict(zip("wxyz", value, strict=True))
        return value

    @model_validator(mode="after")
    def _unit(self) -> Quaternion:
        if math.sqrt(self.w**2 + self.x**2 + self.y**2 + self.z**2) < 1e-9:
            raise ValueError("quaternion has zero length")
        return self

    def as_tuple(self) -> tuple[float, float, float, float]:
        norm = math.sqrt(self.w**2 + self.x**2 + self.y**2 + self.z**2)
        return (self.w / norm, self.x / norm, self.y / norm, self.z / norm)


class ObjectTransform(_Open):
    position: Vec3 = (0.0, 0.0, 0.0)
    rotation_quaternion: Quaternion | None = None
    rotation_euler: Vec3 | None = None
    scale: Vec3 = (1.0, 1.0, 1.0)

    @field_validator("scale", mode="before")
    @classmethod
    def _uniform_scale(cls, value: Any) -> Any:
        if isinstance(value, (int, float)):
            return (value, value, value)
        return value

    @model_validator(mode="after")
    def _one_rotation(self) -> ObjectTransform:
        if self.rotation_quaternion is not None and self.rotation_euler is not None:
            raise ValueError("give rotation_quaternion or rotation_euler, not both")
        return self


class AssetReference(_Open):
    """Where an object's geometry comes from, and under which licence."""

    path: str | None = None
    source: str | None = None
    license: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _british_spelling(cls, value: Any) -> Any:
        if isinstance(value, dict) and "licence" in value and "license" not in value:
            value = {**value, "license": value["licence"]}
        return value

    @field_validator("path")
    @classmethod
    def _safe_path(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if "://" in value:
            return value
        pure = PurePosixPath(value.replace("\\", "/"))
        if pure.is_absolute() or ".." in pure.parts or re.match(r"^[A-Za-z]:", value):
            raise PydanticCustomError(
                _UNSAFE,
                "asset path must be relative to the scene, without '..': {path}",
                {"path": value},
            )
        return value


class ObjectSemantics(_Open):
    class_: str | None = Field(default=None, alias="class")
    affordances: list[str] = Field(default_factory=list)
    affordance_params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("affordances")
    @classmethod
    def _affordance_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not AFFORDANCE_PATTERN.fullmatch(name):
                raise ValueError(f"affordance {name!r} must be a CamelCase word like Graspable")
        return value


class ObjectPhysics(_Open):
    # A zero mass is no mass: the scene graph would carry it, and no simulator can move it.
    mass: Positive | None = None
    friction: NonNegative | None = None
    restitution: Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)] | None = None


class ManifestObject(_Open):
    id: str
    name: str | None = None
    category: str | None = None
    description: str | None = None
    sim_role: SimRole | None = None
    asset: AssetReference | None = None
    transform: ObjectTransform | None = None
    dimensions_est: dict[str, NonNegative] | tuple[NonNegative, NonNegative, NonNegative] | None = (
        None
    )
    semantics: ObjectSemantics | None = None
    physics: ObjectPhysics | None = None
    articulation: dict[str, Any] | None = None
    relationships: list[Any] = Field(default_factory=list)

    @field_validator("id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not OBJECT_ID_PATTERN.fullmatch(value):
            raise PydanticCustomError(
                _UNSAFE,
                "object id must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-': {id}",
                {"id": value},
            )
        return value


class Room(_Open):
    bounds: Any = None


class SceneSection(_Open):
    coordinate_frame: Literal["y_up", "z_up"] | None = None
    meters_per_unit: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    environment_type: str | None = None
    room: Room | None = None
    physics_defaults: dict[str, Any] | None = None


class SceneManifest(_Open):
    """A whole `scene_manifest.json`."""

    version: str
    scene_id: str
    scene: SceneSection = Field(default_factory=SceneSection)
    objects: list[ManifestObject] = Field(default_factory=list)
    # Pipeline extension: the robots to plan for in this scene (default: the configured list).
    robots: list[str] | None = None

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value

    @model_validator(mode="after")
    def _unique_ids(self) -> SceneManifest:
        seen: set[str] = set()
        for obj in self.objects:
            if obj.id in seen:
                raise ValueError(f"object id {obj.id!r} appears more than once")
            seen.add(obj.id)
        return self

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def find_manifest(scene_path: Path) -> Path | None:
    """The manifest beside the scene file, if there is one."""
    candidate = Path(scene_path).parent / MANIFEST_FILE_NAME
    return candidate if candidate.is_file() else None


def load_manifest(
    path: Path, scene_id: str, *, max_bytes: int = DEFAULT_MAX_MANIFEST_BYTES
) -> SceneManifest:
    """Read and validate a manifest; its `scene_id` must be the scene's."""
    validate_scene_id(scene_id)
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise ManifestInvalid(
            f"manifest is {size} bytes, more than the {max_bytes} allowed",
            scene_id=scene_id,
            field=path.name,
        )
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ManifestInvalid(
            "manifest is not valid JSON", scene_id=scene_id, field=path.name, detail=str(exc)
        ) from exc
    except RecursionError as exc:  # the decoder recurses once per level of nesting
        raise ManifestInvalid(
            "manifest nests too deeply to be a scene manifest", scene_id=scene_id, field=path.name
        ) from exc
    return parse_manifest(data, scene_id)


def parse_manifest(data: Any, scene_id: str) -> SceneManifest:
    """Validate manifest JSON already decoded; errors name the object and the field."""
    try:
        manifest = SceneManifest.model_validate(data)
    except ValidationError as exc:
        raise _manifest_error(exc, data, scene_id) from exc
    try:
        validate_scene_id(manifest.scene_id)
    except InvalidName as exc:
        raise InvalidName(
            exc.message, scene_id=scene_id, field="scene_id", value=repr(manifest.scene_id)
        ) from exc
    if manifest.scene_id != scene_id:
        raise ManifestMismatch(
            "manifest is for another scene",
            scene_id=scene_id,
            field="scene_id",
            value=manifest.scene_id,
        )
    return manifest


def _manifest_error(exc: ValidationError, data: Any, scene_id: str) -> Exception:
    first = exc.errors()[0]
    location = first["loc"]
    field = ".".join(f"[{part}]" if isinstance(part, int) else str(part) for part in location)
    field = field.replace(".[", "[")
    obj = None
    if len(location) >= 2 and location[0] == "objects" and isinstance(location[1], int):
        try:
            obj = str(data["objects"][location[1]].get("id"))
        except (KeyError, IndexError, TypeError, AttributeError):
            obj = None
    error_type = InvalidName if first["type"] == _UNSAFE else ManifestInvalid
    return error_type(
        f"manifest does not match the schema: {first['msg']}",
        scene_id=scene_id,
        object=obj,
        field=field or "manifest",
        errors=exc.error_count(),
    )
