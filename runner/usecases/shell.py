"""`shell`: an interactive Python inside the sandbox a run of the pickle would use, and how the session ended."""

from __future__ import annotations

from ..run import RunRequest
from ..sandbox.backend import Limits, Outcome
from ..support.console import Console
from ..support.units import human_bytes
from ..verdict.ended import signal_name
from ..verdict.report import Report


def terminal():
    """The user's terminal, which the session borrows (runner.sandbox.terminal)."""
    from ..sandbox.terminal import Terminal

    return Terminal()


def open_shell(request: RunRequest, terminal, console: Console) -> tuple[Report, Outcome | None]:
    """Pending as a run's, then the session: the report (a verdict only when the shell could not open, or was
    interrupted) and how the session ended, once it opened."""
    from ..run.run import Run

    return Run(request, console).shell(terminal)


def ending(session: Outcome, limits: Limits) -> tuple[str, int]:
    """The closing line of a session that opened, and the exit code."""
    took = f"after {session.run_seconds:.1f}s"
    peak = (f" · peak memory {human_bytes(session.peak_memory_bytes)} of {human_bytes(limits.memory_bytes)}"
            if session.peak_memory_bytes else "")
    if session.timed_out:
        return (f"Session ended: --timeout {limits.timeout_seconds:g}s reached; the container was killed and "
                f"removed{peak}", 1)
    if session.aborted:
        return f"Session ended: the terminal closed {took}; the container was removed", 3
    if session.oom_killed:
        return (f"Session ended: the Python in the sandbox ran out of memory ({human_bytes(limits.memory_bytes)} "
                f"limit, no swap) and was killed {took}; the container was removed", 1)
    if session.signal:
        return (f"Session ended: the Python in the sandbox was killed by {signal_name(session.signal)} {took} "
                "(a native crash, or a kill from inside); the container was removed", 1)
    if session.exit_code is None:
        return f"Session ended: the container stopped {took}; it was removed", 3
    return f"Session ended {took} (exit code {session.exit_code}){peak}; the container was removed", 0
