"""Which stage consumes which topic, and the names of subscriptions and dead-letter queues."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bp_common.contracts.events import (
    CollectionShard,
    DatasetsPublished,
    DatasetsReady,
    EpisodesCollected,
    SceneExported,
    SceneUpload,
)

STAGE_NAMES = ("export", "submit", "collect", "import", "upload")


@dataclass(frozen=True)
class Route:
    stage: str
    consumes: str
    produces: str
    delivery: Literal["push", "pull"]

    @property
    def service(self) -> str:
        """The service (its folder under services/, its image) that runs the stage: the
        collector's workers run `collect`."""
        return "collector" if self.stage == "collect" else self.stage

    @property
    def subscription(self) -> str:
        return f"bp-{self.stage}"

    @property
    def dead_letter_topic(self) -> str:
        return f"bp-{self.stage}-dead-letter"

    @property
    def dead_letter_subscription(self) -> str:
        return f"bp-{self.stage}-dead-letter"


# Collector workers run a shard for minutes, and an import of many episodes outlives a push
# request's ack deadline, so both pull: the client extends a message's lease while it is worked
# on, so it is never redelivered meanwhile (decision 0085). Submit only plans, but pulls to
# share flow control with the workers it feeds. Export and upload fit a push request.
ROUTES: tuple[Route, ...] = (
    Route("export", SceneUpload.TOPIC, SceneExported.TOPIC, "push"),
    Route("submit", SceneExported.TOPIC, CollectionShard.TOPIC, "pull"),
    Route("collect", CollectionShard.TOPIC, EpisodesCollected.TOPIC, "pull"),
    Route("import", EpisodesCollected.TOPIC, DatasetsReady.TOPIC, "pull"),
    Route("upload", DatasetsReady.TOPIC, DatasetsPublished.TOPIC, "push"),
)
ROUTE_BY_STAGE = {r.stage: r for r in ROUTES}


def routes_consuming(topic: str) -> list[Route]:
    return [r for r in ROUTES if r.consumes == topic]
