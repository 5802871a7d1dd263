"""Where the Firebase credential comes from, what production refuses, and the catalogue port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bp_common.config import PipelineEnv, Settings
from bp_common.errors import NotFound, UnsafeConfiguration
from bp_common.secrets import FileSecretStore
from bp_common.secrets.secretmanager import SecretManagerStore, make_secret_manager_client
from bp_ops.secret_manager import SecretManagerServer
from bp_upload.catalogue.firestore import FirestoreCatalogue
from bp_upload.catalogue.port import CatalogueEntry, DatasetCatalogue
from bp_upload.catalogue.sqlite import SqliteCatalogue
from bp_upload.destinations.credentials import (
    SECRET_NAME,
    CredentialsUnusable,
    env_credential_problems,
    firebase_credential,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from firebase_admin import credentials
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore

from tests.conftest import unique_name


def settings(env: str = "local") -> Settings:
    return Settings(_env_file=None, env=PipelineEnv(env), project_id="bp-test")  # type: ignore[call-arg]


def service_account_json() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "bp-firebase-project",
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": "uploader@bp-firebase-project.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    ).encode()


def test_the_service_account_comes_from_a_mounted_secret_file(tmp_path: Path) -> None:
    (tmp_path / SECRET_NAME).mkdir()
    (tmp_path / SECRET_NAME / "latest").write_bytes(service_account_json())
    found = firebase_credential(settings("staging"), FileSecretStore(tmp_path), environ={})
    assert isinstance(found.credential, credentials.Certificate) and not found.anonymous
    assert found.project_id == "bp-firebase-project"


def test_the_service_account_comes_from_secret_manager() -> None:
    with SecretManagerServer("bp-test") as server:
        server.add_version(SECRET_NAME, service_account_json())
        store = SecretManagerStore(
            make_secret_manager_client(server.endpoint, insecure=True), "bp-test"
        )
        found = firebase_credential(settings("staging"), store, environ={})
        assert found.credential.service_account_email.startswith("uploader@")
        assert server.requests == [f"projects/bp-test/secrets/{SECRET_NAME}/versions/latest"]


def test_an_unusable_secret_is_named_but_never_echoed(tmp_path: Path) -> None:
    (tmp_path / SECRET_NAME).write_text('{"type": "authorized_user", "private_key": "s3cr3t"}')
    with pytest.raises(CredentialsUnusable) as caught:
        firebase_credential(settings("staging"), FileSecretStore(tmp_path), environ={})
    assert SECRET_NAME in str(caught.value) and "s3cr3t" not in str(caught.value)


def test_a_missing_secret_is_not_replaced_by_anything_else(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        firebase_credential(
            settings("staging"),
            FileSecretStore(tmp_path),
            environ={"FIREBASE_SERVICE_ACCOUNT_JSON": service_account_json().decode()},
        )


def test_production_refuses_a_service_account_json_in_the_environment(tmp_path: Path) -> None:
    key = service_account_json().decode()
    environ = {
        "FIREBASE_SERVICE_ACCOUNT_JSON": key,
        "MY_CREDS": key,
        "GOOGLE_APPLICATION_CREDENTIALS": "/var/key.json",
    }
    assert [p.split()[0] for p in env_credential_problems(environ)] == [
        "FIREBASE_SERVICE_ACCOUNT_JSON",
        "MY_CREDS",
    ]
    (tmp_path / SECRET_NAME).write_bytes(service_account_json())
    with pytest.raises(UnsafeConfiguration) as caught:
        firebase_credential(settings("production"), FileSecretStore(tmp_path), environ=environ)
    assert "FIREBASE_SERVICE_ACCOUNT_JSON" in str(caught.value) and key not in str(caught.value)
    # A key under a name the platform's pattern misses is still caught on the upload path.
    assert not any("MY_CREDS" in p for p in settings("production").problems({"MY_CREDS": key}))


def test_production_refuses_the_emulator_and_local_uses_anonymous_credentials(
    tmp_path: Path,
) -> None:
    emulator = {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443"}
    with pytest.raises(UnsafeConfiguration):
        firebase_credential(settings("production"), FileSecretStore(tmp_path), environ=emulator)
    found = firebase_credential(settings("local"), FileSecretStore(tmp_path), environ=emulator)
    assert isinstance(found.credential, AnonymousCredentials) and found.anonymous


def entry(scene: str, robot: str, run: str, published_at: str) -> CatalogueEntry:
    prefix = f"datasets/{scene}/{robot}/{run}/"
    return CatalogueEntry(
        scene_id=scene,
        robot=robot,
        run_id=run,
        storage_bucket="bp-datasets",
        prefix=prefix,
        manifest=prefix + "dataset_manifest.json",
        manifest_uri=f"gs://bp-datasets/{prefix}dataset_manifest.json",
        latest=f"datasets/{scene}/{robot}/LATEST",
        files=15,
        bytes=1234,
        codebase_version="v2.1",
        episodes=6,
        frames=180,
        quality_pass_rate=0.8,
        published_at=published_at,
        source_uri=f"gs://bp-scenes/runs/{scene}/{run}/lerobot/{robot}/",
    )


def check_catalogue(catalogue: DatasetCatalogue) -> None:
    older = entry("kitchen", "ur5e", "run-1", "2026-01-01T00:00:00+00:00")
    newer = entry("kitchen", "ur5e", "run-2", "2026-02-01T00:00:00+00:00")
    other = entry("garage", "fetch", "run-3", "2026-03-01T00:00:00+00:00")
    for e in (older, newer, other, newer):  # recording twice is harmless
        catalogue.record(e)
    assert catalogue.get("kitchen", "ur5e", "run-1") == older
    assert catalogue.get("kitchen", "ur5e", "run-9") is None
    assert [e.run_id for e in catalogue.list(scene_id="kitchen")] == ["run-2", "run-1"]
    assert [e.run_id for e in catalogue.list()] == ["run-3", "run-2", "run-1"]
    assert [e.run_id for e in catalogue.list(scene_id="kitchen", robot="ur5e", limit=1)] == [
        "run-2"
    ]


def test_the_sqlite_catalogue(tmp_path: Path) -> None:
    check_catalogue(SqliteCatalogue(tmp_path / "catalogue.sqlite"))


@pytest.mark.emulators
def test_the_firestore_catalogue(firestore_client: firestore.Client) -> None:
    check_catalogue(FirestoreCatalogue(firestore_client, unique_name("datasets").replace("-", "_")))
