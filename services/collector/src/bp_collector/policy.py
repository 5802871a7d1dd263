"""The policy port: what a policy sees each frame, and a backend that runs one in its simulator.

A backend that can evaluate policies (`PolicyEvaluator`, a capability beside `Backend`) resets
the episode an `EpisodeOrder` describes (scene, task, robot, seed: the same randomisation draw
as a recorded episode of that seed), then each frame hands the policy a `PolicyObservation`
and applies the action it returns (the raw episode's action: arm joint targets, then the
gripper target), and judges the final state with the scene contract's success rule. Nothing is
recorded: the outcome is all that comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from bp_collector.backend import EpisodeOrder


@dataclass(frozen=True)
class PolicyObservation:
    """One frame as a policy sees it, named as in the raw episode format."""

    time_s: float
    joint_position: NDArray[np.float64]
    gripper_opening: float
    ee_position: NDArray[np.float64]
    target_position: NDArray[np.float64]
    """The task's target: a free object's position, else the end effector's (no object pose)."""
    target_start_position: NDArray[np.float64]
    """`target_position` in the episode's first frame."""


class Policy(Protocol):
    def act(self, observation: PolicyObservation) -> NDArray[np.float64]: ...


@dataclass(frozen=True)
class PolicyOutcome:
    success: bool
    reason: str
    n_frames: int


@runtime_checkable
class PolicyEvaluator(Protocol):
    """A backend that can run a policy in closed loop (see the module docstring)."""

    def evaluate_policy(self, order: EpisodeOrder, policy: Policy) -> PolicyOutcome: ...
