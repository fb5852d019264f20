"""What every sandbox backend shares: the limits, the container's shape, and the facts it reports.

A backend (the local Docker engine, a Kubernetes cluster) turns a ContainerSpec into a finished
Outcome while streaming the container's output to a StreamSink. It reports facts, never verdicts:
how the model's process ended (exit code, signal, the memory kill, the host's timeout, peak memory
and its samples) and, in one vocabulary for every backend, what the platform itself could not do
(PlatformFailure: unreachable, no isolation, no image, not started, stopped before the model's
limits) — on the Outcome once a sandbox existed, raised as SandboxUnavailable before one did.
runner/verdict/platform.py turns those into verdicts, the same way whichever backend saw them.
These types import nothing heavy, so the command line can describe limits without the Docker SDK.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..support.units import human_bytes

MAX_MEMORY_SAMPLES = 3000  # 10 minutes at 0.2 s; longer runs are thinned evenly

# How the sandbox is isolated from the machine that runs it. runc (the default): Linux namespaces and
# cgroups on the host's kernel, as Numerai's own containers run. gvisor: the same container under
# gVisor's runsc, whose user-space kernel answers the model's system calls, so a hostile pickle meets
# gVisor's kernel instead of the host's; gVisor's own memory counts against the limit.
ISOLATIONS = ("runc", "gvisor")


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = 4 * 1024**3
    cpus: float = 1.0
    timeout_seconds: float = 600.0
    pids: int = 512
    open_files: int = 4096
    tmp_bytes: int = 1024**3  # /tmp is a tmpfs; it counts against the memory limit
    max_output_bytes: int = 256 * 1024**2
    max_log_bytes: int = 8 * 1024**2  # kept in the host's memory (head and tail)
    isolation: str = "runc"  # one of ISOLATIONS

    def __post_init__(self) -> None:
        if self.isolation not in ISOLATIONS:
            raise ValueError(f"isolation must be one of {', '.join(ISOLATIONS)}, not {self.isolation!r}")

    def relaxed(self) -> list[str]:
        """What is more generous than Numerai's 1 CPU, 4 GB and 10 minutes: a Success then proves less."""
        numerai = NUMERAI_LIMITS
        out = []
        if self.cpus > numerai.cpus:
            out.append(f"{self.cpus:g} CPUs")
        if self.memory_bytes > numerai.memory_bytes:
            out.append(f"{human_bytes(self.memory_bytes)} of memory")
        if self.timeout_seconds > numerai.timeout_seconds:
            out.append(f"{self.timeout_seconds:g} s")
        return out

    def is_numerais(self) -> bool:
        numerai = NUMERAI_LIMITS
        return (self.cpus, self.memory_bytes, self.timeout_seconds) == (numerai.cpus, numerai.memory_bytes,
                                                                        numerai.timeout_seconds)

    def to_dict(self) -> dict:
        return {"memory_bytes": self.memory_bytes, "cpus": self.cpus, "swap_bytes": 0, "isolation": self.isolation,
                "timeout_seconds": self.timeout_seconds, "network": "none", "pids": self.pids,
                "open_files": self.open_files, "tmp_bytes": self.tmp_bytes,
                "max_output_bytes": self.max_output_bytes, "max_log_bytes": self.max_log_bytes,
                "numerai": self.is_numerais(), "relaxed": self.relaxed()}


NUMERAI_LIMITS = Limits()  # what Numerai's hosted runner gives every model


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    writable: bool = False  # only for our own trusted scripts (run_script), never for a model run


@dataclass
class ContainerSpec:
    image: str
    command: list[str]
    mounts: list[Mount]
    limits: Limits
    name: str
    user: str
    environment: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    keep: bool = False
    preload: tuple[str, ...] | None = None  # may use (and leave) a pre-started sandbox importing these modules
    remove_on_exit: bool = False  # the engine removes it once it stops (a shell's, whose runner may be killed)


# What the platform could not do (never the model's fault): one vocabulary for every backend.
UNREACHABLE = "unreachable"  # the engine or cluster cannot be reached, or went away mid-run
NO_ISOLATION = "isolation"  # it cannot isolate the sandbox as the limits ask (gVisor not there)
NO_IMAGE = "image_missing"  # the image to run is not there
NOT_STARTED = "not_started"  # it could not start the sandbox (refused, could not pull, could not schedule)
STOPPED = "stopped"  # it ended the sandbox before the model's own limits (a deadline, an eviction)
FAILURES = (UNREACHABLE, NO_ISOLATION, NO_IMAGE, NOT_STARTED, STOPPED)


@dataclass(frozen=True)
class PlatformFailure:
    """One thing the platform could not do: which (FAILURES), in words, and where (the backend's name)."""

    kind: str
    detail: str
    platform: str = ""  # "docker", "kubernetes", ...

    def __post_init__(self) -> None:
        if self.kind not in FAILURES:
            raise ValueError(f"a platform failure is one of {', '.join(FAILURES)}, not {self.kind!r}")


class SandboxUnavailable(Exception):
    """The backend could not run the sandbox at all (no Outcome to report): the failure, as a fact."""

    kind = NOT_STARTED
    platform = ""

    def __init__(self, detail: str, platform: str | None = None, kind: str | None = None):
        super().__init__(detail)
        self.failure = PlatformFailure(kind or self.kind, detail, self.platform if platform is None else platform)


class IsolationUnavailable(SandboxUnavailable):
    """The backend cannot give the sandbox the isolation asked for (e.g. gVisor is not set up).

    Never the model's fault: the message says what is missing and how to set it up."""

    kind = NO_ISOLATION


class BackendUnavailable(SandboxUnavailable):
    """The place that runs sandboxes cannot run this one: a cluster that refuses or never starts it, a
    registry its nodes cannot pull from. Never the model's fault; the message says what and where."""

    kind = NOT_STARTED


@dataclass
class Outcome:
    """What the engine saw; the host's facts, independent of anything the model says."""

    container: str
    exit_code: int | None = None
    oom_killed: bool = False
    timed_out: bool = False
    aborted: str | None = None  # why the host killed the container early (e.g. output cap)
    run_seconds: float = 0.0
    peak_memory_bytes: int | None = None
    cores: list[int] = field(default_factory=list)  # the host cores the sandbox ran on (its own)
    prestarted: bool = False  # served by a pre-started sandbox (see runner.sandbox.pool)
    failure: PlatformFailure | None = None  # the platform could not run it to its end (not the model's doing)
    started_at: float | None = None  # the container's start (epoch seconds, the engine's clock)
    ended_at: float | None = None  # when it exited
    memory_samples: list[list[float]] = field(default_factory=list)  # [seconds since start, bytes in use]
    confinement: dict | None = None  # a sandbox weaker than a container: what it enforced and what not

    @property
    def signal(self) -> int | None:
        """The signal that killed the harness (docker-init reports 128+N)."""
        if self.exit_code is not None and 128 < self.exit_code < 160:
            return self.exit_code - 128
        return None


class MemorySamples:
    """The container's memory in use over time: [seconds since start, bytes], bounded in size.

    A sampler adds one reading per tick. When the series reaches `limit` points, every
    other point is dropped and only every other tick is kept from then on, so the points
    stay evenly spread over the whole run. The largest reading is kept aside and always
    appears in `points()`, even when it fell between kept ticks. Safe to read from another
    thread while it grows.
    """

    def __init__(self, limit: int = MAX_MEMORY_SAMPLES):
        self.limit = max(limit, 4)
        self._points: list[list[float]] = []
        self._largest: list[float] | None = None
        self._last: list[float] | None = None
        self._stride = 1
        self._ticks = 0
        self._lock = threading.Lock()

    def add(self, seconds: float, in_use: int) -> None:
        point = [round(seconds, 3), int(in_use)]
        with self._lock:
            self._last = point
            if self._largest is None or point[1] > self._largest[1]:
                self._largest = point
            on_stride = self._ticks % self._stride == 0
            self._ticks += 1
            if not on_stride:
                return
            self._points.append(point)
            if len(self._points) >= self.limit:
                self._points = self._points[::2]
                self._stride *= 2

    def points(self) -> list[list[float]]:
        """A copy of the series so far, oldest first, the largest reading included."""
        with self._lock:
            points = [list(p) for p in self._points]
            largest = self._largest
        if largest is not None and largest not in points:
            points.append(list(largest))
            points.sort()
        return points

    @property
    def latest(self) -> list[float] | None:
        """The last reading (kept in the series or not): what a live display shows."""
        with self._lock:
            return list(self._last) if self._last else None

    @property
    def largest(self) -> int | None:
        with self._lock:
            return self._largest[1] if self._largest else None


class StreamSink:
    """Receives the container's output while it runs. Subclasses decide what to keep."""

    def stdout(self, chunk: bytes) -> None: ...

    def stderr(self, chunk: bytes) -> None: ...

    def watch_memory(self, samples: MemorySamples) -> None:
        """Called once the container's memory is being sampled; a live display may read the samples."""

    def abort_reason(self) -> str | None:
        """A reason to kill the container now (e.g. output beyond the cap), or None."""
        return None


class Backend:
    """A place that runs sandboxes: the local Docker engine today, a Kubernetes cluster beside it.

    `run` is the whole life of one sandbox: create it from the spec, start it, stream its
    output to the sink, enforce the wall clock, collect the facts, and remove it (unless
    the spec says keep) whatever happens. `on_created` gets the sandbox's id once it exists,
    `on_started` is called once the model's process is starting, so the caller can enter
    Running at the right moment. A backend never decides a verdict: it reports what it saw
    in an Outcome (with `failure` when the platform stopped it, or could not start it, after the sandbox
    existed). It raises SandboxUnavailable (IsolationUnavailable, BackendUnavailable: a PlatformFailure)
    when it cannot run the sandbox at all.
    """

    name = "backend"
    runs_here = True  # the sandbox runs on this machine: its memory is what the limit is checked against

    def run(self, spec: ContainerSpec, sink: StreamSink, on_started=lambda: None,
            on_created=lambda sandbox_id: None, on_waiting=lambda: None) -> Outcome:
        """Run the sandbox of `spec` to its end. `on_waiting` is called when the run has to queue for
        its cores (other runs hold them); `on_created`, once the sandbox exists; `on_started`, once the
        model's process runs."""
        raise NotImplementedError

    def interact(self, spec: ContainerSpec, arguments: list[str], terminal, on_started) -> Outcome:
        """An interactive session: the sandbox of `spec`, with the harness started with `arguments` on a
        terminal inside it and the user's `terminal` attached, until the shell ends, the terminal goes or
        the timeout passes; the sandbox is removed afterwards. The Outcome says how it ended (exit code,
        OOM flag, `timed_out`, `aborted` = "terminal_closed")."""
        raise NotImplementedError(f"the {self.name} backend has no interactive sessions")

    def failure_of(self, exc: BaseException) -> PlatformFailure | None:
        """What an exception this backend's calls raised says the platform could not do (None: not that)."""
        return None

    def make_room(self, needed: int) -> bool:
        """Give up memory this backend's idle sandboxes hold, `needed` bytes if it can; whether any went."""
        return False

    def prestart(self, spec: ContainerSpec) -> str | None:
        """Start a sandbox for `spec` ahead of its run, in this process (None: this backend pre-starts none)."""
        return None

    def discard_prestarted(self, name: str) -> None:
        """Remove a sandbox `prestart` started that no run took."""

    def leave_for_next(self, spec: ContainerSpec, estimate: int):
        """Start leaving a sandbox ready for the user's next run of `spec` (`estimate`: the memory it will hold),
        in the background: a handle with `join(timeout)` and `note` (what was left), or None."""
        return None

    def close(self) -> None:
        """Release connections; sandboxes still running are the caller's to stop first."""
