"""Which cores a sandbox gets: disjoint sets for concurrent runs, from one host-wide allocator.

Numerai gives a model one CPU of its own. Two sandboxes pinned to the same core would
each get half of it, and a verdict's timing would be luck, so every run of every
numerai-sandbox process on this host takes its cores through per-core lock files in one
shared folder (not the per-user cache: CPUs belong to the host). A lock is held for as long
as the sandbox lives and is released by the kernel if its process dies, so nothing can be
left taken. When every core is busy a run waits for one (that is queueing, which Numerai
does not count either).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

LOCK_DIR_NAME = "numerai-sandbox-cpus"
POLL_SECONDS = 0.1


def lock_dir() -> Path:
    """Shared by every user of this host (mode 1777), like /tmp itself; NUMERAI_SANDBOX_CPU_LOCKS names
    another folder (to keep a group of processes apart from the rest of the host)."""
    path = Path(os.environ.get("NUMERAI_SANDBOX_CPU_LOCKS") or Path(tempfile.gettempdir()) / LOCK_DIR_NAME)
    if not path.is_dir():
        path.mkdir(exist_ok=True)
        with contextlib.suppress(OSError):
            path.chmod(0o1777)
    return path


def cores_wanted(cpus: float, total: int) -> int:
    return max(1, min(math.ceil(cpus), total))


def _try_lock(core: int):
    from filelock import FileLock, Timeout

    lock = FileLock(str(lock_dir() / f"cpu-{core}.lock"), timeout=0, mode=0o666)
    try:
        lock.acquire()
    except Timeout:
        return None
    except OSError:
        return None  # a lock file we may not open: treat the core as taken by someone else
    return lock


@contextlib.contextmanager
def allocate(cpus: float, total: int, on_wait: Callable[[], None] = lambda: None,
             cancelled: Callable[[], bool] = lambda: False) -> Iterator[list[int]]:
    """Hold ceil(cpus) of the engine's `total` cores for the duration of the block; yields their numbers."""
    wanted = cores_wanted(cpus, total)
    waited = False
    while True:
        held: list[tuple[int, object]] = []
        # Start at a different core per process so concurrent starts do not all race for core 0.
        order = [(os.getpid() + i) % total for i in range(total)]
        for core in order:
            lock = _try_lock(core)
            if lock is not None:
                held.append((core, lock))
                if len(held) == wanted:
                    break
        if len(held) == wanted:
            break
        for _, lock in held:
            lock.release()
        if cancelled():
            raise KeyboardInterrupt("cancelled while waiting for a free CPU")
        if not waited:
            on_wait()
            waited = True
        time.sleep(POLL_SECONDS)
    try:
        yield sorted(core for core, _ in held)
    finally:
        for _, lock in held:
            lock.release()
