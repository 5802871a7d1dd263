"""The learnability check: clone the dataset's demonstrations, run the clone on unseen seeds.

For each task with demonstrations (the episodes that succeeded, as the dataset keeps them; at
most `max_tasks`, the most demonstrated first), a `BehaviourCloningPolicy` is trained on their
frames and run by the backend (`PolicyEvaluator`) from `held_out` seeds that no demonstration
used, for as long as the longest demonstration plus a fifth. Learnability is the share of those
runs that succeed, reported with the number of training episodes and frames. With
`shuffle_actions` the actions are permuted across frames before training: the control that the
check can fail, since such a policy has nothing to learn.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from bp_episode_format import read_episode
from bp_scene_contract import SceneGraph, TaskConfig

from bp_collector.backend import EpisodeOrder, episode_id_for
from bp_collector.learnability.behaviour_cloning import (
    BehaviourCloningPolicy,
    TrainingSettings,
    frame_features,
)
from bp_collector.policy import PolicyEvaluator

FORMAT_VERSION = 1
HELD_OUT_SEED_START = 1_000_000


@dataclass(frozen=True)
class Demonstration:
    """One successful episode's frames: what the policy sees, and the expert's actions."""

    task_id: str
    seed: int
    fps: int
    time_s: np.ndarray
    arm_joints: np.ndarray
    ee: np.ndarray
    target: np.ndarray
    actions: np.ndarray

    @property
    def seconds(self) -> float:
        return len(self.time_s) / self.fps

    def features(self, horizon_s: float) -> np.ndarray:
        return frame_features(
            self.time_s, self.arm_joints, self.ee, self.target, self.target[0], horizon_s
        )


@dataclass(frozen=True)
class TaskLearnability:
    task_id: str
    training_episodes: int
    training_frames: int
    training_seconds: float
    held_out_seeds: list[int]
    successes: int
    success_rate: float
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LearnabilityResult:
    scene_id: str
    robot: str
    policy: str
    shuffled_actions: bool
    training_episodes: int
    evaluations: int
    successes: int
    success_rate: float
    tasks: list[TaskLearnability]
    seconds: float

    def record(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, **asdict(self)}


def demonstrations(episode_dirs: Sequence[Path]) -> list[Demonstration]:
    """Every committed, successful episode as training rows (others are not demonstrations)."""
    out: list[Demonstration] = []
    for folder in sorted(episode_dirs):
        try:
            episode = read_episode(folder)
        except Exception:  # an uncommitted or damaged folder is no demonstration
            continue
        manifest = episode.manifest
        if not manifest.get("success"):
            continue
        states = episode.states()
        ids = manifest["state"]["object_ids"]
        ee = states["ee_position"].astype(np.float64)
        target = (
            states["object_position"][:, ids.index(manifest["target"])].astype(np.float64)
            if manifest.get("target") in ids
            else ee
        )
        arm = len(manifest["state"]["action_names"]) - 1
        out.append(
            Demonstration(
                task_id=str(manifest["task_id"]),
                seed=int(manifest["seed"]),
                fps=int(manifest["fps"]),
                time_s=states["timestamp"].astype(np.float64),
                arm_joints=states["joint_position"][:, :arm].astype(np.float64),
                ee=ee,
                target=target,
                actions=states["action"].astype(np.float64),
            )
        )
    return out


def check_learnability(
    episode_dirs: Sequence[Path],
    scene: SceneGraph,
    tasks: TaskConfig,
    robot: str,
    evaluator: PolicyEvaluator,
    *,
    held_out: int = 5,
    max_tasks: int = 2,
    shuffle_actions: bool = False,
    training: TrainingSettings = TrainingSettings(),
) -> LearnabilityResult:
    """Train and evaluate per task (module docstring)."""
    started = time.perf_counter()
    demos = demonstrations(episode_dirs)
    by_task: dict[str, list[Demonstration]] = {}
    for demo in demos:
        by_task.setdefault(demo.task_id, []).append(demo)
    chosen = sorted(by_task, key=lambda t: (-len(by_task[t]), t))[:max_tasks]
    results: list[TaskLearnability] = []
    rng = np.random.default_rng(training.seed)
    for task_id in chosen:
        mine = by_task[task_id]
        horizon = max(d.seconds for d in mine)
        x = np.vstack([d.features(horizon) for d in mine])
        y = np.vstack([d.actions for d in mine])
        if shuffle_actions:
            y = y[rng.permutation(len(y))]
        t0 = time.perf_counter()
        policy = BehaviourCloningPolicy.fit(
            x, y, arm=y.shape[1] - 1, horizon_s=horizon, settings=training
        )
        trained = time.perf_counter() - t0
        used = {d.seed for d in mine}
        candidates = range(HELD_OUT_SEED_START, HELD_OUT_SEED_START + held_out + len(used))
        seeds = [s for s in candidates if s not in used][:held_out]
        fps = mine[0].fps
        seconds = min(60.0, 1.2 * horizon)
        outcomes = [
            evaluator.evaluate_policy(
                EpisodeOrder(
                    episode_id=episode_id_for(scene.scene_id, task_id, robot, seed),
                    scene=scene,
                    tasks=tasks,
                    task_id=task_id,
                    robot=robot,
                    seed=seed,
                    cameras=(),
                    width=64,
                    height=64,
                    fps=fps,
                    max_seconds=seconds,
                ),
                policy,
            )
            for seed in seeds
        ]
        won = sum(o.success for o in outcomes)
        results.append(
            TaskLearnability(
                task_id=task_id,
                training_episodes=len(mine),
                training_frames=len(x),
                training_seconds=round(trained, 3),
                held_out_seeds=seeds,
                successes=won,
                success_rate=round(won / len(seeds), 6) if seeds else 0.0,
                reasons=sorted({o.reason for o in outcomes if not o.success}),
            )
        )
    evaluations = sum(len(r.held_out_seeds) for r in results)
    successes = sum(r.successes for r in results)
    return LearnabilityResult(
        scene_id=scene.scene_id,
        robot=robot,
        policy="behaviour cloning: numpy MLP "
        + "x".join(str(h) for h in training.hidden)
        + f", {training.epochs} epochs",
        shuffled_actions=shuffle_actions,
        training_episodes=sum(r.training_episodes for r in results),
        evaluations=evaluations,
        successes=successes,
        success_rate=round(successes / evaluations, 6) if evaluations else 0.0,
        tasks=results,
        seconds=round(time.perf_counter() - started, 3),
    )
