"""The last step of Pending and all of Running: the sandbox run to its end by the backend, and its facts.

What comes back is the engine's Outcome and the harness's Frames (parsed once), with the model's log.
A pre-started sandbox's ending that may come from its data read ahead is confirmed by a cold run in
Numerai's order (runner/run/prestart.py) before it can be a verdict.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from ..sandbox.backend import ContainerSpec, Outcome, SandboxUnavailable
from ..sandbox.protocol import Frames, read_frames
from ..support.console import Console
from ..verdict import platform
from ..verdict.ended import signal_name
from ..verdict.reasons import Verdict
from .prestart import confirming, doubt_of_prestarted
from .request import RunRequest
from .spec import cold_twin, container_facts
from .watch import LiveProgress, RunSink, Watch

WAITING = "waiting for a free CPU: every core runs another sandbox (cores are never shared, so timings stay Numerai's)"


@dataclass
class Contained:
    """One sandbox's run, ended: its spec, the engine's facts, the harness's frames, the model's log."""

    spec: ContainerSpec
    outcome: Outcome
    frames: Frames
    watch: Watch
    first: dict[str, Any] | None = None  # a pre-started sandbox's ending, which this cold run confirmed (or not)

    @property
    def cancelled(self) -> bool:
        return self.outcome.aborted == "interrupted"

    @property
    def peak_memory_bytes(self) -> int | None:
        harness = self.frames.done.peak_rss_bytes if self.frames.done else None
        peaks = [p for p in (self.outcome.peak_memory_bytes, harness) if isinstance(p, int)]
        return max(peaks) if peaks else None

    @property
    def phase_times(self) -> list[dict[str, Any]]:
        outcome = self.outcome
        if outcome.started_at is None or outcome.ended_at is None:
            return []
        return self.frames.phase_times(outcome.started_at, outcome.ended_at)

    def container(self) -> dict[str, Any]:
        """The report's `container`."""
        outcome = self.outcome
        return container_facts(self.spec, self.watch.sandbox_id) | dict(
            cpus=outcome.cores, prestarted=outcome.prestarted, exit_code=outcome.exit_code,
            oom_killed=outcome.oom_killed, signal=signal_name(outcome.signal) if outcome.signal else None,
            timed_out=outcome.timed_out)

    def durations(self) -> dict[str, Any]:
        done = self.frames.done
        return {"phases": {k: round(v, 3) for k, v in (done.durations if done else {}).items()},
                "container_seconds": round(self.outcome.run_seconds, 3)}


def contain(backend, spec: ContainerSpec, request: RunRequest, console: Console, watch: Watch,
            on_started: Callable[[], None]) -> Contained | Verdict:
    """Run the sandbox of `spec` to its end (`on_started`: once the model's process starts); a pre-started
    sandbox's doubtful ending is run again cold, whose facts are the run's."""
    contained = run_sandbox(backend, spec, request, console, watch, on_started)
    if isinstance(contained, Verdict) or contained.cancelled:
        return contained
    doubt = doubt_of_prestarted(contained.outcome, contained.frames)
    if doubt is None:
        return contained
    doubt["name"] = spec.name
    console.detail(confirming(doubt))
    cold = run_sandbox(backend, cold_twin(spec), request, console, Watch.new(spec.limits), on_started)
    if isinstance(cold, Contained):
        cold.first = doubt
    return cold


def run_sandbox(backend, spec: ContainerSpec, request: RunRequest, console: Console, watch: Watch,
                on_started: Callable[[], None]) -> Contained | Verdict:
    """One sandbox, start to end, watched: the phase and memory shown live, the output streamed and capped."""
    live = LiveProgress(console, spec.limits, watch.parser) if request.live and not console.quiet else None

    def started() -> None:
        on_started()
        if live is not None:
            live.started = time.monotonic()
            live.start()

    sink = RunSink(watch, console, request.debug, request.cancel, live)
    try:
        outcome = backend.run(spec, sink, on_started=started, on_created=watch.created,
                              on_waiting=lambda: console.waiting(WAITING))
    except SandboxUnavailable as exc:
        return platform.from_failure(exc.failure)
    finally:
        if live is not None:
            live.stop()
    return Contained(spec, outcome, read_frames(watch.parser), watch)
