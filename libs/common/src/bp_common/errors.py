"""Typed pipeline errors: permanent (bad input, never retried) versus transient (retry later)."""

from __future__ import annotations

from typing import Any


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose; carries where it happened."""

    permanent: bool = False

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context = {k: v for k, v in context.items() if v is not None}

    @property
    def kind(self) -> str:
        return type(self).__name__

    def __str__(self) -> str:
        if not self.context:
            return self.message
        where = ", ".join(f"{k}={v}" for k, v in sorted(self.context.items()))
        return f"{self.message} ({where})"

    def to_record(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "message": self.message,
            "permanent": self.permanent,
            "context": {k: str(v) for k, v in self.context.items()},
        }


class PermanentError(PipelineError):
    """Input that will never succeed however often it is retried: dead-letter it at once."""

    permanent = True


class TransientError(PipelineError):
    """A failure that may pass (network, quota, a peer restarting): retry with backoff."""


class InvalidMessage(PermanentError):
    """A bus message that does not match its topic's contract."""


class InvalidInput(PermanentError):
    """An input object (scene, manifest, episode) that is malformed or inconsistent."""


class InvalidName(InvalidInput):
    """A scene id, object name or path that is unsafe or outside the allowed alphabet."""


class UnsafeConfiguration(PermanentError):
    """Settings that must not run in this environment; lists every problem at once."""

    def __init__(self, env: str, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"refusing to start in {env}: {len(problems)} unsafe setting(s)\n{listing}"
        )

    def __str__(self) -> str:
        return self.message


class UnknownSetting(UnsafeConfiguration):
    """BP_* variables that no installed code reads: a typo, or a setting that does nothing."""

    def __init__(self, env: str, problems: list[str]) -> None:
        super().__init__(env, problems)
        listing = "\n".join(f"  - {p}" for p in problems)
        self.message = f"refusing to start in {env}: {len(problems)} unknown setting(s)\n{listing}"


class AlreadyExists(PipelineError):
    """A create-only write found the object already there (someone committed first)."""


class NotFound(PipelineError):
    """An object, run, secret or message that does not exist."""


class Unavailable(TransientError):
    """A dependency (emulator, cloud API, collector) could not be reached."""
