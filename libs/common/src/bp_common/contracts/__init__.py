"""Event contracts: one versioned pydantic model per Pub/Sub topic."""

from bp_common.contracts.envelope import Envelope, decode, encode
from bp_common.contracts.events import (
    EVENTS_BY_TOPIC,
    TOPICS,
    DatasetsPublished,
    DatasetsReady,
    EpisodesCollected,
    Event,
    GcsNotificationAttributes,
    GcsObject,
    SceneExported,
    SceneUpload,
)

__all__ = [
    "EVENTS_BY_TOPIC",
    "TOPICS",
    "DatasetsPublished",
    "DatasetsReady",
    "Envelope",
    "EpisodesCollected",
    "Event",
    "GcsNotificationAttributes",
    "GcsObject",
    "SceneExported",
    "SceneUpload",
    "decode",
    "encode",
]
