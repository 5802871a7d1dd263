"""MuJoCo behind the backend port: capabilities, and an episode order run by `simulate_episode`."""

from __future__ import annotations

from pathlib import Path

from bp_episode_format import STREAMS
from bp_robot_models import ROBOT_IDS

from bp_collector.backend import Capabilities, EpisodeOrder, EpisodeSummary
from bp_collector.mujoco.episode import simulate_episode
from bp_collector.mujoco.policy_rollout import rollout_policy
from bp_collector.mujoco.world import SUPPORTED_CAMERAS
from bp_collector.policy import Policy, PolicyOutcome

# What one CPU simulation process renders and steps in reasonable time.
MAX_IMAGE_SIDE = 1024
MAX_FPS = 120
MAX_EPISODE_SECONDS = 120.0


class MujocoBackend:
    """MuJoCo on the CPU, rendering offscreen: the collector's own simulator."""

    def capabilities(self) -> Capabilities:
        return Capabilities(
            name="mujoco",
            robots=ROBOT_IDS,
            cameras=SUPPORTED_CAMERAS,
            streams=STREAMS,
            max_image_side=MAX_IMAGE_SIDE,
            max_fps=MAX_FPS,
            max_episode_seconds=MAX_EPISODE_SECONDS,
        )

    def run_episode(self, order: EpisodeOrder, out_dir: Path) -> EpisodeSummary:
        result = simulate_episode(
            order.scene,
            order.tasks,
            order.robot,
            order.task_id,
            order.seed,
            out_dir,
            cameras=order.cameras,
            width=order.width,
            height=order.height,
            fps=order.fps,
            max_seconds=order.max_seconds,
            fovy_deg=order.fovy_deg,
            placements=order.placements,
        )
        if result.episode_id != order.episode_id:
            raise RuntimeError(
                f"episode recorded as {result.episode_id}, ordered as {order.episode_id}"
            )
        return EpisodeSummary(
            episode_id=result.episode_id,
            success=result.success,
            reason=result.reason,
            n_frames=result.n_frames,
            collision_count=result.collision_count,
            peak_collision_force_n=result.peak_collision_force_n,
            timings_s=result.timings_s,
        )

    def evaluate_policy(self, order: EpisodeOrder, policy: Policy) -> PolicyOutcome:
        """The policy in closed loop from the order's seed (`PolicyEvaluator`)."""
        return rollout_policy(
            order.scene,
            order.tasks,
            order.robot,
            order.task_id,
            order.seed,
            policy,
            fps=order.fps,
            max_seconds=order.max_seconds,
        )

    def close(self) -> None:
        """Nothing to let go of: each episode builds and drops its own model."""
