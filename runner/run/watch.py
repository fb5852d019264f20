"""What the host watches while the model runs: the report channel, the model's output (bounded), the live line.

A Watch is what one sandbox's run has said so far (the frame parser, the log buffer, the sandbox's id):
made before the sandbox starts, so that what it said is known even when the run is interrupted.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from ..sandbox.backend import Limits, StreamSink
from ..sandbox.protocol import WORK_PHASES, FrameParser, doing
from ..support.console import Console
from ..support.units import human_bytes

LOG_HEAD_BYTES = 256 * 1024
TAIL_LINES = 40


@dataclass
class Watch:
    """One sandbox's channel and log as they arrive, and its id once it exists."""

    parser: FrameParser
    logs: "LogBuffer"
    sandbox_id: str | None = None

    @classmethod
    def new(cls, limits: Limits) -> "Watch":
        return cls(FrameParser(max_predictions=limits.max_output_bytes), LogBuffer(limits.max_log_bytes))

    def created(self, sandbox_id: str) -> None:
        self.sandbox_id = sandbox_id


class LogBuffer:
    """The model's output, bounded: the first part and the last part, with a count of what fell between."""

    def __init__(self, limit: int):
        self.head_limit = min(LOG_HEAD_BYTES, limit // 4)
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_size = 0
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail.append(chunk)
            self.tail_size += len(chunk)
            while self.tail_size > self.tail_limit and self.tail:
                dropped = self.tail.popleft()
                self.tail_size -= len(dropped)
                if self.tail_size < self.tail_limit:  # keep the part of the chunk that still fits
                    keep = dropped[len(dropped) - (self.tail_limit - self.tail_size):]
                    self.tail.appendleft(keep)
                    self.tail_size += len(keep)
                    break

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + self.tail_size

    def text(self) -> str:
        middle = ""
        if self.truncated:
            middle = (f"\n[numerai-sandbox: {self.total - len(self.head) - self.tail_size:,} bytes of the "
                      "model's output dropped here]\n")
        return (bytes(self.head).decode("utf-8", "replace") + middle
                + b"".join(self.tail).decode("utf-8", "replace"))

    def last_lines(self, n: int = TAIL_LINES) -> str:
        lines = self.text().splitlines()[-n:]
        return "\n".join(line[:500] for line in lines)


class RunSink(StreamSink):
    """The container's output during a run: the harness's frames, the model's log, the live display."""

    def __init__(self, watch: "Watch", console: Console, debug: bool, cancel: threading.Event | None = None,
                 live: "LiveProgress | None" = None):
        self.parser, self.logs, self.console, self.debug = watch.parser, watch.logs, console, debug
        self.cancel, self.live = cancel, live

    def stdout(self, chunk: bytes) -> None:
        for frame in self.parser.feed(chunk):
            if frame.kind != "phase":
                continue
            try:
                phase = frame.json().get("phase")
            except (ValueError, AttributeError):
                continue
            if phase in WORK_PHASES:
                self.console.progress(doing(phase) + "...")

    def stderr(self, chunk: bytes) -> None:
        self.logs.add(chunk)
        if self.debug:
            self.console.model_output(chunk)

    def watch_memory(self, samples) -> None:
        if self.live is not None:
            self.live.samples = samples

    def abort_reason(self) -> str | None:
        if self.cancel is not None and self.cancel.is_set():
            return "interrupted"
        return "output_too_large" if self.parser.oversized else None


class LiveProgress(threading.Thread):
    """While the model runs: the phase, elapsed time against the timeout, memory against the limit.

    Updated in place on a terminal (4 times a second); a plain line every 10 s in a log.
    """

    def __init__(self, console: Console, limits: Limits, parser: FrameParser, interval: float | None = None):
        super().__init__(daemon=True, name="live-progress")
        self.console, self.limits, self.parser = console, limits, parser
        self.interval = interval if interval is not None else 0.25 if console.tty else 10.0
        self.samples = None
        self.started = time.monotonic()
        self.done = threading.Event()

    def line(self) -> str:
        phase = doing(self.parser.phase)
        parts = [f"{phase}... {time.monotonic() - self.started:.1f}s of {self.limits.timeout_seconds:g}s"]
        latest = self.samples.latest if self.samples is not None else None
        if latest:
            parts.append(f"memory {human_bytes(latest[1])} of {human_bytes(self.limits.memory_bytes)} "
                         f"({latest[1] / self.limits.memory_bytes:.0%})")
        return " · ".join(parts)

    def run(self) -> None:
        while not self.done.wait(self.interval):
            if self.console.tty:
                self.console.progress(self.line())
            else:
                self.console.detail(self.line())

    def stop(self) -> None:
        self.done.set()
