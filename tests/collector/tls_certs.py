"""Real X.509 material for mTLS tests (bp_ops.certificates): a CA, a server certificate for
the loopback address, client certificates, and a second CA that the server must not trust."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bp_ops.certificates import Authority
from bp_ops.certificates import Certified as Identity

__all__ = ["Identity", "Pki", "make_pki"]


@dataclass(frozen=True)
class Pki:
    ca: Authority
    server: Identity
    client: Identity
    rogue_ca: Authority
    rogue_client: Identity

    def write_collector_secrets(self, folder: Path) -> Path:
        """The server's secrets as the file secrets adapter reads them."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "collector-server-key").write_bytes(self.server.key_pem)
        (folder / "collector-server-cert").write_bytes(self.server.cert_pem)
        (folder / "collector-client-ca").write_bytes(self.ca.cert_pem)
        return folder

    def write_submit_secrets(self, folder: Path) -> Path:
        """Submit's client identity and the CA it trusts for the collector."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "collector-client-key").write_bytes(self.client.key_pem)
        (folder / "collector-client-cert").write_bytes(self.client.cert_pem)
        (folder / "collector-ca").write_bytes(self.ca.cert_pem)
        return folder


def make_pki() -> Pki:
    ca = Authority("bp-test collector CA")
    rogue = Authority("someone else's CA")
    return Pki(
        ca=ca,
        server=ca.issue("collector", server=True),
        client=ca.issue("submit", server=False),
        rogue_ca=rogue,
        rogue_client=rogue.issue("submit", server=False),
    )
