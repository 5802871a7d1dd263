"""Fixtures for the upload tests: datasets in a pipeline bucket, Firebase destinations."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bp_common.config import Settings
from bp_common.secrets import FileSecretStore
from bp_ops.emulators import EmulatorStack
from bp_upload.destinations.firebase_storage import FirebaseDestination
from bp_upload.options import UploadOptions
from bp_upload.wiring import firebase_destination

from tests.upload.fake_gcs import OwnFakeGcs


def cloud_settings(project: str, bucket: str) -> Settings:
    return Settings(_env_file=None, project_id=project, firebase_bucket=bucket, backend="cloud")  # type: ignore[call-arg]


def firebase_for(
    project: str, bucket: str, tmp_path: Path, options: UploadOptions | None = None
) -> FirebaseDestination:
    """What the stage builds: firebase_admin with anonymous credentials on the emulator."""
    return firebase_destination(
        cloud_settings(project, bucket),
        FileSecretStore(tmp_path / "secrets"),
        options or UploadOptions(),
    )


@pytest.fixture
def own_gcs(
    tmp_path: Path, emulators: EmulatorStack, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OwnFakeGcs]:
    """A fake-gcs-server of this test's own (filesystem backend), the one uploads go to."""
    server = OwnFakeGcs(tmp_path / "own-gcs").start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.url)
    try:
        yield server
    finally:
        server.stop()
