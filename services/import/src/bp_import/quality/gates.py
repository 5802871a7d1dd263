"""The dataset gates of one robot: enough episodes, and enough of them successful, clean, kept.

Rates are over every episode the robot's manifest commits (T), invalid ones included, so a
corrupt episode counts against the run rather than vanishing from it:
- success rate = valid episodes whose task succeeded / T       >= min_success_rate
- collision-free rate = valid collision-free episodes / T      >= min_collision_free_rate
- pass rate = episodes in the dataset / T                      >= min_pass_rate
- episodes in the dataset                                      >= min_episodes
A robot passes when every gate passes; the run passes when every robot does. A failing gate
stops the run as `quality_failed`: the report is written, no dataset is committed or announced.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bp_import.episodes.selection import EpisodeAssessment
from bp_import.import_config import QualitySettings


@dataclass(frozen=True)
class GateResult:
    name: str
    value: float
    threshold: float
    passed: bool

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "value": round(self.value, 6)}


@dataclass(frozen=True)
class EpisodeCounts:
    """How many of a robot's episode folders are what."""

    episodes: int
    valid: int
    succeeded: int
    collision_free: int
    included: int
    excluded: dict[str, int]

    @classmethod
    def of(cls, assessments: Sequence[EpisodeAssessment]) -> EpisodeCounts:
        valid = [a for a in assessments if a.is_valid and a.quality is not None]
        return cls(
            episodes=len(assessments),
            valid=len(valid),
            succeeded=sum(1 for a in valid if a.quality and a.quality.success),
            collision_free=sum(1 for a in valid if a.quality and a.quality.collision_free),
            included=sum(1 for a in assessments if a.included),
            excluded=dict(
                sorted(
                    Counter(a.reason for a in assessments if not a.included and a.reason).items()
                )
            ),
        )

    def rate(self, count: int) -> float:
        return count / self.episodes if self.episodes else 0.0

    @property
    def success_rate(self) -> float:
        return self.rate(self.succeeded)

    @property
    def collision_free_rate(self) -> float:
        return self.rate(self.collision_free)

    @property
    def pass_rate(self) -> float:
        return self.rate(self.included)

    def record(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "success_rate": round(self.success_rate, 6),
            "collision_free_rate": round(self.collision_free_rate, 6),
            "pass_rate": round(self.pass_rate, 6),
        }


def dataset_gates(counts: EpisodeCounts, settings: QualitySettings) -> list[GateResult]:
    """Every gate of the module docstring, passed or not."""
    checks = [
        ("min_episodes", float(counts.included), float(settings.min_episodes)),
        ("min_success_rate", counts.success_rate, settings.min_success_rate),
        ("min_collision_free_rate", counts.collision_free_rate, settings.min_collision_free_rate),
        ("min_pass_rate", counts.pass_rate, settings.min_pass_rate),
    ]
    return [
        GateResult(name, value, threshold, value >= threshold) for name, value, threshold in checks
    ]


def failed_gates(gates: Sequence[GateResult]) -> list[str]:
    return [f"{g.name}: {g.value:.3g} < {g.threshold:.3g}" for g in gates if not g.passed]
