"""The Firebase credential: the service account from the secrets port, never an env variable.

Production refuses a service-account JSON offered through the environment (the platform's
settings check does too; this is the upload path's own guard). With STORAGE_EMULATOR_HOST set
(the local stack, tests) the emulator gets anonymous credentials and no secret is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bp_common.config import PipelineEnv, Settings
from bp_common.errors import PipelineError, UnsafeConfiguration
from bp_common.secrets import SecretStore

SECRET_NAME = "firebase-service-account"
EMULATOR_VARIABLE = "STORAGE_EMULATOR_HOST"
_CREDENTIAL_VARIABLE = re.compile(r"(SERVICE_ACCOUNT|CREDENTIALS?)(_JSON)?$", re.IGNORECASE)


class CredentialsUnusable(PipelineError):
    """The mounted secret is not a service-account key (retried: a fixed secret heals it)."""


@dataclass(frozen=True)
class FirebaseCredential:
    """What firebase_admin.initialize_app takes, and a fingerprint naming it without its value."""

    credential: Any
    fingerprint: str
    project_id: str | None
    anonymous: bool


def env_credential_problems(environ: Mapping[str, str]) -> list[str]:
    """Variables that carry a service-account JSON themselves (a path to a file is fine)."""
    found = []
    for name, value in sorted(environ.items()):
        if not value or name.upper().endswith(("_FILE", "_PATH")):
            continue
        text = value.strip()
        is_json = text.startswith("{")
        if (
            name.upper().endswith("SERVICE_ACCOUNT_JSON")
            or (is_json and _CREDENTIAL_VARIABLE.search(name))
            or (is_json and '"private_key"' in text)
        ):
            found.append(
                f"{name} holds a service-account JSON: mount it as the `{SECRET_NAME}` secret"
            )
    return found


def firebase_credential(
    settings: Settings, secrets: SecretStore, environ: Mapping[str, str] | None = None
) -> FirebaseCredential:
    """Anonymous on the emulator; otherwise the `firebase-service-account` secret."""
    environ = os.environ if environ is None else environ
    if settings.env is PipelineEnv.PRODUCTION:
        problems = env_credential_problems(environ)
        if environ.get(EMULATOR_VARIABLE):
            problems.append(f"{EMULATOR_VARIABLE} points uploads at an emulator")
        if problems:
            raise UnsafeConfiguration(settings.env.value, problems)
    if environ.get(EMULATOR_VARIABLE):
        from google.auth.credentials import AnonymousCredentials

        return FirebaseCredential(
            AnonymousCredentials(),
            "anonymous",
            settings.project_id,
            anonymous=True,
        )
    raw = secrets.get(SECRET_NAME)
    fingerprint = hashlib.sha256(raw).hexdigest()[:16]
    try:
        info = json.loads(raw)
        if not isinstance(info, dict) or info.get("type") != "service_account":
            raise ValueError("not a service-account key (type != service_account)")
        from firebase_admin import credentials

        certificate = credentials.Certificate(info)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        # Never echo the value: only where it came from and why it is unusable.
        reason = str(exc).split("\n")[0][:200] if "private_key" not in str(exc) else "bad key"
        raise CredentialsUnusable(
            f"the `{SECRET_NAME}` secret is unusable: {reason}", secret=SECRET_NAME
        ) from None
    return FirebaseCredential(
        certificate, fingerprint, info.get("project_id") or settings.project_id, anonymous=False
    )
