"""The secrets interface: a name in, bytes out; values are never logged or put in repr."""

from __future__ import annotations

import abc
import re

from bp_common.errors import InvalidName

_SECRET_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def validate_secret_name(name: str) -> str:
    if not _SECRET_NAME.fullmatch(name):
        raise InvalidName(
            "secret names are 1-255 characters of A-Z, a-z, 0-9, '_' or '-'", secret=repr(name)
        )
    return name


class SecretStore(abc.ABC):
    @abc.abstractmethod
    def get(self, name: str) -> bytes:
        """The latest value of a secret; raises NotFound (permanent) or Unavailable (transient)."""

    def get_text(self, name: str) -> str:
        return self.get(name).decode()
