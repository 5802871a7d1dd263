"""The import stage's settings: quality thresholds and gates, and the LeRobot output format.

`QualitySettings` is the one source of the quality defaults (docs/quality-metrics.md lists them
and a test keeps that table equal to this model). Every field is read from the environment as
`BP_QUALITY_<FIELD>`, e.g. `BP_QUALITY_MIN_SCORE=0.7`; the stage reads them at each delivery.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bp_import.lerobot.episode_frames import CodebaseVersion
from bp_import.lerobot.video_encoding import VideoSettings


class QualitySettings(BaseSettings):
    """Thresholds of the per-episode quality score and of the per-robot dataset gates."""

    model_config = SettingsConfigDict(env_prefix="BP_QUALITY_", extra="ignore", frozen=True)

    # An episode enters the dataset only with a quality score of at least this...
    min_score: float = Field(default=0.6, ge=0.0, le=1.0)
    # ...and, unless this is false, only if its task succeeded.
    require_success: bool = True

    # Dataset gates, per robot, over every episode found (invalid ones count as failures).
    min_success_rate: float = Field(default=0.5, ge=0.0, le=1.0)
    min_collision_free_rate: float = Field(default=0.8, ge=0.0, le=1.0)
    min_pass_rate: float = Field(default=0.5, ge=0.0, le=1.0)
    min_episodes: int = Field(default=1, ge=1)

    # Validation: how far past a recorded joint limit (rad or m) a joint may be (MuJoCo's
    # limits are soft: a finger pushed by an object passes its limit by a few millimetres)...
    joint_limit_tolerance: float = Field(default=0.02, ge=0.0)
    # ...and how far from 1 a quaternion's norm may be.
    quaternion_norm_tolerance: float = Field(default=1e-3, gt=0.0)

    # Scales that map raw measures onto [0, 1] scores (docs/quality-metrics.md).
    jerk_scale_rad_s3: float = Field(default=50.0, gt=0.0)
    joint_margin_scale: float = Field(default=0.05, gt=0.0, le=0.5)
    grasp_slip_scale_m: float = Field(default=0.05, gt=0.0)

    def record(self) -> dict[str, Any]:
        """The values in force, for reports and provenance."""
        return self.model_dump()


class LeRobotSettings(BaseSettings):
    """`BP_LEROBOT_FORMAT` (v3.0 or v2.1) and `BP_LEROBOT_VIDEO_CODEC` (h264 or av1)."""

    model_config = SettingsConfigDict(env_prefix="BP_LEROBOT_", extra="ignore", frozen=True)

    format: CodebaseVersion = "v3.0"
    video_codec: Literal["h264", "av1"] = "h264"

    def video(self) -> VideoSettings:
        return VideoSettings.av1() if self.video_codec == "av1" else VideoSettings()

    def record(self) -> dict[str, Any]:
        return self.model_dump()
