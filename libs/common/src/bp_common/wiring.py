"""The composition root: every adapter one process runs on, built once from its settings.

`bp run` gets the embedded default (a folder, SQLite, an in-process bus); `bp serve`, `bp worker`
and the operator readers outside an embedded folder get the Google clients, which find the
emulators through the *_EMULATOR_HOST variables. A stage's own adapters come from its `adapters`
hook, which `deliverer` calls here, once per stage and process.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from opentelemetry.metrics import Meter

from bp_common.blobstore.local import LocalBlobStore
from bp_common.bus.base import DeadLetterQueue
from bp_common.bus.local import LocalBus, LocalDeadLetterQueue
from bp_common.config import Settings
from bp_common.ledger import RunLedger
from bp_common.ledger.sqlite import SqliteLedgerStore
from bp_common.runtime.delivery import Deliverer
from bp_common.runtime.limits import Transport
from bp_common.runtime.stage import Ports, Stage
from bp_common.secrets import FileSecretStore, SecretStore

# Where the embedded default keeps what it publishes (Firebase Storage in the cloud).
LOCAL_PUBLISHED_DIR = "firebase"


@dataclass(frozen=True)
class Wiring:
    """One process's adapters: the stages' ports, and the dead letters operators read."""

    ports: Ports
    dead_letters: DeadLetterQueue


@dataclass(frozen=True)
class EmbeddedWiring(Wiring):
    bus: LocalBus
    """The in-process bus the embedded runner drains."""


@dataclass(frozen=True)
class CloudWiring(Wiring):
    subscriber: Any
    """The Pub/Sub subscriber client, shared by a pull worker and the dead-letter reader."""


def embedded(root: Path, settings: Settings) -> EmbeddedWiring:
    """The embedded default: one folder holds the bucket, the bus, the ledger and the secrets."""
    root = Path(root)
    bus = LocalBus(
        root / "bus.sqlite",
        max_delivery_attempts=settings.max_delivery_attempts,
        ack_deadline_s=settings.ack_deadline_s,
    )
    ports = Ports(
        blobs=LocalBlobStore(root / "bucket"),
        ledger=RunLedger(SqliteLedgerStore(root / "ledger.sqlite"), retention=_retention(settings)),
        publisher=bus,
        secrets=FileSecretStore(root / "secrets"),
        workdir=root,
        publication_folder=root / LOCAL_PUBLISHED_DIR,
    )
    return EmbeddedWiring(ports=ports, dead_letters=LocalDeadLetterQueue(bus), bus=bus)


def _retention(settings: Settings) -> timedelta:
    return timedelta(days=settings.retention_days)


def cloud_secrets(settings: Settings) -> SecretStore:
    """Mounted secret files, or Secret Manager (`BP_SECRETS_BACKEND`)."""
    if settings.secrets_backend == "files":
        return FileSecretStore(settings.secrets_dir)
    from bp_common.secrets.secretmanager import SecretManagerStore, make_secret_manager_client

    # An endpoint override is a loopback server (production refuses it): TLS when its CA is
    # given (`bp up --secure`), else plaintext.
    endpoint = settings.secret_manager_endpoint
    ca_file = settings.secret_manager_ca_file
    client = make_secret_manager_client(
        endpoint,
        root_certificates=ca_file.read_bytes() if ca_file is not None else None,
        insecure=endpoint is not None and ca_file is None,
    )
    return SecretManagerStore(client, settings.project_id)


def cloud(settings: Settings) -> CloudWiring:
    """Real Google clients; they find emulators through the *_EMULATOR_HOST variables."""
    from google.cloud import firestore, pubsub_v1

    from bp_common.blobstore.gcs import GcsBlobStore, make_storage_client
    from bp_common.bus.pubsub import PubSubDeadLetterQueue, PubSubPublisher
    from bp_common.ledger.firestore import FirestoreLedgerStore

    ledger_store = (
        FirestoreLedgerStore(firestore.Client(project=settings.project_id))
        if settings.ledger_backend == "firestore"
        else SqliteLedgerStore(settings.data_dir / "ledger.sqlite")
    )
    subscriber = pubsub_v1.SubscriberClient()
    ports = Ports(
        blobs=GcsBlobStore(make_storage_client(settings.project_id), settings.bucket),
        ledger=RunLedger(ledger_store, retention=_retention(settings)),
        publisher=PubSubPublisher(pubsub_v1.PublisherClient(), settings.project_id),
        secrets=cloud_secrets(settings),
        workdir=settings.data_dir,
    )
    return CloudWiring(
        ports=ports,
        dead_letters=PubSubDeadLetterQueue(subscriber, settings.project_id),
        subscriber=subscriber,
    )


def for_settings(settings: Settings, root: Path) -> Wiring:
    """The cloud when the settings ask for it, else the embedded run kept in `root`."""
    return cloud(settings) if settings.uses_cloud else embedded(root, settings)


def deliverer(
    stage: Stage[Any, Any],
    ports: Ports,
    settings: Settings,
    *,
    meter: Meter | None = None,
    transport: Transport = Transport.LOCAL,
) -> Deliverer:
    """A stage ready to take messages from `transport`, with its own adapters built once, now."""
    return Deliverer(
        stage, ports, settings, stage.adapters(settings, ports), meter=meter, transport=transport
    )
