"""The local stack's supervisor: a service that dies is restarted with backoff, as Cloud Run
restarts a crashed instance, and every crash and restart is logged to an events file that the
status page reads (`bp status serve --stack-events`).

The emulators hold every queue, run and blob in memory, so an emulator that dies cannot be
brought back: that stops the stack, loudly.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

log = logging.getLogger("bp.stack")

EVENTS_FILE = "supervisor.jsonl"
# Cloud Run retries a crashed instance after a pause that doubles up to a limit; so do we.
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
# A service that ran this long since its last start counts as healthy again.
STABLE_AFTER_S = 60.0

EventKind = Literal[
    "started", "exited", "restarted", "emulator_died", "emulator_restarted", "stopped", "redriven"
]


@dataclass(frozen=True)
class StackEvent:
    at: str
    service: str
    event: EventKind
    pid: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    restarts: int = 0
    backoff_s: float | None = None
    detail: str | None = None

    def describe(self) -> str:
        if self.event == "exited":
            how = f"signal {self.signal}" if self.signal else f"code {self.exit_code}"
            return (
                f"{self.service} (pid {self.pid}) exited with {how}; restarting in "
                f"{self.backoff_s:.0f} s"
            )
        if self.event == "restarted":
            return f"{self.service} restarted as pid {self.pid} (restart {self.restarts})"
        if self.event == "emulator_died":
            return f"emulator {self.service} died: {self.detail}"
        if self.event == "emulator_restarted":
            return f"emulator {self.service} restarted as pid {self.pid} ({self.detail})"
        if self.event == "redriven":
            return f"{self.service}: stalled run driven on ({self.detail})"
        return f"{self.service} {self.event} (pid {self.pid})"


class StackEvents:
    """The events file: one JSON object per line, appended as things happen."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def add(self, event: StackEvent) -> None:
        line = json.dumps({k: v for k, v in asdict(event).items() if v is not None})
        with self._lock, self.path.open("a") as handle:
            handle.write(line + "\n")


def read_events(path: Path, limit: int = 200) -> list[StackEvent]:
    """The latest events, oldest first; a missing file has none."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    events = []
    for line in lines[-limit:]:
        try:
            events.append(StackEvent(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return events


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def signal_name(code: int | None) -> str | None:
    """Popen reports death by signal N as return code -N."""
    if code is None or code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return str(-code)


class Supervised(Protocol):
    """A process the supervisor watches (a service of the stack, or its status page)."""

    @property
    def name(self) -> str: ...

    def poll(self) -> int | None: ...

    @property
    def pid(self) -> int: ...


@dataclass
class Watch:
    """What the supervisor knows of one service."""

    restart: Callable[[], Supervised]
    process: Supervised
    started: float = field(default_factory=time.monotonic)
    restarts: int = 0
    backoff_s: float = FIRST_BACKOFF_S
    due: float | None = None
    """When a dead service is restarted (monotonic), None while it runs."""


@dataclass
class Chore:
    interval_s: float
    run: Callable[[], list[StackEvent]]
    due: float


class Supervisor:
    """Watches services and emulators until `stop` is set; see the module docstring."""

    def __init__(
        self,
        events: StackEvents,
        emulators_alive: Callable[[], str | None],
        *,
        say: Callable[[str], None] = print,
        poll_s: float = 0.5,
    ) -> None:
        self.events = events
        self.emulators_alive = emulators_alive
        self.say = say
        self.poll_s = poll_s
        self.watches: dict[str, Watch] = {}
        self.chores: list[Chore] = []
        self.stop = threading.Event()

    def every(self, interval_s: float, chore: Callable[[], list[StackEvent]]) -> None:
        """Run `chore` every `interval_s` while supervising; it returns events to log."""
        self.chores.append(Chore(interval_s, chore, time.monotonic() + interval_s))

    def watch(self, process: Supervised, restart: Callable[[], Supervised]) -> None:
        self.watches[process.name] = Watch(restart, process)
        self.events.add(StackEvent(now(), process.name, "started", pid=process.pid))

    def run(self) -> None:
        """Supervise until stopped; raises RuntimeError when an emulator died."""
        while not self.stop.wait(self.poll_s):
            dead = self.emulators_alive()
            if dead is not None:
                self.events.add(StackEvent(now(), dead, "emulator_died", detail="stack stops"))
                raise RuntimeError(
                    f"the {dead} emulator died: its queues, runs and blobs were in memory, "
                    "so the stack stops"
                )
            for watch in self.watches.values():
                self._tend(watch)
            for chore in self.chores:
                self._do(chore)

    def _do(self, chore: Chore) -> None:
        if time.monotonic() < chore.due:
            return
        chore.due = time.monotonic() + chore.interval_s
        try:
            events = chore.run()
        except Exception as exc:  # a chore that fails (an emulator busy) tries at its next turn
            log.warning("supervisor chore failed: %s", exc)
            return
        for event in events:
            self.events.add(event)
            self.say(event.describe())

    def _tend(self, watch: Watch) -> None:
        clock = time.monotonic()
        if watch.due is None:
            code = watch.process.poll()
            if code is None:
                if clock - watch.started >= STABLE_AFTER_S:
                    watch.backoff_s = FIRST_BACKOFF_S
                return
            watch.due = clock + watch.backoff_s
            event = StackEvent(
                now(),
                watch.process.name,
                "exited",
                pid=watch.process.pid,
                exit_code=code,
                signal=signal_name(code),
                restarts=watch.restarts,
                backoff_s=watch.backoff_s,
            )
            self.events.add(event)
            self.say(event.describe())
            log.warning(event.describe())
            return
        if clock < watch.due:
            return
        watch.process = watch.restart()
        watch.started = clock
        watch.restarts += 1
        watch.due = None
        watch.backoff_s = min(MAX_BACKOFF_S, watch.backoff_s * 2)
        event = StackEvent(
            now(), watch.process.name, "restarted", pid=watch.process.pid, restarts=watch.restarts
        )
        self.events.add(event)
        self.say(event.describe())
        log.warning(event.describe())


def service_states(events: list[StackEvent]) -> dict[str, dict[str, object]]:
    """Per service: its pid now, how often it was restarted, and its last crash."""
    states: dict[str, dict[str, object]] = {}
    for event in events:
        state = states.setdefault(
            event.service, {"pid": None, "restarts": 0, "running": True, "last_exit": None}
        )
        if event.event in ("started", "restarted"):
            state.update(pid=event.pid, restarts=event.restarts, running=True)
        elif event.event == "emulator_restarted":
            state.update(pid=event.pid, restarts=int(str(state["restarts"] or 0)) + 1, running=True)
        elif event.event == "exited" or event.event == "emulator_died":
            state.update(running=False, last_exit=event.describe(), last_exit_at=event.at)
    return states


def stack_document(events: list[StackEvent]) -> dict[str, object]:
    """The supervisor's view as the status page's JSON API returns it."""
    return {
        "services": service_states(events),
        "events": [{k: v for k, v in asdict(e).items() if v is not None} for e in events],
    }
