"""Secrets port: credentials and TLS material by name, never from plain environment variables."""

from bp_common.secrets.base import SecretStore
from bp_common.secrets.files import FileSecretStore

__all__ = ["FileSecretStore", "SecretStore"]
