"""Typed settings from the environment, and the safety check that guards production."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bp_common.errors import UnknownSetting, UnsafeConfiguration

# Every package declares the BP_* variables it reads here: a pydantic-settings class, or an
# iterable of variable names (options of CLI commands that read the environment).
SETTINGS_ENTRY_POINT_GROUP = "blueprint.settings"
VARIABLE_PREFIX = "BP_"


class PipelineEnv(StrEnum):
    LOCAL = "local"
    DEV = "dev"
    STAGING = "staging"
    PRODUCTION = "production"


# Variables whose value would itself be a credential; secrets come from files or Secret Manager.
_SECRET_LIKE = re.compile(
    r"(SECRET|TOKEN|PASSWORD|PASSWD|PRIVATE_KEY|API_KEY|SERVICE_ACCOUNT_JSON|CREDENTIALS_JSON)",
    re.IGNORECASE,
)
_EMULATOR_VARS = ("PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")
_OTLP_SIGNALS = ("TRACES", "METRICS")


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback IP: traffic that never leaves the machine (or the pod)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _scheme_and_host(endpoint: str) -> tuple[str, str]:
    """`https://h:4318/v1` -> ("https", "h"); a bare `h:4317` (gRPC) -> ("", "h")."""
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    return parts.scheme.lower(), parts.hostname or ""


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def plaintext_endpoints(oidc_certs_url: str, environ: Mapping[str, str]) -> list[str]:
    """Every endpoint that would be reached without TLS, one line each.

    Loopback is exempt where the design puts a sidecar there (the OpenTelemetry Collector) or
    where the protocol has no TLS (Genie Sim): nothing crosses the network. The certificates that
    push tokens are verified with must come over HTTPS wherever they are.
    """
    found = []
    if _scheme_and_host(oidc_certs_url)[0] != "https":
        found.append(
            f"BP_OIDC_CERTS_URL is not https ({oidc_certs_url}): the keys that verify push tokens"
            " must come over TLS"
        )
    plaintext: dict[tuple[str, str], list[str]] = {}  # (what is wrong, host) -> signals
    for signal in _OTLP_SIGNALS:
        own, general = f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        name = own if environ.get(own, "").strip() else general
        endpoint = environ.get(name, "").strip()
        if not endpoint:
            continue  # the exporters' default is the sidecar on localhost
        scheme, host = _scheme_and_host(endpoint)
        insecure_own = f"OTEL_EXPORTER_OTLP_{signal}_INSECURE"
        insecure = insecure_own if insecure_own in environ else "OTEL_EXPORTER_OTLP_INSECURE"
        if is_loopback_host(host):
            continue
        if scheme == "http":
            plaintext.setdefault((f"{name} (http://)", host), []).append(signal.lower())
        elif scheme != "https" and _true(environ.get(insecure)):
            plaintext.setdefault((f"{insecure}=true", host), []).append(signal.lower())
    found.extend(
        f"{what} sends {' and '.join(signals)} in plaintext to {host}"
        for (what, host), signals in plaintext.items()
    )
    genie_sim = environ.get("BP_GENIE_SIM_ADDRESS", "").strip()
    if genie_sim and not is_loopback_host(_scheme_and_host(genie_sim)[1]):
        found.append(
            f"BP_GENIE_SIM_ADDRESS ({genie_sim}) is not on loopback: Genie Sim speaks plaintext"
        )
    return found


class Settings(BaseSettings):
    """Everything a service or the CLI needs; `BP_` variables plus `PIPELINE_ENV`."""

    model_config = SettingsConfigDict(
        env_prefix="BP_", extra="ignore", frozen=True, populate_by_name=True
    )

    env: PipelineEnv = Field(
        default=PipelineEnv.LOCAL, validation_alias=AliasChoices("PIPELINE_ENV", "BP_ENV")
    )
    project_id: str = "bp-local"
    bucket: str = "bp-scenes"
    firebase_bucket: str = "bp-datasets"

    backend: Literal["embedded", "cloud"] | None = None
    data_dir: Path = Path("bp-out")
    ledger_backend: Literal["sqlite", "firestore"] = "sqlite"
    secrets_backend: Literal["files", "secret-manager"] = "files"
    secrets_dir: Path = Path("/secrets")
    secret_manager_endpoint: str | None = None
    # The CA (PEM file) that an overriding endpoint's TLS certificate chains to.
    secret_manager_ca_file: Path | None = None

    stage: str | None = None
    dead_letter_topic: str | None = None
    max_delivery_attempts: int = Field(default=5, ge=5, le=100)
    retry_min_backoff_s: float = Field(default=10.0, ge=0, le=600)
    retry_max_backoff_s: float = Field(default=600.0, ge=0, le=600)
    ack_deadline_s: int = Field(default=60, ge=10, le=600)
    lease_extension_s: int = Field(default=60, ge=10, le=600)
    # A pull stream that brings nothing this long while nothing is in hand is probed, and opened
    # again if a message waits (bp_common.bus.pubsub.PullWorker): a restarted emulator can keep
    # a silent stream open.
    stream_idle_reopen_s: float = Field(default=120.0, ge=5, le=3600)
    # How much one process takes on (bp_common.runtime.limits): deliveries that work at once
    # (default: what the cores and memory hold for the stage), messages it admits, working or
    # waiting (default: four per work slot).
    work_slots: int | None = Field(default=None, ge=1, le=256)
    flow_control_max_messages: int | None = Field(default=None, ge=1, le=1000)
    # One holder per run and stage: its lease lives this long unless renewed (every third of
    # it); a duplicate waits up to wait_budget_s for the holder (default: by transport), then
    # hands the message back, at most max_deferrals times, without using a delivery attempt.
    lease_ttl_s: float = Field(default=30.0, ge=2, le=600)
    # How long one delivery may work holding its lease (default: a push request's ack deadline,
    # which is Cloud Run's request timeout; the stage's own deadline or an hour when pulling).
    work_deadline_s: float | None = Field(default=None, gt=0, le=24 * 3600)
    wait_budget_s: float | None = Field(default=None, gt=0, le=3600)
    max_deferrals: int = Field(default=20, ge=0, le=1000)

    push_auth: bool | None = None
    push_audience: str | None = None
    push_service_account: str | None = None
    oidc_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"

    collector_address: str = "127.0.0.1:50061"
    collector_insecure: bool = False

    robots: str | None = None
    require_embeddings: bool | None = None
    allow_placeholder_embeddings: bool = False

    log_level: str = "INFO"

    # Retention (decision 0077): a run's ledger entry and artefacts live this long after it
    # ends (the ledger stamps `expire_at`; Firestore's TTL policy or `bp gc` removes them), and
    # its raw episodes this long after its import committed (`bp gc`; a bucket lifecycle rule).
    retention_days: int = Field(default=90, ge=1, le=3650)
    raw_episode_retention_days: int = Field(default=30, ge=1, le=3650)

    @model_validator(mode="after")
    def _no_unknown_variables(self) -> Settings:
        """Outside `local` a BP_* variable that no code declares is a typo or a dead setting."""
        if self.env is not PipelineEnv.LOCAL:
            unknown = unknown_variables(os.environ)
            if unknown:
                raise UnknownSetting(self.env.value, unknown)
        return self

    @property
    def is_local(self) -> bool:
        return self.env is PipelineEnv.LOCAL

    @property
    def serves_push(self) -> bool:
        """Push services verify tokens; pull workers, the CLI and the collector serve no push."""
        from bp_common.topology import ROUTE_BY_STAGE

        route = ROUTE_BY_STAGE.get(self.stage or "")
        return route is not None and route.delivery == "push"

    @property
    def uses_cloud(self) -> bool:
        """Cloud adapters (real clients, maybe on emulators) unless `local` asks for embedded."""
        return self.backend == "cloud" if self.backend else not self.is_local

    @property
    def push_auth_enabled(self) -> bool:
        """OIDC on push endpoints is on everywhere but `local` unless explicitly set."""
        return (not self.is_local) if self.push_auth is None else self.push_auth

    @property
    def robot_list(self) -> list[str] | None:
        """`BP_ROBOTS=franka_panda,ur5e`: robots to plan for when a scene names none."""
        return [r.strip() for r in self.robots.split(",") if r.strip()] if self.robots else None

    @property
    def embeddings_required(self) -> bool:
        if self.require_embeddings is not None:
            return self.require_embeddings
        return self.env is PipelineEnv.PRODUCTION

    def problems(self, environ: dict[str, str] | None = None) -> list[str]:
        """Every setting that is unsafe outside `local`, all at once."""
        environ = dict(os.environ if environ is None else environ)
        found: list[str] = unknown_variables(environ)
        if self.collector_insecure:
            found.append(
                f"BP_COLLECTOR_INSECURE is set: the collector channel to {self.collector_address}"
                " must use mTLS"
            )
        if self.serves_push and not self.push_auth_enabled:
            found.append("BP_PUSH_AUTH is off: push endpoints must verify Pub/Sub OIDC tokens")
        elif self.serves_push and not (self.push_audience and self.push_service_account):
            found.append("BP_PUSH_AUDIENCE and BP_PUSH_SERVICE_ACCOUNT are needed to verify push")
        if self.stage and not self.dead_letter_topic:
            found.append(f"BP_DEAD_LETTER_TOPIC is missing for stage {self.stage}")
        if self.allow_placeholder_embeddings:
            found.append("BP_ALLOW_PLACEHOLDER_EMBEDDINGS is set: placeholder vectors are not data")
        if not self.embeddings_required:
            found.append("BP_REQUIRE_EMBEDDINGS is false: production exports must embed assets")
        if self.ledger_backend != "firestore":
            found.append("BP_LEDGER_BACKEND must be firestore (SQLite is for local runs)")
        if self.secret_manager_endpoint:
            how = "over TLS to a private CA" if self.secret_manager_ca_file else "in plaintext"
            found.append(
                f"BP_SECRET_MANAGER_ENDPOINT ({self.secret_manager_endpoint}) is reached {how}"
                " instead of Secret Manager's own endpoint"
            )
        found.extend(plaintext_endpoints(self.oidc_certs_url, environ))
        found.extend(
            f"{name} points at an emulator over a plaintext channel"
            for name in _EMULATOR_VARS
            if environ.get(name)
        )
        found.extend(
            f"{name} holds a secret in a plain environment variable: mount it or use Secret Manager"
            for name in sorted(environ)
            if _SECRET_LIKE.search(name)
            and name not in declared_variables()
            and environ[name]
            and not name.endswith(("_FILE", "_PATH"))
        )
        return found

    def ensure_safe(self, environ: dict[str, str] | None = None) -> Settings:
        """Refuse to run in production on unsafe settings; elsewhere leave it to the caller."""
        if self.env is PipelineEnv.PRODUCTION:
            problems = self.problems(environ)
            if problems:
                raise UnsafeConfiguration(self.env.value, problems)
        return self


def variables_of(settings: type[BaseSettings]) -> frozenset[str]:
    """The environment variables a settings class reads (its prefix, or a field's own alias)."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for field_name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(c for c in alias.choices if isinstance(c, str))
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{field_name}".upper())
    return frozenset(names)


@cache
def declared_variables() -> frozenset[str]:
    """Every BP_* variable some installed code reads, from the `blueprint.settings` group."""
    names = set(variables_of(Settings))
    for ep in entry_points(group=SETTINGS_ENTRY_POINT_GROUP):
        declared = ep.load()
        if isinstance(declared, type) and issubclass(declared, BaseSettings):
            names.update(variables_of(declared))
        elif isinstance(declared, Iterable) and not isinstance(declared, str):
            names.update(str(name) for name in declared)
        else:
            raise TypeError(
                f"entry point {ep.name} = {ep.value} in {SETTINGS_ENTRY_POINT_GROUP} is neither "
                "a settings class nor a list of variable names"
            )
    return frozenset(n for n in names if n.startswith(VARIABLE_PREFIX))


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One line per BP_* variable that nothing declares, naming the nearest known one."""
    known = declared_variables()
    found = []
    for name in sorted(environ):
        if not name.startswith(VARIABLE_PREFIX) or name in known:
            continue
        nearest = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"; did you mean {nearest[0]}?" if nearest else ""
        found.append(f"{name} is not a setting any installed service reads{hint}")
    return found
