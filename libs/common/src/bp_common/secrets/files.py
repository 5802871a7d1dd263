"""Secrets from mounted files: Cloud Run secret volumes in the cloud, a folder locally."""

from __future__ import annotations

from pathlib import Path

from bp_common.errors import NotFound
from bp_common.secrets.base import SecretStore, validate_secret_name


class FileSecretStore(SecretStore):
    """`{root}/{name}` as a file, or `{root}/{name}/latest` as Cloud Run mounts a version."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def get(self, name: str) -> bytes:
        validate_secret_name(name)
        path = self.root / name
        if path.is_dir():
            path = path / "latest"
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound("secret is not mounted", secret=name, root=str(self.root)) from exc

    def __repr__(self) -> str:
        return f"FileSecretStore(root={str(self.root)!r})"
