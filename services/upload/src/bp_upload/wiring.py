"""Builds the upload adapters from settings: Firebase Storage or a folder, Firestore or SQLite.

The stage gets them from `stage_adapters`, which the composition root (bp_common.wiring) calls
once per process; `bp upload` builds the same ones for its one dataset.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bp_common.config import Settings
from bp_common.runtime.stage import Ports
from bp_common.secrets import SecretStore

from bp_upload.catalogue.port import DatasetCatalogue
from bp_upload.catalogue.sqlite import SqliteCatalogue
from bp_upload.destinations.credentials import (
    EMULATOR_VARIABLE,
    FirebaseCredential,
    firebase_credential,
)
from bp_upload.destinations.firebase_storage import FirebaseDestination
from bp_upload.destinations.folder import FolderDestination
from bp_upload.destinations.port import Destination
from bp_upload.options import UploadOptions, UploadSettings

_LOCK = threading.Lock()
# A push request must be answered before the subscription's ack deadline, or Pub/Sub redelivers
# while this delivery still runs; what is verified by then is skipped by the next attempt.
_PUSH_MARGIN_S = 15.0
_MIN_DEADLINE_S = 10.0
_UNBOUNDED_DEADLINE_S = 3600.0


@dataclass(frozen=True)
class UploadAdapters:
    """What the upload stage runs on beyond the ports, and the options they were built for."""

    destination: Destination
    catalogue: DatasetCatalogue
    options: UploadOptions


def stage_deadline(settings: Settings) -> float:
    """How long one delivery may upload: under the ack deadline for push, else an hour."""
    if settings.serves_push:
        return max(_MIN_DEADLINE_S, settings.ack_deadline_s - _PUSH_MARGIN_S)
    return _UNBOUNDED_DEADLINE_S


def firebase_app(settings: Settings, credential: FirebaseCredential) -> Any:
    """One firebase_admin app per bucket, credential and endpoint (firebase_admin keeps apps by
    name, so a second build in the same process reuses the first)."""
    import firebase_admin

    endpoint = os.environ.get(EMULATOR_VARIABLE, "")
    key = f"{settings.firebase_bucket}|{credential.fingerprint}|{endpoint}"
    name = "bp-upload-" + hashlib.sha256(key.encode()).hexdigest()[:16]
    with _LOCK:
        try:
            return firebase_admin.get_app(name)
        except ValueError:
            return firebase_admin.initialize_app(
                credential.credential,
                {"storageBucket": settings.firebase_bucket, "projectId": credential.project_id},
                name=name,
            )


def firebase_destination(
    settings: Settings, secrets: SecretStore, options: UploadOptions
) -> FirebaseDestination:
    from firebase_admin import storage

    app = firebase_app(settings, firebase_credential(settings, secrets))
    return FirebaseDestination(
        storage.bucket(app=app), chunk_size=options.chunk_size, connections=options.concurrency
    )


def destination_for(
    settings: Settings,
    secrets: SecretStore,
    options: UploadOptions,
    *,
    local_root: Path | None = None,
) -> Destination:
    """A folder standing in for the bucket when local_root is given, Firebase Storage otherwise."""
    if local_root is not None:
        return FolderDestination(local_root, bucket_name=settings.firebase_bucket)
    return firebase_destination(settings, secrets, options)


def catalogue_for(settings: Settings, *, local_path: Path) -> DatasetCatalogue:
    """Firestore's `datasets` collection beside a Firestore ledger, else a SQLite file."""
    if settings.ledger_backend != "firestore":
        return SqliteCatalogue(local_path)
    from bp_common.ledger.firestore import make_firestore_client

    from bp_upload.catalogue.firestore import FirestoreCatalogue

    return FirestoreCatalogue(make_firestore_client(settings.project_id))


def stage_adapters(settings: Settings, ports: Ports) -> UploadAdapters:
    """The stage's destination and catalogue: a folder and SQLite in this process's own folder
    when the ports offer a publication folder (the embedded default), else Firebase Storage."""
    options = UploadSettings().options(deadline_s=stage_deadline(settings))
    destination = destination_for(
        settings, ports.secrets, options, local_root=ports.publication_folder
    )
    catalogue = catalogue_for(settings, local_path=ports.workdir / "catalogue.sqlite")
    return UploadAdapters(destination, catalogue, options)
