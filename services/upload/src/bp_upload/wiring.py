"""Builds the upload adapters from settings: Firebase Storage or a folder, Firestore or SQLite."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from bp_common.config import Settings
from bp_common.secrets import SecretStore

from bp_upload.catalogue import DatasetCatalogue
from bp_upload.catalogue_sqlite import SqliteCatalogue
from bp_upload.credentials import EMULATOR_VARIABLE, FirebaseCredential, firebase_credential
from bp_upload.destination import Destination
from bp_upload.firebase_storage import FirebaseDestination
from bp_upload.folder_destination import FolderDestination
from bp_upload.options import UploadOptions

_LOCK = threading.Lock()
_FIRESTORE_CLIENTS: dict[str, Any] = {}


def firebase_app(settings: Settings, credential: FirebaseCredential) -> Any:
    """One firebase_admin app per bucket, credential and endpoint, reused across messages."""
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

    from bp_upload.catalogue_firestore import FirestoreCatalogue

    key = f"{settings.project_id}|{os.environ.get('FIRESTORE_EMULATOR_HOST', '')}"
    with _LOCK:
        client = _FIRESTORE_CLIENTS.get(key)
        if client is None:
            client = _FIRESTORE_CLIENTS[key] = make_firestore_client(settings.project_id)
    return FirestoreCatalogue(client)
