"""Submit's own settings (`BP_*` variables beside bp_common's Settings): what to collect, how to
cut it into shards, the cost controls, and (for `bp collect`) how to treat a collector."""

from __future__ import annotations

from typing import Literal

from bp_common.contracts.events import LookAtPlacement, OrbitPlacement
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SubmitConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BP_", extra="ignore", frozen=True)

    # Episodes per (robot, task): default 1 in `local` (a quick `bp run`), 10 elsewhere.
    episodes_per_task: int | None = Field(default=None, ge=1, le=10_000)
    episode_seconds: float = Field(default=10.0, gt=0, le=600)
    # 0: the collector's default (224x224 at 30 fps, wrist and overhead cameras).
    episode_width: int = Field(default=0, ge=0)
    episode_height: int = Field(default=0, ge=0)
    episode_fps: int = Field(default=0, ge=0)
    episode_cameras: str = ""
    # Vertical field of view of the fixed cameras (overhead, front), degrees; 0 keeps theirs.
    episode_fov_deg: float = Field(default=0.0, ge=0.0, lt=180.0)
    # Where the fixed cameras stand, as JSON: {"front": {"distance_m": 1.2, "elevation_deg": 30,
    # "azimuth_deg": 45}, "overhead": {"position": [x, y, z], "look_at": [x, y, z]}}; a camera
    # left out keeps its own place. Each must be among the recorded cameras.
    episode_camera_placement: dict[
        Literal["overhead", "front"], OrbitPlacement | LookAtPlacement
    ] = Field(default_factory=dict)

    # `auto`: in `local`, when nothing listens at BP_COLLECTOR_ADDRESS (a loopback address),
    # start a plaintext collector on loopback beside this process. `never`: use the address.
    embedded_collector: Literal["auto", "always", "never"] = "auto"

    # Episodes per shard: the unit a collector worker takes (bp_submit.shards).
    episodes_per_shard: int = Field(default=5, ge=1, le=1000)
    # The simulator the shards ask for; each worker refuses shards for another.
    collector_backend: str = Field(default="mujoco", pattern=r"^[a-z0-9-]{1,32}$")

    # Calls retry transient failures with exponential backoff (from 0.2 s, doubling, at most
    # 5 s apart) for up to this long; consecutive failures open the breaker.
    collector_retry_budget_s: float = Field(default=20.0, ge=0)
    collector_breaker_failures: int = Field(default=3, ge=1)
    collector_breaker_reset_s: float = Field(default=15.0, gt=0)
    collector_call_timeout_s: float = Field(default=30.0, gt=0)

    # Cost controls (bp_submit.caps), checked before any simulation: episodes one run may plan,
    # and runs collecting at once in the project and of one scene.
    max_run_episodes: int = Field(default=10_000, ge=1)
    max_run_shards: int = Field(default=2_000, ge=1)
    # How long a run may hold its places among the runs collecting at once.
    max_collection_s: float = Field(default=24 * 3600.0, gt=0)
    max_concurrent_runs: int = Field(default=100, ge=1)
    max_concurrent_runs_per_scene: int = Field(default=4, ge=1)

    def episodes_for(self, local: bool) -> int:
        if self.episodes_per_task is not None:
            return self.episodes_per_task
        return 1 if local else 10

    @property
    def camera_list(self) -> list[str]:
        return [c.strip() for c in self.episode_cameras.split(",") if c.strip()]
