"""Submit's own settings (`BP_*` variables beside bp_common's Settings): what to collect, how
long to follow a job in one delivery, and how to treat an unreachable collector."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The streaming-pull worker extends a message's lease for at most this long (PullWorker's
# max_lease_s); a delivery must give the message back before that, or Pub/Sub hands it to
# another worker while this one still follows the job.
PULL_MAX_LEASE_S = 3600


Coordinate = Annotated[float, Field(ge=-100.0, le=100.0, allow_inf_nan=False)]


class OrbitPlacement(BaseModel):
    """Around the task's work area, looking at its centre; azimuth 0 is beyond the work area
    facing the robot, 90 the robot's left, 180 behind it (counter-clockwise seen from above)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    distance_m: float = Field(ge=0.1, le=10.0, allow_inf_nan=False)
    elevation_deg: float = Field(ge=-90.0, le=90.0, allow_inf_nan=False)
    azimuth_deg: float = Field(default=0.0, ge=-360.0, le=360.0, allow_inf_nan=False)


class LookAtPlacement(BaseModel):
    """At a point of the world frame (Z up, metres), looking at another."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    position: tuple[Coordinate, Coordinate, Coordinate]
    look_at: tuple[Coordinate, Coordinate, Coordinate]

    @model_validator(mode="after")
    def _apart(self) -> LookAtPlacement:
        if sum((a - b) ** 2 for a, b in zip(self.position, self.look_at, strict=True)) < 0.01:
            raise ValueError("position and look_at must be at least 0.1 m apart")
        return self


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

    # One delivery follows the jobs at most this long, then gives the message back (a
    # transient CollectionInProgress) so it returns and re-attaches. Must stay below the pull
    # worker's maximum lease (PULL_MAX_LEASE_S); a run may take up to
    # BP_MAX_DELIVERY_ATTEMPTS times this before it is dead-lettered.
    follow_budget_s: float = Field(default=3000.0, gt=0, lt=PULL_MAX_LEASE_S)

    # Calls retry transient failures with exponential backoff (from 0.2 s, doubling, at most
    # 5 s apart) for up to this long; consecutive failures open the breaker.
    collector_retry_budget_s: float = Field(default=20.0, ge=0)
    collector_breaker_failures: int = Field(default=3, ge=1)
    collector_breaker_reset_s: float = Field(default=15.0, gt=0)
    collector_call_timeout_s: float = Field(default=30.0, gt=0)

    # Cost controls (bp_submit.caps), checked before any simulation: episodes one run may plan,
    # and runs collecting at once in the project and of one scene.
    max_run_episodes: int = Field(default=10_000, ge=1)
    max_concurrent_runs: int = Field(default=100, ge=1)
    max_concurrent_runs_per_scene: int = Field(default=4, ge=1)

    def episodes_for(self, local: bool) -> int:
        if self.episodes_per_task is not None:
            return self.episodes_per_task
        return 1 if local else 10

    @property
    def camera_list(self) -> list[str]:
        return [c.strip() for c in self.episode_cameras.split(",") if c.strip()]
