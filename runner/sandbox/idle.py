"""Idle pre-started sandboxes: when `run` leaves one, how many may wait, how much memory they may hold,
and which goes first. Pure decisions on values; runner.sandbox.pool does what they decide on the engine.

A pre-started sandbox left by `run` (runner/sandbox/pool.py) holds memory (pandas, the live data, the
pickle's modules) while it waits for a next run that may never come. So:

- **Only where a next run is likely**: on a terminal, outside CI, and only once the same user ran a
  model in that image within the idle window (a loop pays the cold price twice, then runs warm).
  NUMERAI_SANDBOX_WARM=1 opts in everywhere (a script looping over one model); =0 turns them off.
- **Bounded**: at most NUMERAI_SANDBOX_WARM_MAX (default 1) per image — Python, profile, isolation —
  and min(1 GiB, 10 % of the host's memory) in all, per user and cache; 0 turns them off. Making one
  past the bound first removes the least recently made.
- **Counted as free**: their memory is given up (least recently made first) when a run needs the room.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..support.paths import ensure_dir, file_lock
from ..support.units import human_bytes

PER_IMAGE = 1
MEMORY_CAP = 1024**3
MEMORY_SHARE = 0.10  # of the host's memory
FALLBACK_ESTIMATE = 256 * 1024**2  # a sandbox of a run that left no memory reading (pandas and the data: ~170 MiB)
SETTINGS = {"0": "off", "false": "off", "no": "off", "off": "off",
            "1": "on", "true": "on", "yes": "on", "on": "on", "": "auto"}
OFF_HINT = "NUMERAI_SANDBOX_WARM=0 turns this off"


@dataclass(frozen=True)
class Bound:
    """How many idle pre-started sandboxes may wait per image, and how much memory they may hold in all."""

    per_image: int
    memory_bytes: int

    def describe(self) -> str:
        if self.per_image == 0:
            return "none (NUMERAI_SANDBOX_WARM_MAX=0)"
        return (f"at most {self.per_image} per image (NUMERAI_SANDBOX_WARM_MAX) and {human_bytes(self.memory_bytes)} "
                "in all (the smaller of 1 GiB and 10 % of this machine's memory)")

    def to_dict(self) -> dict:
        return {"per_image": self.per_image, "memory_bytes": self.memory_bytes}


def per_image(environ=os.environ) -> int:
    """NUMERAI_SANDBOX_WARM_MAX: how many idle sandboxes may wait per image (default 1; 0 turns them off);
    ValueError when it is not a whole number >= 0."""
    text = environ.get("NUMERAI_SANDBOX_WARM_MAX", "").strip()
    if text and not (text.isdigit() and text.isascii()):
        raise ValueError(f"NUMERAI_SANDBOX_WARM_MAX={text!r}: give a whole number of pre-started sandboxes per "
                         "image, 0 or more (0 turns them off)")
    return int(text) if text else PER_IMAGE


def bound(host_memory: int, environ=os.environ) -> Bound:
    """The bound that applies: per_image, and min(1 GiB, 10 % of `host_memory`) in all."""
    return Bound(per_image(environ), int(min(MEMORY_CAP, MEMORY_SHARE * host_memory)))


def setting(environ=os.environ) -> str:
    """NUMERAI_SANDBOX_WARM as "on" (1: opted in everywhere), "off" (0) or "auto" (unset: where a next run
    is likely); ValueError for anything else."""
    text = environ.get("NUMERAI_SANDBOX_WARM", "").strip().lower()
    if text not in SETTINGS:
        raise ValueError(f"NUMERAI_SANDBOX_WARM={text!r}: 1 (pre-start everywhere), 0 (never), or unset "
                         "(on a terminal, outside CI, when a model ran in the same image shortly before)")
    return SETTINGS[text]


def in_ci(environ=os.environ) -> bool:
    """Whether a CI system runs us: CI set (GitHub, GitLab, CircleCI, Travis and most others set CI=true)."""
    return environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def has_terminal() -> bool:
    """Whether a person may be at this process: any of stdin, stdout, stderr is a terminal."""
    for stream in (sys.stdin, sys.stdout, sys.stderr):
        try:
            if stream is not None and stream.isatty():
                return True
        except (ValueError, OSError):  # closed
            continue
    return False


@dataclass(frozen=True)
class Decision:
    leave: bool
    why: str


def should_leave(mode: str, per_image: int, ci: bool, terminal: bool, ran_recently: bool) -> Decision:
    """Whether `run` leaves a pre-started sandbox for a next run in its image, and why (or why not)."""
    if mode == "off":
        return Decision(False, "NUMERAI_SANDBOX_WARM=0")
    if per_image == 0:
        return Decision(False, "NUMERAI_SANDBOX_WARM_MAX=0")
    if mode == "on":
        return Decision(True, "NUMERAI_SANDBOX_WARM=1")
    if ci:
        return Decision(False, "CI is set (NUMERAI_SANDBOX_WARM=1 opts in)")
    if not terminal:
        return Decision(False, "no terminal (NUMERAI_SANDBOX_WARM=1 opts in)")
    if not ran_recently:
        return Decision(False, "no other run in this image within the idle window")
    return Decision(True, "a model ran in this image within the idle window")


@dataclass(frozen=True)
class Idle:
    """One waiting pre-started sandbox of the user's, as the bound sees it."""

    id: str
    name: str
    group: str  # the image and isolation it was made for (the bound counts per group)
    made: float  # epoch seconds
    idle_until: float
    memory_bytes: int | None  # in use now (None: the engine did not say)
    estimate: int  # what the run that left it expected it to hold
    python: str = "?"
    profile: str = "?"
    isolation: str = "runc"
    slot: str = ""  # its private folder (runner.sandbox.pool)

    @property
    def counted(self) -> int:
        """The memory the bound counts: what it holds, or what it was expected to hold while it is still
        getting there (a sandbox importing its modules grows to about its estimate)."""
        return max(self.memory_bytes or 0, self.estimate)

    def to_dict(self) -> dict:
        return {"name": self.name, "id": self.id[:12], "python": self.python, "profile": self.profile,
                "isolation": self.isolation, "memory_bytes": self.memory_bytes, "counted_bytes": self.counted,
                "made": round(self.made, 3), "idle_until": round(self.idle_until)}


def evictions(idle: list[Idle], limit: Bound, group: str, estimate: int) -> list[Idle] | None:
    """Which idle sandboxes go, least recently made first, so that one more in `group` expected to hold
    `estimate` fits the bound; None when it cannot fit at all (the bound is 0, or it alone is too big)."""
    if limit.per_image <= 0 or estimate > limit.memory_bytes:
        return None
    doomed: list[Idle] = []
    kept = sorted(idle, key=lambda i: i.made)  # least recently made first
    same = [i for i in kept if i.group == group]
    doomed += same[:max(0, len(same) - (limit.per_image - 1))]
    kept = [i for i in kept if i not in doomed]
    while kept and sum(i.counted for i in kept) + estimate > limit.memory_bytes:
        doomed.append(kept.pop(0))
    return doomed


def over_bound(idle: list[Idle], limit: Bound) -> list[Idle]:
    """Which idle sandboxes exceed the bound as it is now (it may have been lowered since they were made):
    per group the least recently made beyond the count, then the least recently made until the memory fits."""
    doomed: list[Idle] = []
    kept = sorted(idle, key=lambda i: i.made)
    for group in {i.group for i in kept}:
        same = [i for i in kept if i.group == group]
        doomed += same[:max(0, len(same) - limit.per_image)]
    kept = [i for i in kept if i not in doomed]
    while kept and sum(i.counted for i in kept) > limit.memory_bytes:
        doomed.append(kept.pop(0))
    return sorted(doomed, key=lambda i: i.made)


def to_free(idle: list[Idle], needed: int) -> list[Idle]:
    """The idle sandboxes to remove, least recently made first, until their memory covers `needed` bytes."""
    doomed, freed = [], 0
    for candidate in sorted(idle, key=lambda i: i.made):
        if freed >= needed:
            break
        doomed.append(candidate)
        freed += candidate.memory_bytes or candidate.estimate
    return doomed


def estimate(samples: list, phases: list[dict], peak: int | None) -> int:
    """What a sandbox pre-started for the next run of this model will hold: at most what this run's
    container held when the model began predicting (Python, pandas, the data, the modules — and the
    model itself, which the pre-started one does not have yet), read as the largest sample up to the
    first one taken after that moment (samples may come late on a busy host: never less than the state
    at that moment); else its peak; else a plain guess."""
    start = next((p.get("start") for p in phases or [] if p.get("phase") == "predicting"), None)
    if isinstance(start, (int, float)) and samples:
        ordered = sorted((float(t), int(b)) for t, b in samples)
        after = next((i for i, (t, _) in enumerate(ordered) if t > start), None)
        if after is not None:
            return max(b for _, b in ordered[:after + 1])
    return int(peak) if peak else FALLBACK_ESTIMATE


# ---------------------------------------------------------------- the runs of the last minutes

def ran_recently(record: Path, group: str, window: float, now: float | None = None) -> bool:
    """Whether a model ran in `group` within `window` seconds (as `record` says), recording this run.

    `record` is a small JSON file {group: epoch seconds} in the user's cache, rewritten whole under a lock;
    groups not seen within the window are dropped."""
    now = time.time() if now is None else now
    with file_lock("warm-recent"):
        try:
            seen = json.loads(record.read_text())
            seen = seen if isinstance(seen, dict) else {}
        except (OSError, ValueError):
            seen = {}
        last = seen.get(group)
        recent = isinstance(last, (int, float)) and 0 <= now - last <= window
        seen = {g: t for g, t in seen.items() if isinstance(t, (int, float)) and now - t <= window}
        seen[group] = now
        ensure_dir(record.parent)
        tmp = record.with_name(f".{record.name}.{os.getpid()}")
        tmp.write_text(json.dumps(seen))
        tmp.replace(record)
    return recent


def left_note(name: str, estimate_bytes: int, idle_until: float, evicted: list[str], limit: Bound) -> str:
    """The run's last note: which sandbox it left, what it holds until when, and how to be rid of it."""
    until = time.strftime("%H:%M", time.localtime(idle_until))
    replaced = f"; it replaced {', '.join(evicted)} ({limit.describe()})" if evicted else ""
    return (f"left a pre-started sandbox for the next run in this image ({name}, about "
            f"{human_bytes(estimate_bytes)} until a run takes it or until {until}){replaced}; "
            f"`numerai-sandbox clean` removes it, {OFF_HINT}")
