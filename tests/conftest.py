"""Shared fixtures: the emulator stack, started once per session, and per-test resources."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from bp_common.blobstore.gcs import ensure_bucket, make_storage_client
from bp_common.ledger.firestore import make_firestore_client
from bp_ops.emulators import EmulatorStack
from google.cloud import firestore, storage


def unique_name(prefix: str) -> str:
    """A name no other test (or earlier run against the same emulators) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorStack]:
    """Pub/Sub, Firestore and fake-gcs-server on free loopback ports, for the whole session.

    Their variables (PUBSUB_EMULATOR_HOST, FIRESTORE_EMULATOR_HOST, STORAGE_EMULATOR_HOST,
    GOOGLE_CLOUD_PROJECT) are set in os.environ while the stack runs, since that is the only way the
    Firestore library reaches an emulator; the previous values come back afterwards.
    """
    log_dir = tmp_path_factory.mktemp("emulator-logs")
    with EmulatorStack(log_dir) as stack, pytest.MonkeyPatch.context() as patch:
        for key, value in stack.env().items():
            patch.setenv(key, value)
        print(f"\nemulators up in {stack.total_startup_seconds:.2f} s, logs in {log_dir}")
        yield stack


@pytest.fixture(scope="session")
def storage_client(emulators: EmulatorStack) -> storage.Client:
    return make_storage_client(emulators.project, emulator_url=emulators.storage_url)


@pytest.fixture
def gcs_bucket(storage_client: storage.Client) -> str:
    """A fresh, empty bucket on fake-gcs-server for one test."""
    name = unique_name("bp-test")
    ensure_bucket(storage_client, name)
    return name


@pytest.fixture(scope="session")
def firestore_client(emulators: EmulatorStack) -> firestore.Client:
    assert os.environ.get("FIRESTORE_EMULATOR_HOST") == emulators.firestore_host
    return make_firestore_client(emulators.project)


@pytest.fixture
def firestore_collection() -> str:
    """A collection name no other test writes to."""
    return unique_name("runs").replace("-", "_")
