"""A behaviour-cloning policy: a small MLP in numpy, from joint state and object pose to action.

Input, per frame (`features`): the arm's joint positions, the target relative to the end
effector, the target's position at the start of the episode, the time since the start, and
sin / cos (k pi t / T) for k = 1..12 over the horizon T (the longest demonstration): the
expert's motions are timed segments, which a plain time input resolves poorly. The fingers'
positions and the gripper opening are left out on purpose: they echo the gripper command one
frame late, so a clone that sees them copies "the gripper is open, keep it open" and never
closes. Output: the raw episode's `action` (arm joint targets, then the gripper target); the
gripper's output is snapped to the nearer of the two values the demonstrations command
(open, closed). Inputs and outputs are standardised with the training set's mean and std.

Two hidden layers of ReLU units, trained on the mean squared error with Adam on mini-batches,
all seeded: the same demonstrations always give the same policy. Small enough to train on a
few thousand frames in seconds on one core.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from bp_collector.policy import PolicyObservation

Array = NDArray[np.float64]
HARMONICS = 12


@dataclass(frozen=True)
class TrainingSettings:
    hidden: tuple[int, ...] = (64, 64)
    epochs: int = 300
    batch: int = 64
    learning_rate: float = 1e-3
    seed: int = 0


def frame_features(
    time_s: Array,
    arm_joints: Array,
    ee: Array,
    target: Array,
    target_start: Array,
    horizon_s: float,
) -> Array:
    """The policy's input for N frames (see the module docstring)."""
    t = np.asarray(time_s, dtype=np.float64).reshape(-1, 1)
    phase = np.pi * np.arange(1, HARMONICS + 1) * t / horizon_s
    start = np.broadcast_to(target_start, (t.shape[0], 3))
    return np.hstack([arm_joints, target - ee, start, t, np.sin(phase), np.cos(phase)])


class BehaviourCloningPolicy:
    """The trained MLP; `act` turns one observation into the raw episode's action."""

    def __init__(
        self,
        layers: list[tuple[Array, Array]],
        scaling: tuple[Array, Array, Array, Array],
        arm: int,
        horizon_s: float,
        gripper_levels: tuple[float, float],
    ) -> None:
        self.layers = layers
        self.x_mean, self.x_std, self.y_mean, self.y_std = scaling
        self.arm = arm
        self.horizon_s = horizon_s
        self.gripper_levels = gripper_levels

    @classmethod
    def fit(
        cls,
        x: Array,
        y: Array,
        *,
        arm: int,
        horizon_s: float,
        settings: TrainingSettings = TrainingSettings(),
    ) -> BehaviourCloningPolicy:
        """Train on N rows of `frame_features` and of actions."""
        rng = np.random.default_rng(settings.seed)
        x_mean, x_std = x.mean(axis=0), x.std(axis=0) + 1e-6
        y_mean, y_std = y.mean(axis=0), y.std(axis=0) + 1e-6
        xs, ys = (x - x_mean) / x_std, (y - y_mean) / y_std
        sizes = [x.shape[1], *settings.hidden, y.shape[1]]
        layers = [
            (rng.normal(0.0, np.sqrt(2.0 / m), (m, k)), np.zeros(k))
            for m, k in itertools.pairwise(sizes)
        ]
        first = [(np.zeros_like(w), np.zeros_like(b)) for w, b in layers]
        second = [(np.zeros_like(w), np.zeros_like(b)) for w, b in layers]
        beta1, beta2, step = 0.9, 0.999, 0
        for _ in range(settings.epochs):
            order = rng.permutation(len(xs))
            for start in range(0, len(xs), settings.batch):
                batch = order[start : start + settings.batch]
                step += 1
                rate = settings.learning_rate * np.sqrt(1 - beta2**step) / (1 - beta1**step)
                for i, grads in enumerate(_gradients(layers, xs[batch], ys[batch])):
                    updated = []
                    for j, grad in enumerate(grads):
                        m = beta1 * first[i][j] + (1 - beta1) * grad
                        v = beta2 * second[i][j] + (1 - beta2) * grad**2
                        first[i] = (m, first[i][1]) if j == 0 else (first[i][0], m)
                        second[i] = (v, second[i][1]) if j == 0 else (second[i][0], v)
                        updated.append(layers[i][j] - rate * m / (np.sqrt(v) + 1e-8))
                    layers[i] = (updated[0], updated[1])
        levels = (float(y[:, arm].min()), float(y[:, arm].max()))
        return cls(layers, (x_mean, x_std, y_mean, y_std), arm, horizon_s, levels)

    def predict(self, x: Array) -> Array:
        """Actions for N rows of `frame_features`, the gripper not yet snapped."""
        h = (x - self.x_mean) / self.x_std
        for w, b in self.layers[:-1]:
            h = np.maximum(h @ w + b, 0.0)
        w, b = self.layers[-1]
        out: Array = (h @ w + b) * self.y_std + self.y_mean
        return out

    def act(self, observation: PolicyObservation) -> Array:
        x = frame_features(
            np.array([observation.time_s]),
            observation.joint_position[None, : self.arm],
            observation.ee_position[None, :],
            observation.target_position[None, :],
            observation.target_start_position,
            self.horizon_s,
        )
        action: Array = self.predict(x)[0]
        closed, opened = self.gripper_levels
        action[self.arm] = opened if action[self.arm] > (closed + opened) / 2 else closed
        return action


def _gradients(layers: list[tuple[Array, Array]], x: Array, y: Array) -> list[tuple[Array, Array]]:
    """Gradients of the mean squared error by backpropagation."""
    activations = [x]
    for w, b in layers[:-1]:
        activations.append(np.maximum(activations[-1] @ w + b, 0.0))
    w, b = layers[-1]
    delta = 2.0 * (activations[-1] @ w + b - y) / (y.shape[0] * y.shape[1])
    grads: list[tuple[Array, Array]] = []
    for index in range(len(layers) - 1, -1, -1):
        w, _ = layers[index]
        grads.append((activations[index].T @ delta, delta.sum(axis=0)))
        if index:
            delta = (delta @ w.T) * (activations[index] > 0)
    return grads[::-1]
