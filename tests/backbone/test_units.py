"""A stage worked in pieces: each piece (a unit such as `collect/{shard}`) is held and recorded
on its own, so pieces of one run work side by side while a duplicate of one piece waits."""

from __future__ import annotations

import time
from pathlib import Path

from bp_common.contracts.events import SceneUpload
from bp_common.runtime.delivery import Outcome
from bp_common.runtime.stage import RunRef, Stage
from bp_common.wiring import deliverer

from tests.backbone.probe_stage import handle
from tests.backbone.test_one_holder import Folder, in_thread, wait_until

RUN = "run-" + "0" * 19 + "1"


def piece_of(upload: SceneUpload) -> RunRef:
    return RunRef("kitchen", RUN, unit=f"export/g{upload.object.generation}")


PIECES = Stage(name="export", handle=handle, identify=piece_of)


def test_pieces_of_one_run_work_side_by_side_and_a_duplicate_waits_for_its_own(
    tmp_path: Path,
) -> None:
    folder = Folder(tmp_path / "out", wait_budget_s=0.5)
    go = tmp_path / "go"
    slow = folder.drop(f"slow-export {go}")
    slow_unit = f"export/g{slow.attributes['objectGeneration']}"
    holder, held = in_thread(deliverer(PIECES, folder.ports, folder.settings), slow)
    wait_until("the first piece to start", lambda: folder.ports.ledger.get(RUN))
    time.sleep(0.5)  # past reading its scene, before the next drop replaces it

    fast = folder.drop("ok")  # the probe reads the scene's latest content
    assert deliverer(PIECES, folder.ports, folder.settings).deliver(fast).outcome is Outcome.ACK
    duplicate = deliverer(PIECES, folder.ports, folder.settings).deliver(slow)
    assert duplicate.outcome is Outcome.DEFER  # its own piece is held
    go.touch()
    holder.join(30)
    assert [v.outcome for v in held] == [Outcome.ACK]

    record = folder.ports.ledger.get(RUN)
    assert record is not None
    fast_unit = f"export/g{fast.attributes['objectGeneration']}"
    assert {name: r.state.value for name, r in record.stages.items()} == {
        slow_unit: "succeeded",
        fast_unit: "succeeded",
    }
    for unit in (slow_unit, fast_unit):
        lease = folder.ports.ledger.leases.get(RUN, unit)
        assert lease is not None and [t.outcome for t in lease.log] == ["succeeded"]
