"""The run's status, exactly Numerai's six, as a state machine.

Every transition is checked against the table below: an illegal move is a bug
in numerai-sandbox and raises at once instead of showing the user a wrong
status. Listeners see each status as it is entered (the CLI prints them live);
the machine keeps the timeline and the time spent in each status for the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Callable

from .reasons import Blame


class Status(str, Enum):
    PENDING = "Pending"
    RUNNING = "Running"
    VALIDATING = "Validating"
    SUCCESS = "Success"
    FAILED = "Failed"
    ERROR = "Error"

    @property
    def terminal(self) -> bool:
        return self in (Status.SUCCESS, Status.FAILED, Status.ERROR)

    @classmethod
    def for_blame(cls, blame: Blame) -> "Status":
        return cls.FAILED if blame is Blame.MODEL else cls.ERROR


# Exit codes, documented in --help and the README.
EXIT_CODES = {Status.SUCCESS: 0, Status.FAILED: 1, Status.ERROR: 3}
EXIT_USAGE = 2

_ALLOWED = {
    None: {Status.PENDING},
    Status.PENDING: {Status.RUNNING, Status.FAILED, Status.ERROR},
    Status.RUNNING: {Status.VALIDATING, Status.FAILED, Status.ERROR},
    Status.VALIDATING: {Status.SUCCESS, Status.FAILED, Status.ERROR},
}


class IllegalTransition(RuntimeError):
    pass


@dataclass
class Entry:
    status: Status
    at: str  # ISO 8601, UTC
    elapsed: float  # seconds since the run started
    note: str = ""


Listener = Callable[[Entry], None]


@dataclass
class Lifecycle:
    listeners: list[Listener] = field(default_factory=list)
    timeline: list[Entry] = field(default_factory=list)
    _t0: float = field(default_factory=time.monotonic)

    @property
    def status(self) -> Status | None:
        return self.timeline[-1].status if self.timeline else None

    def elapsed(self) -> float:
        return time.monotonic() - self._t0

    def enter(self, status: Status, note: str = "") -> Entry:
        current = self.status
        if current is not None and current.terminal:
            raise IllegalTransition(f"{current.value} is final; cannot enter {status.value}")
        if status not in _ALLOWED[current]:
            raise IllegalTransition(f"{current.value if current else 'start'} -> {status.value}")
        entry = Entry(status, datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                      round(self.elapsed(), 3), note)
        self.timeline.append(entry)
        for listener in self.listeners:
            listener(entry)
        return entry

    def durations(self) -> dict[str, float]:
        """Seconds spent in each non-final status, in the order entered."""
        out: dict[str, float] = {}
        for here, nxt in zip(self.timeline, self.timeline[1:]):
            out[here.status.value] = round(nxt.elapsed - here.elapsed, 3)
        if self.timeline:
            out["total"] = round(self.timeline[-1].elapsed, 3)
        return out
