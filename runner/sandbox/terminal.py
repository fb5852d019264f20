"""The user's terminal, lent to a sandbox for an interactive session (`numerai-sandbox shell`).

While a session is attached the terminal is in raw mode, so every key, Ctrl-C included,
goes to the sandbox's own terminal, whose line discipline makes it a signal there: Ctrl-C
is a KeyboardInterrupt inside the sandbox, not the end of the session. Window size changes
(SIGWINCH) are passed on. The terminal's settings are restored whatever ends the session.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import termios
import time
import tty
from typing import Callable, Iterator

# How a relay ends.
EXITED = "exited"  # the sandbox's side closed: the shell ended
TIMEOUT = "timeout"  # the deadline passed
HANGUP = "terminal_closed"  # the user's terminal went away (end of file or an error on it)

LIVENESS_SECONDS = 2.0  # how often an idle relay asks whether the shell still runs


class Terminal:
    """The controlling terminal's two ends: what the user types (in_fd) and what they see (out_fd)."""

    def __init__(self, in_fd: int = 0, out_fd: int = 1):
        self.in_fd, self.out_fd = in_fd, out_fd

    def is_terminal(self) -> bool:
        return os.isatty(self.in_fd)

    def size(self) -> tuple[int, int]:
        """(rows, columns), from whichever end is a terminal; 24x80 when neither says."""
        for fd in (self.out_fd, self.in_fd):
            with contextlib.suppress(OSError):
                columns, rows = os.get_terminal_size(fd)
                if rows and columns:
                    return rows, columns
        return 24, 80

    @contextlib.contextmanager
    def raw(self) -> Iterator[None]:
        """Raw mode for the session; the settings before it come back afterwards, on every path."""
        saved = termios.tcgetattr(self.in_fd)
        tty.setraw(self.in_fd)
        try:
            yield
        finally:
            with contextlib.suppress(termios.error, OSError):  # a terminal that went away has nothing to restore
                termios.tcsetattr(self.in_fd, termios.TCSADRAIN, saved)

    def relay(self, sock, deadline: float | None, resize: Callable[[int, int], None],
              alive: Callable[[], bool] = lambda: True) -> str:
        """Copy keys to `sock` and its output to the screen until one side ends or `deadline` (monotonic) passes.

        `resize(rows, columns)` is called on the first output (the shell is running by then) and after every
        SIGWINCH; `alive()` is asked when the relay has been idle a while, so a shell whose terminal a
        leftover child keeps open still counts as ended. Returns EXITED, TIMEOUT or HANGUP.
        """
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)

        def window_changed(signum, frame) -> None:
            with contextlib.suppress(OSError):
                os.write(wake_write, b"w")

        previous = signal.signal(signal.SIGWINCH, window_changed)
        sized = False
        try:
            while True:
                wait = LIVENESS_SECONDS if deadline is None else min(LIVENESS_SECONDS, deadline - time.monotonic())
                if wait <= 0:
                    return TIMEOUT
                ready, _, _ = select.select([self.in_fd, sock, wake_read], [], [], wait)
                if not ready:
                    if not alive():
                        return EXITED
                    continue
                if wake_read in ready:
                    os.read(wake_read, 512)
                    resize(*self.size())
                if sock in ready:
                    data = _receive(sock)
                    if not data:
                        return EXITED
                    if not sized:
                        sized = True
                        resize(*self.size())
                    if not self.show(data):
                        return HANGUP
                if self.in_fd in ready:
                    try:
                        keys = os.read(self.in_fd, 4096)
                    except OSError:
                        return HANGUP
                    if not keys:
                        return HANGUP
                    try:
                        sock.sendall(keys)
                    except OSError:
                        return EXITED
        finally:
            signal.signal(signal.SIGWINCH, previous)
            os.close(wake_read)
            os.close(wake_write)

    def show(self, data: bytes) -> bool:
        """Write to the screen; False when the terminal is gone."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.out_fd, view):]
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EPIPE, errno.EBADF, errno.ENXIO):
                return False
            raise
        return True


def _receive(sock) -> bytes:
    try:
        return sock.recv(65536)
    except (ConnectionResetError, BrokenPipeError):
        return b""
