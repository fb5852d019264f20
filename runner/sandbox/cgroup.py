"""A container's memory, read from its cgroup while it runs: the curve, the high-water mark, the OOM kills.

Every 0.2 s from the cgroup's own files (v1 or v2), the engine's stats API as the fallback; the cgroup's
peak file also sees the spikes between two samples. What the run reports as peak memory and draws as
its memory curve.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import docker
import docker.errors
import requests

from .backend import MemorySamples


class MemoryWatcher(threading.Thread):
    """Samples the container's memory in use every 0.2 s from its cgroup (the stats API as fallback).

    `samples` is the curve ([seconds since the container started, bytes]), readable while the
    watcher runs; `peak` is the cgroup's own high-water mark, which also sees the spikes
    between two samples.
    """

    def __init__(self, client: docker.DockerClient, container_id: str, pid: int, started_at: float):
        super().__init__(daemon=True, name="memory-watcher")
        self.client, self.container_id = client, container_id
        self.samples = MemorySamples()
        self._peak_file_value = 0
        self._stop_event = threading.Event()
        self._current_file, self._peak_file = _cgroup_memory_files(pid)
        self._cgroup = self._current_file.parent if self._current_file else None
        # Seconds since the container started, on the monotonic clock from here on.
        self._origin = time.monotonic() - (time.time() - started_at)

    @property
    def peak(self) -> int:
        return max(self._peak_file_value, self.samples.largest or 0)

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(0.2 if self._current_file else 1.0)

    def sample(self) -> None:
        seconds = time.monotonic() - self._origin
        in_use = _read_int(self._current_file)
        if in_use is None:
            self._current_file = None
            in_use = self._from_stats()
        if in_use:
            self.samples.add(seconds, in_use)
        peak = _read_int(self._peak_file)
        if peak is None:
            self._peak_file = None
        else:
            self._peak_file_value = max(self._peak_file_value, peak)

    def _from_stats(self) -> int | None:
        try:
            stats = self.client.api.stats(self.container_id, stream=False, one_shot=True)
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return None
        memory = stats.get("memory_stats") or {}
        self._peak_file_value = max(self._peak_file_value, int(memory.get("max_usage") or 0))
        return memory.get("usage")

    def stop(self) -> None:
        self._stop_event.set()

    def oom_kills(self) -> int:
        """How many processes the kernel killed for memory in the container's cgroup so far.

        The engine's OOMKilled flag only covers the container's own process; a shell is an exec beside it.
        """
        for name in ("memory.oom_control", "memory.events"):  # cgroup v1, v2 (both say `oom_kill N`)
            try:
                text = (self._cgroup / name).read_text() if self._cgroup else ""
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        return 0


def _read_int(path: Path | None) -> int | None:
    if path is None:
        return None
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _cgroup_memory_files(pid: int) -> tuple[Path | None, Path | None]:
    """The container's (memory in use, high-water mark) files: cgroup v1, else v2 (peak needs Linux 5.19)."""
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            base = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
            if (base / "memory.usage_in_bytes").exists():
                return base / "memory.usage_in_bytes", base / "memory.max_usage_in_bytes"
        if controllers == "":
            base = Path("/sys/fs/cgroup") / path.lstrip("/")
            if (base / "memory.current").exists():
                peak = base / "memory.peak"
                return base / "memory.current", peak if peak.exists() else None
    return None, None
