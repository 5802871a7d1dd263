"""A stand-in for import that works longer than its subscription's ack deadline: it notes each
call in its service's data folder, sleeps, and records the stage as finished, so a test can see
whether a delivery still being worked on was delivered again."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bp_common.contracts.events import EpisodesCollected
from bp_common.ledger import StageState
from bp_common.runtime.stage import Stage, StageContext, StageStop

WORK_S = 25.0
"""More than two ack deadlines of the test's subscription (10 s, Pub/Sub's least)."""
CALLS = "calls.txt"


def _handle(ctx: StageContext, event: EpisodesCollected) -> StageStop:
    calls = Path(os.environ["BP_DATA_DIR"]) / CALLS
    calls.parent.mkdir(parents=True, exist_ok=True)
    with calls.open("a") as out:
        out.write(f"{event.run_id} attempt {ctx.attempt} {ctx.attempt_id}\n")
    time.sleep(WORK_S)
    return StageStop(StageState.SKIPPED, f"worked {WORK_S:.0f} s")


SLOW_IMPORT: Stage[EpisodesCollected] = Stage("import", _handle)
