"""A stand-in for submit on its own pull subscription: it records each `scenes-exported` it is
handed as a finished stage, so a test can see the pull worker deliver without a collector."""

from __future__ import annotations

from bp_common.contracts.events import SceneExported
from bp_common.ledger import StageState
from bp_common.runtime.stage import Stage, StageContext, StageStop


def _handle(ctx: StageContext, event: SceneExported) -> StageStop:
    return StageStop(StageState.SKIPPED, f"pulled by {ctx.attempt_id}")


PULL_PROBE: Stage[SceneExported] = Stage("submit", _handle)
