"""What a person sees while things run: statuses as they are entered, progress, the model's output.

On a terminal, progress lines overwrite each other and statuses are coloured; when
the output is a file or a CI log, every line is plain and kept.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

# By status name (runner.verdict.lifecycle's statuses; this module sits below them and imports none).
COLOURS = {"Success": "32", "Failed": "31", "Error": "35", "Pending": "36", "Running": "34", "Validating": "33"}


class Console:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False, echo_limit: int = 16 * 1024**2):
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.quiet = quiet
        self.gone = False  # the stream stopped taking output
        self._lock = threading.Lock()
        self._transient = False  # a progress line is on screen and may be overwritten
        self._echoed = 0
        self._echo_limit = echo_limit

    def _write(self, text: str, transient: bool = False) -> None:
        if self.quiet:
            return
        with self._lock:
            try:
                if self._transient:
                    self.stream.write("\r\x1b[2K")
                if transient and self.tty:
                    width = 118
                    self.stream.write(text[:width])
                    self._transient = True
                else:
                    self.stream.write(text + "\n")
                    self._transient = False
                self.stream.flush()
            except OSError:  # the terminal closed (or the pipe's reader left): nobody is left to read
                self.quiet = self.gone = True

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.tty else text

    def status(self, entry) -> None:
        """A status entered (a runner.verdict.lifecycle.Entry): its time, its name coloured, its note."""
        label = self._paint(f"{entry.status.value:<10}",
                            COLOURS[entry.status.value] + (";1" if entry.status.terminal else ""))
        note = f"  {entry.note}" if entry.note else ""
        self._write(f"{entry.elapsed:7.2f}s  {label}{note}".rstrip())

    def detail(self, text: str) -> None:
        self._write(f"{'':10}{text}")

    def waiting(self, text: str) -> None:
        """The run waits for something it cannot do without (a free core): a detail line here; a batch's
        display shows it as the run's state."""
        self.detail(text)

    def progress(self, text: str) -> None:
        """A step of a long task: overwritten on a terminal, one plain line per step elsewhere."""
        self._write(f"{'':10}{text}", transient=True)

    def line(self, text: str = "") -> None:
        self._write(text)

    @property
    def echo_cut(self) -> bool:
        """Whether --debug's live echo of the model's output stopped at its cap."""
        return self._echoed > self._echo_limit

    def model_output(self, chunk: bytes) -> None:
        """--debug: the model's stdout/stderr as it comes, capped so a flood cannot drown the terminal."""
        if self.quiet or self._echoed > self._echo_limit:
            return
        self._echoed += len(chunk)
        text = chunk.decode("utf-8", "replace")
        if self._echoed > self._echo_limit:
            text += "\n[numerai-sandbox: the model's output continues; not shown past this point]\n"
        with self._lock:
            if self._transient:
                self.stream.write("\r\x1b[2K")
                self._transient = False
            prefix = self._paint("│ ", "2")
            self.stream.write("".join(f"{'':10}{prefix}{line}\n" for line in text.splitlines()))
            self.stream.flush()
