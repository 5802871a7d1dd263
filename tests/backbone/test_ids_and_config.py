"""Run ids from object generations, safe names, and the production safety check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from bp_common.config import PipelineEnv, Settings, declared_variables
from bp_common.errors import InvalidName, UnknownSetting, UnsafeConfiguration
from bp_common.ids import run_id_for, scene_id_from_object, validate_object_name


def test_run_id_is_stable_per_generation_and_differs_across_generations() -> None:
    a = run_id_for("bucket", "scenes/k/scene.usda", 1)
    assert a == run_id_for("bucket", "scenes/k/scene.usda", "1")
    assert a != run_id_for("bucket", "scenes/k/scene.usda", 2)
    assert a != run_id_for("other", "scenes/k/scene.usda", 1)


@pytest.mark.parametrize(
    "name",
    [
        "scenes/../scene.usda",
        "scenes/a//scene.usda",
        "/scenes/a/scene.usda",
        "scenes/a b/scene.usda",
        "scenes/Ünï/scene.usda",
        "scenes/-x/scene.usda",
    ],
)
def test_unsafe_scene_objects_are_rejected(name: str) -> None:
    with pytest.raises(InvalidName):
        scene_id_from_object(name)


def test_object_names_refuse_traversal() -> None:
    assert validate_object_name("runs/a/b.json") == "runs/a/b.json"
    for bad in ("../x", "a/./b", "a/../b", "", "a\\b"):
        with pytest.raises(InvalidName):
            validate_object_name(bad)


def test_production_refuses_unsafe_settings_and_lists_every_problem() -> None:
    settings = Settings(
        _env_file=None,
        env=PipelineEnv.PRODUCTION,
        stage="export",
        collector_insecure=True,  # type: ignore[call-arg]
        allow_placeholder_embeddings=True,
        push_auth=False,
    )
    environ = {
        "FIREBASE_SERVICE_ACCOUNT_JSON": "{...}",
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:8085",
        "FIREBASE_KEY_FILE": "/secrets/firebase",
    }
    with pytest.raises(UnsafeConfiguration) as err:
        settings.ensure_safe(environ)
    text = str(err.value)
    for needle in (
        "COLLECTOR_INSECURE",
        "PUSH_AUTH",
        "DEAD_LETTER_TOPIC",
        "PLACEHOLDER_EMBEDDINGS",
        "LEDGER_BACKEND",
        "FIREBASE_SERVICE_ACCOUNT_JSON",
        "PUBSUB_EMULATOR_HOST",
    ):
        assert needle in text
    assert "FIREBASE_KEY_FILE" not in text  # a path to a mounted secret is fine
    assert len(err.value.problems) == 7


def test_safe_production_settings_start_and_local_never_refuses() -> None:
    safe = Settings(
        _env_file=None,
        env=PipelineEnv.PRODUCTION,
        stage="export",  # type: ignore[call-arg]
        dead_letter_topic="bp-export-dead-letter",
        push_audience="https://export",
        push_service_account="push@p.iam.gserviceaccount.com",
        ledger_backend="firestore",
    )
    assert safe.ensure_safe({}) is safe
    assert safe.embeddings_required and safe.push_auth_enabled
    local = Settings(_env_file=None, collector_insecure=True)  # type: ignore[call-arg]
    assert local.ensure_safe({"SOME_TOKEN": "x"}) is local
    assert not local.push_auth_enabled


def test_pull_workers_need_no_push_settings_and_own_variables_are_not_secrets() -> None:
    worker = Settings(  # type: ignore[call-arg]
        _env_file=None,
        env=PipelineEnv.PRODUCTION,
        stage="submit",
        dead_letter_topic="bp-submit-dead-letter",
        ledger_backend="firestore",
        secrets_backend="secret-manager",
    )
    environ = {"BP_SECRETS_BACKEND": "secret-manager", "BP_SECRETS_DIR": "/secrets"}
    assert worker.problems(environ) == []


def test_outside_local_a_misspelt_setting_refuses_to_start_and_names_the_right_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIPELINE_ENV", "dev")
    monkeypatch.setenv("BP_COLECTOR_ADDRESS", "collector:50061")
    monkeypatch.setenv("BP_QUALITY_MIN_SCOR", "0.7")
    with pytest.raises(UnknownSetting) as err:
        Settings()
    assert err.value.permanent
    assert err.value.problems == [
        "BP_COLECTOR_ADDRESS is not a setting any installed service reads; "
        "did you mean BP_COLLECTOR_ADDRESS?",
        "BP_QUALITY_MIN_SCOR is not a setting any installed service reads; "
        "did you mean BP_QUALITY_MIN_SCORE?",
    ]


def test_local_accepts_an_unknown_variable_but_lists_it_as_a_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BP_NOT_A_THING", "1")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.is_local
    assert any(p.startswith("BP_NOT_A_THING is not a setting") for p in settings.problems())


def test_every_service_settings_class_is_declared() -> None:
    known = declared_variables()
    # Common, submit, import (quality and LeRobot) and upload settings, by one variable each.
    for name in (
        "BP_COLLECTOR_ADDRESS",
        "BP_EPISODES_PER_TASK",
        "BP_QUALITY_MIN_SCORE",
        "BP_LEROBOT_FORMAT",
        "BP_UPLOAD_READ_BACK",
        "BP_ENV",
    ):
        assert name in known


def test_check_config_reports_a_typo_and_fails(tmp_path: Path) -> None:
    env = {**os.environ, "PIPELINE_ENV": "dev", "BP_COLECTOR_ADDRESS": "x"}
    done = subprocess.run(
        [sys.executable, "-m", "bp_common.cli", "check-config"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "BP_COLECTOR_ADDRESS" in done.stdout
    assert "did you mean BP_COLLECTOR_ADDRESS?" in done.stdout
