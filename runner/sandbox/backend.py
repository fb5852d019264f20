"""What every sandbox backend shares: the limits, the container's shape, and the facts it reports.

A backend (the local Docker engine today) turns a ContainerSpec into a finished
Outcome while streaming the container's output to a StreamSink. These types import
nothing heavy, so the command line can describe limits without loading the Docker SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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

    def to_dict(self) -> dict:
        return {"memory_bytes": self.memory_bytes, "cpus": self.cpus, "swap_bytes": 0, "isolation": self.isolation,
                "timeout_seconds": self.timeout_seconds, "network": "none", "pids": self.pids,
                "open_files": self.open_files, "tmp_bytes": self.tmp_bytes,
                "max_output_bytes": self.max_output_bytes, "max_log_bytes": self.max_log_bytes}


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
    engine_error: str | None = None

    @property
    def signal(self) -> int | None:
        """The signal that killed the harness (docker-init reports 128+N)."""
        if self.exit_code is not None and 128 < self.exit_code < 160:
            return self.exit_code - 128
        return None


class IsolationUnavailable(Exception):
    """The backend cannot give the sandbox the isolation asked for (e.g. gVisor is not set up).

    Never the model's fault: the message says what is missing and how to set it up."""


class BackendUnavailable(Exception):
    """The place that runs sandboxes cannot run this one: a cluster that refuses or never starts it, a
    registry its nodes cannot pull from. Never the model's fault; the message says what and where."""


class StreamSink:
    """Receives the container's output while it runs. Subclasses decide what to keep."""

    def stdout(self, chunk: bytes) -> None: ...

    def stderr(self, chunk: bytes) -> None: ...

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
    in an Outcome. It raises IsolationUnavailable when it cannot isolate as the limits ask, and
    BackendUnavailable when it cannot run the sandbox at all.
    """

    name = "backend"

    def run(self, spec: ContainerSpec, sink: StreamSink, on_started=lambda: None,
            on_created=lambda sandbox_id: None) -> Outcome:
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; sandboxes still running are the caller's to stop first."""
