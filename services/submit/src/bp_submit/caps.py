"""Cost controls, checked at planning before any simulation: a run's size, and runs at once.

- A run may plan at most `BP_MAX_RUN_EPISODES` episodes (robots x kept tasks x episodes per
  task); a bigger one is refused for good with `RunOverCap`.
- At most `BP_MAX_CONCURRENT_RUNS` runs collect at once in the project, and at most
  `BP_MAX_CONCURRENT_RUNS_PER_SCENE` of one scene; a run over either waits for a place (the
  delivery rules hand its message back without using a delivery attempt).
"""

from __future__ import annotations

from bp_common.config import Settings
from bp_common.errors import PermanentError
from bp_common.ledger.admissions import PROJECT_POOL, scene_pool
from bp_common.runtime.stage import Ports, RunRef

from bp_submit.config import SubmitConfig

# A run keeps its place between deliveries: a redelivery comes back within the subscription's
# maximum retry backoff (10 minutes), after at most one follow budget.
REDELIVERY_S = 600.0


class RunOverCap(PermanentError):
    """The run plans more than a run may collect."""


def check_run_size(config: SubmitConfig, robots: dict[str, list[str]], per_task: int) -> int:
    """The episodes the run plans; RunOverCap when that is over the cap."""
    planned = sum(len(tasks) for tasks in robots.values()) * per_task
    if planned > config.max_run_episodes:
        raise RunOverCap(
            f"the run plans {planned} episodes, over the cap of {config.max_run_episodes}"
            " (BP_MAX_RUN_EPISODES): collect fewer episodes per task or split the scene",
            planned=planned,
            cap=config.max_run_episodes,
            robots=len(robots),
        )
    return planned


class ConcurrentRuns:
    """The submit stage's admission: places in the project's pool and in the scene's."""

    def __init__(self, config: SubmitConfig | None = None, *, follow_margin_s: float) -> None:
        self.config = config
        self.follow_margin_s = follow_margin_s

    def admit(self, ports: Ports, settings: Settings, ref: RunRef) -> str | None:
        cfg = self.config or SubmitConfig()
        pools = ports.ledger.admissions
        hold_s = cfg.follow_budget_s + self.follow_margin_s + REDELIVERY_S
        full = pools.admit(PROJECT_POOL, ref.run_id, cfg.max_concurrent_runs, hold_s)
        if full:
            return (
                f"{len(full)} runs collecting in the project, the cap"
                f" (BP_MAX_CONCURRENT_RUNS={cfg.max_concurrent_runs})"
            )
        full = pools.admit(
            scene_pool(ref.scene_id), ref.run_id, cfg.max_concurrent_runs_per_scene, hold_s
        )
        if full:
            pools.release(PROJECT_POOL, ref.run_id)
            return (
                f"{len(full)} runs of scene {ref.scene_id} collecting, the cap"
                f" (BP_MAX_CONCURRENT_RUNS_PER_SCENE={cfg.max_concurrent_runs_per_scene}):"
                f" {', '.join(full)}"
            )
        return None

    def release(self, ports: Ports, settings: Settings, ref: RunRef) -> None:
        pools = ports.ledger.admissions
        pools.release(scene_pool(ref.scene_id), ref.run_id)
        pools.release(PROJECT_POOL, ref.run_id)
