"""Run ids from object generations, safe names, and the production safety check."""

from __future__ import annotations

import pytest
from bp_common.config import Settings
from bp_common.errors import InvalidName, UnsafeConfiguration
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
        env="production",
        stage="export",
        collector_insecure=True,  # type: ignore[call-arg]
        allow_placeholder_embeddings=True,
        push_auth=False,
    )
    environ = {
        "FIREBASE_SERVICE_ACCOUNT_JSON": "{...}",
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:8085",
        "BP_FIREBASE_KEY_FILE": "/secrets/firebase",
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
    assert "BP_FIREBASE_KEY_FILE" not in text  # a path to a mounted secret is fine
    assert len(err.value.problems) == 7


def test_safe_production_settings_start_and_local_never_refuses() -> None:
    safe = Settings(
        _env_file=None,
        env="production",
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
        env="production",
        stage="submit",
        dead_letter_topic="bp-submit-dead-letter",
        ledger_backend="firestore",
        secrets_backend="secret-manager",
    )
    environ = {"BP_SECRETS_BACKEND": "secret-manager", "BP_SECRETS_DIR": "/secrets"}
    assert worker.problems(environ) == []
