"""Which collector submit talks to, and how: one client (and one breaker) per collector and
channel security, kept for the life of the process so the breaker remembers across messages."""

from __future__ import annotations

import hashlib
import ipaddress
import threading
from pathlib import Path

from bp_common.config import Settings
from bp_common.errors import UnsafeConfiguration
from bp_common.secrets import SecretStore

from bp_submit.breaker import CircuitBreaker
from bp_submit.collector_client import ClientTls, CollectorClient, load_client_tls
from bp_submit.config import SubmitConfig
from bp_submit.local_collector import local_collector, reachable

_lock = threading.Lock()
_clients: dict[tuple[str, str], CollectorClient] = {}


def is_loopback_address(address: str) -> bool:
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def wants_local_collector(settings: Settings, config: SubmitConfig) -> bool:
    if config.embedded_collector == "always":
        return True
    if config.embedded_collector == "never" or not settings.is_local:
        return False
    address = settings.collector_address
    return is_loopback_address(address) and not reachable(address)


def _client(address: str, tls: ClientTls | None, config: SubmitConfig) -> CollectorClient:
    identity = "plaintext" if tls is None else hashlib.sha256(tls.cert).hexdigest()
    with _lock:
        client = _clients.get((address, identity))
        if client is None:
            client = CollectorClient(
                address,
                tls,
                breaker=CircuitBreaker(
                    failure_threshold=config.collector_breaker_failures,
                    reset_after_s=config.collector_breaker_reset_s,
                ),
                retry_budget_s=config.collector_retry_budget_s,
                call_timeout_s=config.collector_call_timeout_s,
            )
            _clients[(address, identity)] = client
        return client


def collector_client(
    settings: Settings,
    config: SubmitConfig,
    secrets: SecretStore,
    local_data_dir: Path,
) -> CollectorClient:
    """The configured collector over mTLS (plaintext only when BP_COLLECTOR_INSECURE is set in
    `local` on loopback), or a collector started beside this process (see local_collector)."""
    if wants_local_collector(settings, config):
        return _client(local_collector(local_data_dir).address, None, config)
    address = settings.collector_address
    if settings.collector_insecure:
        if not (settings.is_local and is_loopback_address(address)):
            raise UnsafeConfiguration(
                settings.env.value,
                [
                    "BP_COLLECTOR_INSECURE is set: plaintext to the collector is allowed only in"
                    f" PIPELINE_ENV=local to a loopback address, not {address}"
                ],
            )
        return _client(address, None, config)
    return _client(address, load_client_tls(secrets), config)


def forget_clients() -> None:
    """Close every client (tests, and processes that change collectors)."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    for client in clients:
        client.close()
