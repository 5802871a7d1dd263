"""The messages on each topic. Large payloads stay in the blob store; events point at them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

SceneId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
RunId = Annotated[str, StringConstraints(pattern=r"^run-[0-9a-f]{20}$")]
ObjectKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._/-]{1,1024}$")]
RobotName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Event(BaseModel):
    """A pipeline event: strict, immutable, versioned, and tied to one scene and run."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    TOPIC: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: Literal[1] = 1
    scene_id: SceneId
    run_id: RunId
    bucket: str = Field(min_length=1, max_length=222)


class GcsNotificationAttributes(BaseModel):
    """Attributes Cloud Storage sets on a JSON_API_V1 notification."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    event_type: str = Field(alias="eventType")
    payload_format: Literal["JSON_API_V1"] = Field(alias="payloadFormat")
    bucket_id: str = Field(alias="bucketId", min_length=1)
    object_id: str = Field(alias="objectId", min_length=1)
    object_generation: Annotated[str, StringConstraints(pattern=r"^[0-9]+$")] = Field(
        alias="objectGeneration"
    )
    event_time: datetime | None = Field(default=None, alias="eventTime")
    notification_config: str | None = Field(default=None, alias="notificationConfig")
    overwrote_generation: str | None = Field(default=None, alias="overwroteGeneration")
    overwritten_by_generation: str | None = Field(default=None, alias="overwrittenByGeneration")


class GcsObject(BaseModel):
    """The object resource (JSON API v1) carried as the notification's data."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    bucket: str = Field(min_length=1)
    generation: Annotated[str, StringConstraints(pattern=r"^[0-9]+$")]
    size: Annotated[str, StringConstraints(pattern=r"^[0-9]+$")] | None = None
    content_type: str | None = Field(default=None, alias="contentType")
    md5_hash: str | None = Field(default=None, alias="md5Hash")
    crc32c: str | None = None
    time_created: datetime | None = Field(default=None, alias="timeCreated")


class SceneUpload(BaseModel):
    """`scene-uploads`: a Cloud Storage notification (attributes + object resource)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    TOPIC: ClassVar[str] = "scene-uploads"
    SCHEMA_VERSION: ClassVar[int] = 1

    attributes: GcsNotificationAttributes
    object: GcsObject

    @model_validator(mode="after")
    def _attributes_describe_the_object(self) -> SceneUpload:
        # Cloud Storage sets both from the same object: a mismatch is a forged or corrupted
        # message, and neither side can be trusted to name a run.
        pairs = (
            ("bucketId", self.attributes.bucket_id, self.object.bucket),
            ("objectId", self.attributes.object_id, self.object.name),
            ("objectGeneration", self.attributes.object_generation, self.object.generation),
        )
        wrong = [f"{name} {a!r} != {b!r}" for name, a, b in pairs if a != b]
        if wrong:
            raise ValueError("attributes do not match the object: " + "; ".join(wrong))
        return self

    @property
    def is_finalize(self) -> bool:
        return self.attributes.event_type == "OBJECT_FINALIZE"


class ExportSummary(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    objects: int = Field(ge=0)
    tasks: int = Field(ge=0)
    robots: list[RobotName]


class SceneExported(Event):
    """`scenes-exported`: the scene graph, asset index and task config are committed."""

    TOPIC: ClassVar[str] = "scenes-exported"

    source_object: ObjectKey
    source_generation: int = Field(ge=0)
    export_prefix: ObjectKey
    manifest: ObjectKey
    manifest_sha256: Sha256
    summary: ExportSummary


# `{robot}.{task number:03d}-{task, as a slug}.{first episode:05d}`: unique in its run, readable,
# and safe as a file name and a ledger unit.
ShardId = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}\.[0-9]{3}-[a-z0-9_-]{0,48}\.[0-9]{5}$"),
]


Coordinate = Annotated[float, Field(ge=-100.0, le=100.0, allow_inf_nan=False)]


class OrbitPlacement(BaseModel):
    """Around the task's work area, looking at its centre; azimuth 0 is beyond the work area
    facing the robot, 90 the robot's left, 180 behind it (counter-clockwise seen from above)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    distance_m: float = Field(ge=0.1, le=10.0, allow_inf_nan=False)
    elevation_deg: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False)
    azimuth_deg: float = Field(default=0.0, ge=-360.0, le=360.0, allow_inf_nan=False)


class LookAtPlacement(BaseModel):
    """At a point of the world frame (Z up, metres), looking at another."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    position: tuple[Coordinate, Coordinate, Coordinate]
    look_at: tuple[Coordinate, Coordinate, Coordinate]

    @model_validator(mode="after")
    def _apart(self) -> LookAtPlacement:
        if sum((a - b) ** 2 for a, b in zip(self.position, self.look_at, strict=True)) < 0.01:
            raise ValueError("position and look_at must be at least 0.1 m apart")
        return self


class CameraSettings(BaseModel):
    """What a run asks of the cameras; zeros and empties keep the backend's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cameras: list[str] = Field(default_factory=list)
    width: int = Field(default=0, ge=0, le=4096)
    height: int = Field(default=0, ge=0, le=4096)
    fps: int = Field(default=0, ge=0, le=240)
    fovy_deg: float = Field(default=0.0, ge=0.0, lt=180.0)
    placements: dict[Literal["overhead", "front"], OrbitPlacement | LookAtPlacement] = Field(
        default_factory=dict
    )
    """Where fixed cameras stand; a camera left out keeps its own place."""


class CollectionShard(Event):
    """`collection-shards`: some episodes of one robot and task, for a collector worker."""

    TOPIC: ClassVar[str] = "collection-shards"

    shard_id: ShardId
    export_manifest: ObjectKey
    export_manifest_sha256: Sha256
    robot: RobotName
    task_id: str = Field(min_length=1, max_length=200)
    first_episode: int = Field(ge=0)
    """Episode numbers run from here; each one's seed derives from the run's seed and it."""
    episodes: int = Field(ge=1, le=1000)
    run_seed: int = Field(ge=0)
    backend: str = Field(pattern=r"^[a-z0-9-]{1,32}$")
    camera: CameraSettings
    max_episode_seconds: float = Field(gt=0, le=600)


class RobotEpisodes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    robot: RobotName
    prefix: ObjectKey
    manifest: ObjectKey
    episodes: int = Field(ge=0)
    succeeded: int = Field(ge=0)
    collision_free: int = Field(ge=0)


class EpisodesCollected(Event):
    """`episodes-collected`: raw episodes for every robot are committed with checksums."""

    TOPIC: ClassVar[str] = "episodes-collected"

    episodes_prefix: ObjectKey
    robots: list[RobotEpisodes] = Field(min_length=1)


class RobotDataset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    robot: RobotName
    prefix: ObjectKey
    manifest: ObjectKey
    codebase_version: Literal["v2.1", "v3.0"]
    episodes: int = Field(ge=0)
    frames: int = Field(ge=0)
    quality_pass_rate: float = Field(ge=0.0, le=1.0)


class HeldBackDataset(BaseModel):
    """A robot whose dataset failed its own quality gates: not published, its report kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    robot: RobotName
    reasons: list[str] = Field(min_length=1)
    manifest: ObjectKey
    """The create-only manifest that commits the verdict and names the quality report."""
    report: ObjectKey | None = None
    """The robot's quality report (HTML), when it has one."""


class DatasetsReady(Event):
    """`datasets-ready`: the robots whose datasets passed their own quality gates (publishable),
    and those held back with why."""

    TOPIC: ClassVar[str] = "datasets-ready"

    datasets: list[RobotDataset] = Field(min_length=1)
    held_back: list[HeldBackDataset] = Field(default_factory=list)


class PublishedDataset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    robot: RobotName
    storage_bucket: str = Field(min_length=1)
    prefix: ObjectKey
    manifest: ObjectKey
    uploaded: int = Field(ge=0)
    skipped: int = Field(ge=0)
    verified: int = Field(ge=0)
    bytes: int = Field(ge=0)
    duration_s: float = Field(ge=0.0)


class DatasetsPublished(Event):
    """`datasets-published`: verified datasets are live behind their LATEST pointers; robots
    import held back are named, unpublished."""

    TOPIC: ClassVar[str] = "datasets-published"

    published: list[PublishedDataset] = Field(min_length=1)
    held_back: list[HeldBackDataset] = Field(default_factory=list)


TOPICS: tuple[str, ...] = (
    SceneUpload.TOPIC,
    SceneExported.TOPIC,
    CollectionShard.TOPIC,
    EpisodesCollected.TOPIC,
    DatasetsReady.TOPIC,
    DatasetsPublished.TOPIC,
)

EVENTS_BY_TOPIC: dict[str, type[BaseModel]] = {
    SceneUpload.TOPIC: SceneUpload,
    SceneExported.TOPIC: SceneExported,
    CollectionShard.TOPIC: CollectionShard,
    EpisodesCollected.TOPIC: EpisodesCollected,
    DatasetsReady.TOPIC: DatasetsReady,
    DatasetsPublished.TOPIC: DatasetsPublished,
}
