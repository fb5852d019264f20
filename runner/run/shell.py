"""A shell instead of Running a prediction: the run's sandbox, an interactive Python in it on the user's terminal.

Pending is a run's (the Python, the image, the data, the same limits and isolation); then the backend
attaches the user's terminal to the harness's shell mode inside the sandbox until the session ends.
"""

from __future__ import annotations

import math
from typing import Callable

from ..images.store import Image
from ..sandbox.backend import ContainerSpec, Limits, Outcome, SandboxUnavailable
from ..support.units import human_bytes
from ..verdict import platform
from ..verdict.reasons import Verdict


def banner(image: Image, data_description: str, limits: Limits) -> str:
    """The host's lines of the shell's banner: where the user is and under which limits."""
    timeout = (f"timeout {limits.timeout_seconds:g}s: then the container is killed"
               if math.isfinite(limits.timeout_seconds) else "no timeout (--timeout sets one)")
    return "\n".join([
        f"numerai-sandbox shell · {image.ref} · Python {image.python_full} · {image.profile}",
        f"limits: {limits.cpus:g} CPU · {human_bytes(limits.memory_bytes)} memory, no swap · no network · "
        f"read-only root (writable: /tmp, {human_bytes(limits.tmp_bytes)}) · non-root · {timeout}",
        f"data: {data_description}"])


def session(backend, spec: ContainerSpec, shown: str, terminal, on_started: Callable[[], None]) -> Outcome | Verdict:
    """The interactive session, to its end (how it ended: the Outcome), or why it could not open."""
    try:
        return backend.interact(spec, ["--shell", "--banner", shown], terminal, on_started=on_started)
    except SandboxUnavailable as exc:
        return platform.from_failure(exc.failure)


def with_force_hint(verdict: Verdict) -> Verdict:
    """A shell refused for the pickle's Python says how to open one anyway, to look."""
    if verdict.reason == "python_version_mismatch" and "--force" not in verdict.message:
        verdict.message += " (`--python X --force` opens the shell in an image anyway, to look.)"
    return verdict
