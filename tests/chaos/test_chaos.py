"""Chaos at a small count on the emulators (tests/chaos/scenario.py): every service killed at
random, the Pub/Sub emulator restarted, the collector worker partitioned, and storage requests
failing with 503s, stalls and lost answers, while tiny scenes go through `bp up`'s stack. Every
run ends published exactly once (or dead-lettered with a typed reason), nothing committed
changes, and no unit runs to its end twice. `benchmarks/chaos.py` runs the same at a large count."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.scenario import SERVICES, Plan, run_chaos

pytestmark = [pytest.mark.emulators, pytest.mark.timeout(1500)]
PLAN = Plan(
    scenes=3,
    kills=len(SERVICES),  # each service once
    pubsub_restarts=1,
    partitions=1,
    gcs_error_rate=0.03,
    gcs_stall_rate=0.01,
    gcs_lost_answer_rate=0.01,
    gap_s=(2.0, 8.0),
    timeout_s=1200.0,
)


def test_every_run_survives_kills_an_emulator_restart_a_partition_and_storage_faults(
    tmp_path: Path,
) -> None:
    figures = run_chaos(tmp_path, PLAN)
    print("\n" + "\n".join(figures.lines()))

    assert figures.lost == []
    assert figures.duplicated == []
    assert figures.succeeded + len(figures.dead_lettered) == PLAN.scenes
    assert figures.faults["pubsub_restart"] == 1
    assert figures.faults["collector_partition"] == 1
    assert {k for k in figures.faults if k.startswith("kill_")} == {f"kill_{s}" for s in SERVICES}
    assert sum(n for kind, n in figures.faults.items() if kind.startswith("gcs_")) > 0
    assert figures.restarts >= PLAN.kills  # the supervisor brought every killed service back
