"""A stage's cap on runs at once: a run over it waits, is handed back without using a delivery
attempt, and starts once a place is free; the run leaves the cap when its outcome is recorded,
and keeps its place through a retry. Real deliveries on the embedded backends."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bp_common.bus.base import ATTR_DEFERRALS
from bp_common.config import Settings
from bp_common.runtime.delivery import Outcome
from bp_common.runtime.stage import Ports, RunRef, Stage
from bp_common.runtime.uploads import scene_upload_ref
from bp_common.wiring import deliverer

from tests.backbone.probe_stage import handle
from tests.backbone.test_one_holder import Folder, run_of


class OneRunAtATime:
    def admit(self, ports: Ports, settings: Settings, ref: RunRef) -> str | None:
        full = ports.ledger.admissions.admit("probe", ref.run_id, 1, hold_s=60)
        return f"collecting: {', '.join(full)}" if full else None

    def release(self, ports: Ports, settings: Settings, ref: RunRef) -> None:
        ports.ledger.admissions.release("probe", ref.run_id)


CAPPED = Stage(name="export", handle=handle, identify=scene_upload_ref, admission=OneRunAtATime())


def test_a_run_over_the_cap_is_handed_back_unworked_and_starts_once_a_place_is_free(
    tmp_path: Path,
) -> None:
    folder = Folder(tmp_path / "out", wait_budget_s=0.5)
    pools = folder.ports.ledger.admissions
    assert pools.admit("probe", "run-elsewhere", 1, hold_s=60) == []  # another run collects
    work = deliverer(CAPPED, folder.ports, folder.settings)
    message = folder.drop("ok")

    waited = work.deliver(message)
    assert waited.outcome is Outcome.DEFER
    assert folder.ports.ledger.get(run_of(message)) is None  # nothing worked, nothing recorded
    spent = replace(message, attributes={**message.attributes, ATTR_DEFERRALS: "20"})
    last = work.deliver(spent)  # past max_deferrals: an ordinary retry, counted
    assert last.outcome is Outcome.RETRY and last.error is not None
    assert last.error.kind == "AtCapacity" and "run-elsewhere" in last.error.message

    pools.release("probe", "run-elsewhere")
    done = work.deliver(message)
    assert done.outcome is Outcome.ACK and not done.duplicate
    assert pools.admitted("probe") == []  # its outcome recorded, the run left the cap


def test_a_run_keeps_its_place_through_a_retry_and_leaves_it_when_it_ends(
    tmp_path: Path,
) -> None:
    folder = Folder(tmp_path / "out", wait_budget_s=0.5)
    pools = folder.ports.ledger.admissions
    work = deliverer(CAPPED, folder.ports, folder.settings)

    retried = folder.drop("transient")
    assert work.deliver(retried).outcome is Outcome.RETRY
    assert pools.admitted("probe") == [run_of(retried)]  # its redelivery comes back to it
    other = folder.drop("ok")  # the probe reads the scene's latest content: now "ok"
    assert work.deliver(other).outcome is Outcome.DEFER
    assert work.deliver(retried).outcome is Outcome.ACK  # the dependency is back
    assert work.deliver(other).outcome is Outcome.ACK

    refused = folder.drop("permanent")
    assert work.deliver(refused).outcome is Outcome.DEAD_LETTER
    assert pools.admitted("probe") == []
