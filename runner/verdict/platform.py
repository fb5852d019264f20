"""Verdicts that are the platform's, not the model's: what this machine, the engine, the cluster or the
cache could not do. One place, whichever backend saw it.

Every such verdict is Error (the reason's blame is the platform's), and its message names what is
missing or what happened. What a backend could not do arrives as a PlatformFailure (one vocabulary
for every backend, runner/sandbox/backend.py) and maps to a reason by its kind alone:

- unreachable: the engine or cluster cannot be reached, or went away mid-run -> docker_unavailable
  for the local Docker engine, backend_unavailable for anything else (a cluster);
- isolation: it cannot isolate the sandbox as asked -> isolation_unavailable;
- image_missing: the image to run is not there -> image_unavailable;
- not_started: it could not start the sandbox (the engine refused to start the container; the cluster
  could not pull, schedule or create it) -> backend_unavailable;
- stopped: it ended the sandbox before the model's own limits (a Job's deadline, an eviction) ->
  backend_unavailable (never timeout: the model's clock had not run out).
"""

from __future__ import annotations

from typing import Any

from ..images.numerai import wheel_bytes
from ..images.pins import PinSet
from ..sandbox.backend import NO_IMAGE, NO_ISOLATION, NOT_STARTED, STOPPED, UNREACHABLE, PlatformFailure
from ..support.text import sentence
from ..support.units import human_bytes
from .reasons import Verdict

REASON_OF = {NO_ISOLATION: "isolation_unavailable", NO_IMAGE: "image_unavailable", NOT_STARTED: "backend_unavailable",
             STOPPED: "backend_unavailable"}


def from_failure(failure: PlatformFailure, evidence: dict[str, Any] | None = None) -> Verdict:
    """The verdict of what the platform could not do (`evidence`: what else is known, e.g. the exit code)."""
    if failure.kind == UNREACHABLE:
        reason = "docker_unavailable" if failure.platform == "docker" else "backend_unavailable"
    else:
        reason = REASON_OF[failure.kind]
    return Verdict(reason, sentence(failure.detail),
                   evidence=(evidence or {}) | {"platform": failure.platform, "failure": failure.kind})


def packages_not_fetched(pins: PinSet, missing: list[str], command: str) -> Verdict:
    """The auto profile's wheels are not cached (run never downloads): not the model's fault."""
    wanted = ", ".join(f"{module} ({dist} {pins.added[dist]})" for dist, module in pins.wanted.items())
    size, _unknown = wheel_bytes(pins.python, pins.added)
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    return Verdict("packages_not_fetched",
                   f"The pickle needs {wanted or 'packages'}, which Numerai's Python {pins.python} image has and the "
                   f"standard image lacks. The auto profile adds {len(pins.added)} distribution"
                   f"{'s' if len(pins.added) != 1 else ''} at Numerai's pins "
                   f"({human_bytes(size) if size else 'size unknown'} of wheels), but these wheels are not in the "
                   f"local cache: {shown}. Run `{command}` once while online, then run again.",
                   evidence={"python": pins.python, "wanted": pins.wanted, "added": pins.added, "missing": missing,
                             "fetch_command": command})


def memory_beyond_machine(limit: int, total: int) -> Verdict:
    """The memory limit asked for is more than this machine has: the limit would not be Numerai's."""
    return Verdict("host_resources", f"The memory limit ({human_bytes(limit)}) is more than this machine has "
                   f"({human_bytes(total)}); the limit would not be the one Numerai enforces.")


def host_resources(message: str) -> Verdict:
    """This machine cannot provide what the run needs (disk, memory)."""
    return Verdict("host_resources", sentence(message))


def image_unavailable(message: str) -> Verdict:
    """The image is missing and cannot be built from the local cache (the message says what to fetch)."""
    return Verdict("image_unavailable", message)
