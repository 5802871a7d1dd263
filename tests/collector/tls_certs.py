"""Real X.509 material for mTLS tests, made with `cryptography`: a CA, a server certificate for
the loopback address, client certificates, and a second CA that the server must not trust."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Identity:
    key_pem: bytes
    cert_pem: bytes


@dataclass(frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_authority(common_name: str) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def issue(authority: Authority, common_name: str, *, server: bool) -> Identity:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(authority.key, hashes.SHA256())
    return Identity(_key_pem(key), cert.public_bytes(serialization.Encoding.PEM))


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
    ca = make_authority("bp-test collector CA")
    rogue = make_authority("someone else's CA")
    return Pki(
        ca=ca,
        server=issue(ca, "collector", server=True),
        client=issue(ca, "submit", server=False),
        rogue_ca=rogue,
        rogue_client=issue(rogue, "submit", server=False),
    )
