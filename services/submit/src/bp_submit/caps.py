"""Cost controls, checked at planning before any simulation: a run's size, and runs at once.

- A run may plan at most `BP_MAX_RUN_EPISODES` episodes (robots x kept tasks x episodes per
  task) and `BP_MAX_RUN_SHARDS` shards; a bigger one is refused for good with `RunOverCap`.
- At most `BP_MAX_CONCURRENT_RUNS` runs collect at once in the project, and at most
  `BP_MAX_CONCURRENT_RUNS_PER_SCENE` of one scene; a run over either waits for a place (the
  delivery rules hand its message back without using a delivery attempt). A run holds its
  places from planning until its collection fans in, or `BP_MAX_COLLECTION_S` at most.
"""

from __future__ import annotations

from bp_common.config import Settings
from bp_common.errors import PermanentError
from bp_common.ledger import StageState
from bp_common.ledger.admissions import PROJECT_POOL, scene_pool
from bp_common.runtime.stage import Ports, RunRef

from bp_submit.config import SubmitConfig

# A run keeps its place through its collection, and between deliveries the subscription's
# longest retry backoff (10 minutes).
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


def check_shard_count(config: SubmitConfig, shards: int) -> None:
    if shards > config.max_run_shards:
        raise RunOverCap(
            f"the run plans {shards} shards, over the cap of {config.max_run_shards}"
            " (BP_MAX_RUN_SHARDS): raise BP_EPISODES_PER_SHARD or collect fewer episodes",
            planned=shards,
            cap=config.max_run_shards,
        )


class ConcurrentRuns:
    """The submit stage's admission: places in the project's pool and in the scene's, held
    through the collection; the collect stage's fan-in lets them go (or their deadline)."""

    def __init__(self, config: SubmitConfig | None = None) -> None:
        self.config = config

    def admit(self, ports: Ports, settings: Settings, ref: RunRef) -> str | None:
        cfg = self.config or SubmitConfig()
        pools = ports.ledger.admissions
        hold_s = cfg.max_collection_s + REDELIVERY_S
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
        """After submit's outcome: a planned run keeps its places while it collects."""
        record = ports.ledger.get(ref.run_id)
        submit = record.stages.get("submit") if record else None
        if submit is not None and submit.state is StageState.SUCCEEDED:
            return
        ports.ledger.admissions.release_run(ref.scene_id, ref.run_id)
