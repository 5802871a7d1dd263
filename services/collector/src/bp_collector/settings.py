"""The collector's own settings: every `BP_COLLECTOR_*` variable `bp collector serve` reads.

bp_common's `Settings` holds what all services share (PIPELINE_ENV, BP_DATA_DIR, secrets...);
these are the collector's alone. Command-line options override them.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bp_collector.backends import DEFAULT_BACKEND, UnknownBackend, check_backend_name


class CollectorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BP_", extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    collector_backend: str = DEFAULT_BACKEND
    """The simulator episodes run on (bp_collector.backends)."""
    collector_host: str = "127.0.0.1"
    """Bind address (a VM or container: 0.0.0.0)."""
    collector_port: int = Field(default=50061, ge=0, le=65535)
    """Port; 0 picks a free one."""
    collector_data_dir: Path | None = None
    """Job store and episodes (default: BP_DATA_DIR/collector)."""
    collector_workers: int = Field(default=0, ge=0)
    """Simulation processes (0: one per core)."""
    collector_max_running_jobs: int = Field(default=4, ge=1)
    collector_max_episodes_per_job: int = Field(default=10_000, ge=1)
    collector_shutdown_grace_s: float = Field(default=25.0, ge=0)
    """Seconds running episodes get to finish on stop."""
    genie_sim_address: str = "127.0.0.1:50051"
    """host:port of the Genie Sim server (backend genie-sim); plaintext: loopback outside local."""
    genie_sim_scene_dir: Path | None = None
    """Where the genie-sim backend writes each scene for the server to load; a folder the Genie
    Sim container mounts at the same path (default: BP_DATA_DIR/genie-sim/scenes)."""

    @field_validator("collector_backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        try:
            return check_backend_name(value)
        except UnknownBackend as exc:
            raise ValueError(exc.message) from exc
