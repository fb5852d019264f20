"""What a run is asked to do (RunRequest), and the two ways it can be refused or stopped from outside."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..sandbox.backend import Limits


# Where a sandbox runs: the Docker engine, the process sandbox (no engine), or the engine when it answers.
BACKENDS = ("docker", "process", "auto")


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) while running: treated like Ctrl-C."""


class UsageError(Exception):
    """The caller's input is unusable (exit code 2, before any status)."""


@dataclass
class RunRequest:
    model: Path
    python: str = "auto"  # or "3.10".."3.14"
    profile: str = "auto"  # or "standard", "full"
    data: str | None = None
    benchmarks: str | None = None
    data_version: str | None = None  # the dataset version of the cached round or features.json to use
    limits: Limits = field(default_factory=Limits)
    output: Path | None = None
    output_rejected: Path | None = None  # where the predictions of an invalid_output run go, for debugging
    debug: bool = False
    keep: bool = False
    extra_requirements: Path | None = None
    force: bool = False  # run even where the pickle's Python cannot load (auto never needs it)
    live: bool = True  # show elapsed time and memory while the model runs (off for --json, --quiet, check)
    prestarted: bool = True  # may be served by a pre-started sandbox made for exactly this run
    leave_prestarted: bool = False  # afterwards, start one for the next run of the same model (`run`)
    backend: str = "docker"  # one of BACKENDS (runner/run/where.py)
    cancel: threading.Event | None = None  # set by the caller (check's Ctrl-C): stop and report interrupted
