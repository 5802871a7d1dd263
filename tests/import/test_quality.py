"""Quality metrics follow their documented formulas; the dataset gates decide the run; the
BP_QUALITY_* environment reaches the gates; the documented defaults are the model's."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from bp_import.episodes.validation import validate_episode
from bp_import.import_config import QualitySettings
from bp_import.quality.gates import EpisodeCounts, dataset_gates
from bp_import.quality.metrics import (
    WEIGHTS,
    completeness,
    episode_cameras,
    measure_episode,
    min_joint_margin,
    path_efficiency,
    quality_score,
    rms_joint_jerk,
)
from bp_import.robot_import import assess_robot

from .raw_episodes import (
    ROBOT,
    SCENE_ID,
    RecordedEpisodes,
    copy_episode,
    edit_manifest,
    edit_states,
)

RUN_ID = "run-00000000000000000002"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "quality-metrics.md"


def measured(folder: Path, settings: QualitySettings | None = None):  # type: ignore[no-untyped-def]
    check = validate_episode(folder, settings or QualitySettings())
    assert check.valid is not None, check.defect
    return measure_episode(check.valid, episode_cameras(check.valid), settings or QualitySettings())


def test_a_successful_real_episode_scores_high_on_every_metric(recorded: RecordedEpisodes) -> None:
    quality = measured(recorded.succeeded[0])
    assert quality.success == 1.0 and quality.collision_free == 1.0
    assert quality.completeness == 1.0
    assert quality.grasp_stability is not None and quality.grasp_stability > 0.5
    assert quality.grasp_slip_m is not None and quality.grasp_slip_m < 0.03
    assert quality.path_efficiency is not None and 0.3 < quality.path_efficiency <= 1.0
    assert quality.joint_limit_margin is not None and quality.min_joint_margin is not None
    assert quality.smoothness is not None and 0.0 < quality.smoothness <= 1.0
    assert QualitySettings().min_score <= quality.score <= 1.0


def test_a_failed_episode_loses_exactly_the_success_weight(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    quality = measured(recorded.succeeded[0])
    failed = copy_episode(recorded.succeeded[0], tmp_path / "failed")
    edit_manifest(lambda m: m.update(success=False))(failed)
    again = measured(failed)
    assert again.success == 0.0
    total = sum(WEIGHTS[k] for k, v in quality.components().items() if v is not None)
    assert again.score == pytest.approx(quality.score - WEIGHTS["success"] / total)


def test_a_gripper_closing_beside_the_target_has_no_grasp_stability(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    folder = copy_episode(recorded.succeeded[0], tmp_path / "no-contact")

    def forget_contacts(arrays: dict[str, np.ndarray]) -> None:
        for name in list(arrays):
            if name.startswith("contact_"):
                arrays[name] = arrays[name][:0]

    edit_states(forget_contacts)(folder)
    assert measured(folder).grasp_stability == 0.0


def test_smoothness_is_from_the_rms_jerk_of_the_arm_joints() -> None:
    dt = 1 / 30
    t = np.arange(40) * dt
    q = np.stack([2.0 * t**3, -1.0 * t**3], axis=1)  # jerk 12 and -6 rad/s^3 exactly
    assert rms_joint_jerk(q, dt) == pytest.approx(np.sqrt((12**2 + 6**2) / 2))
    assert rms_joint_jerk(q[:3], dt) is None


def test_path_efficiency_measures_straightness_between_gripper_events() -> None:
    corner = np.array([[0, 0, 0], [0.5, 0, 0], [1, 0, 0], [1, 0.5, 0], [1, 1, 0]], dtype=float)
    open_all_along = np.zeros(5, dtype=bool)
    assert path_efficiency(corner, open_all_along) == pytest.approx(np.sqrt(2) / 2)
    closes_at_the_corner = np.array([False, False, True, True, True])
    assert path_efficiency(corner, closes_at_the_corner) == pytest.approx(1.0)
    assert path_efficiency(np.zeros((5, 3)), open_all_along) is None


def test_joint_limit_margin_is_the_closest_approach_as_a_fraction_of_the_range() -> None:
    limits = type("Limits", (), {"lower": [-1.0, 0.0, None], "upper": [1.0, 4.0, None]})()
    q = np.array([[0.0, 2.0, 9.0], [0.8, 3.0, -9.0]])
    assert min_joint_margin(q, limits, 3) == pytest.approx(0.1)  # 0.2 of a range of 2
    assert min_joint_margin(q, None, 3) is None


def test_completeness_counts_the_expected_camera_streams_and_the_state() -> None:
    both = (("wrist", 64, 64), ("overhead", 64, 64))
    assert completeness(both, both) == 1.0
    assert completeness(both[:1], both) == pytest.approx(4 / 7)
    assert completeness((), ()) == 1.0


def test_the_score_is_a_weighted_mean_of_the_metrics_computed() -> None:
    everything: dict[str, float | None] = dict.fromkeys(WEIGHTS, 1.0)
    assert quality_score(everything) == 1.0
    partial = {**dict.fromkeys(WEIGHTS), "success": 1.0, "collision_free": 0.0}
    assert quality_score(partial) == pytest.approx(0.35 / 0.55)
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)


def mixed_robot(recorded: RecordedEpisodes) -> list[Path]:
    """Two successes and two failures: success rate 0.5, pass rate 0.5 by default."""
    return [*recorded.succeeded, *recorded.failed]


def test_rates_count_invalid_episodes_as_failures(
    recorded: RecordedEpisodes, tmp_path: Path
) -> None:
    broken = copy_episode(recorded.succeeded[0], tmp_path / "zz-broken")
    (broken / "states.npz").write_bytes(b"damaged")
    quality = assess_robot(
        SCENE_ID, RUN_ID, ROBOT, [*recorded.succeeded, broken], QualitySettings()
    )
    assert (quality.counts.episodes, quality.counts.valid, quality.counts.included) == (3, 2, 2)
    assert quality.counts.success_rate == pytest.approx(2 / 3)
    assert quality.counts.excluded == {"size_mismatch": 1}


@pytest.mark.parametrize(
    "gate", ["min_episodes", "min_success_rate", "min_collision_free_rate", "min_pass_rate"]
)
def test_each_gate_fails_on_its_own(recorded: RecordedEpisodes, gate: str) -> None:
    quality = assess_robot(SCENE_ID, RUN_ID, ROBOT, mixed_robot(recorded), QualitySettings())
    assert quality.passed
    measured_value = {g.name: g.value for g in quality.gates}[gate]
    above = measured_value + 1 if gate == "min_episodes" else min(1.0, measured_value + 0.01)
    if gate == "min_collision_free_rate":
        above = 1.0  # every episode is collision-free: make one collide
    settings = QualitySettings.model_validate({gate: above})
    counts = quality.counts
    if gate == "min_collision_free_rate":
        counts = EpisodeCounts(**{**counts.__dict__, "collision_free": counts.collision_free - 1})
    gates = {g.name: g.passed for g in dataset_gates(counts, settings)}
    assert gates == {name: name != gate for name in gates}


def test_bp_quality_environment_variables_change_the_gate_outcome(
    recorded: RecordedEpisodes, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = [recorded.succeeded[0], *recorded.failed]  # success 1/3, pass 1/3
    assert not assess_robot(SCENE_ID, RUN_ID, ROBOT, folders, QualitySettings()).passed
    monkeypatch.setenv("BP_QUALITY_MIN_SUCCESS_RATE", "0.3")
    monkeypatch.setenv("BP_QUALITY_MIN_PASS_RATE", "0.3")
    assert assess_robot(SCENE_ID, RUN_ID, ROBOT, folders, QualitySettings()).passed
    monkeypatch.setenv("BP_QUALITY_MIN_EPISODES", "2")
    relaxed = assess_robot(SCENE_ID, RUN_ID, ROBOT, folders, QualitySettings())
    assert [g.name for g in relaxed.gates if not g.passed] == ["min_episodes"]
    monkeypatch.setenv("BP_QUALITY_REQUIRE_SUCCESS", "false")
    monkeypatch.setenv("BP_QUALITY_MIN_SCORE", "0")
    assert assess_robot(SCENE_ID, RUN_ID, ROBOT, folders, QualitySettings()).counts.included == 3


def test_the_documented_defaults_are_the_settings_defaults() -> None:
    rows = dict(
        re.findall(
            r"^\| `(\w+)` \| `BP_QUALITY_\w+` \| ([^|]+?) \|", DOCS.read_text(), re.MULTILINE
        )
    )
    defaults = QualitySettings.model_fields
    assert set(rows) == set(defaults)
    for name, text in rows.items():
        value = defaults[name].default
        assert str(value).lower() == text.strip().lower(), name
