"""Builds the ports from settings: cloud clients outside `local`, folders and SQLite inside."""

from __future__ import annotations

from pathlib import Path

from bp_common.blobstore.local import LocalBlobStore
from bp_common.bus.local import LocalBus
from bp_common.config import Settings
from bp_common.ledger import RunLedger
from bp_common.ledger.sqlite import SqliteLedgerStore
from bp_common.runtime.stage import Ports
from bp_common.secrets import FileSecretStore, SecretStore

LOCAL_BUCKET = "local"
# Where the embedded default keeps what it publishes (Firebase Storage in the cloud).
LOCAL_PUBLISHED_DIR = "firebase"


def local_ports(root: Path, settings: Settings) -> tuple[Ports, LocalBus]:
    """The embedded default: one folder holds the bucket, the bus, the ledger and the secrets."""
    root = Path(root)
    bus = LocalBus(
        root / "bus.sqlite",
        max_delivery_attempts=settings.max_delivery_attempts,
        ack_deadline_s=settings.ack_deadline_s,
    )
    ports = Ports(
        blobs=LocalBlobStore(root / "bucket"),
        ledger=RunLedger(SqliteLedgerStore(root / "ledger.sqlite")),
        publisher=bus,
        secrets=FileSecretStore(root / "secrets"),
    )
    return ports, bus


def cloud_secrets(settings: Settings) -> SecretStore:
    if settings.secrets_backend == "files":
        return FileSecretStore(settings.secrets_dir)
    from bp_common.secrets.secretmanager import SecretManagerStore, make_secret_manager_client

    # An endpoint override is a loopback test server (production refuses it): plaintext.
    endpoint = settings.secret_manager_endpoint
    client = make_secret_manager_client(endpoint, insecure=endpoint is not None)
    return SecretManagerStore(client, settings.project_id)


def cloud_ports(settings: Settings) -> Ports:
    """Real Google clients; they find emulators through the *_EMULATOR_HOST variables."""
    from google.cloud import firestore, pubsub_v1

    from bp_common.blobstore.gcs import GcsBlobStore, make_storage_client
    from bp_common.bus.pubsub import PubSubPublisher
    from bp_common.ledger.firestore import FirestoreLedgerStore

    ledger_store = (
        FirestoreLedgerStore(firestore.Client(project=settings.project_id))
        if settings.ledger_backend == "firestore"
        else SqliteLedgerStore(settings.data_dir / "ledger.sqlite")
    )
    return Ports(
        blobs=GcsBlobStore(make_storage_client(settings.project_id), settings.bucket),
        ledger=RunLedger(ledger_store),
        publisher=PubSubPublisher(pubsub_v1.PublisherClient(), settings.project_id),
        secrets=cloud_secrets(settings),
    )
