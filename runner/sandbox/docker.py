"""Everything that talks to the Docker engine about containers: limits, isolation, wait, kill, cleanup.

One container per run, created with the limits Numerai applies (memory with swap
off, CPUs, no network) and isolation that cannot be turned off (read-only root,
non-root user, no capabilities, no new privileges, a pids limit, a capped /tmp).
The wall-clock limit is enforced here, on the host: the container is killed when
it runs out. Every container carries our labels and the identity of the process
that owns it, so a later start can sweep away what a killed runner left behind.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import docker
import docker.errors
import psutil
import requests

from ..paths import LABEL, TEMP_PREFIX, boot_id, hostname
from .backend import Backend, ContainerSpec, Limits, MemorySamples, Mount, Outcome, StreamSink

KILL_GRACE_SECONDS = 10
CONNECT_TIMEOUT = 10  # to learn whether the engine answers at all
API_TIMEOUT = 900  # for everything else: removing a 10 GB image or importing a base takes a while


class EngineUnavailable(Exception):
    """The Docker engine cannot be reached (a platform problem, never the model's)."""


# What talking to the engine can raise when it is gone, refuses, or is too slow to answer.
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


def lost_engine(exc: BaseException) -> bool:
    """Whether an exception means the engine went away or stopped answering (not that it said no)."""
    return isinstance(exc, ENGINE_ERRORS) and not isinstance(exc, docker.errors.APIError)


# ---------------------------------------------------------------- connecting

def connect() -> docker.DockerClient:
    """A client for the engine DOCKER_HOST names (or the local socket), checked with a ping."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        probe = docker.from_env(timeout=CONNECT_TIMEOUT)
        try:
            probe.ping()
        finally:
            probe.close()
        return docker.from_env(timeout=API_TIMEOUT)
    except (*ENGINE_ERRORS, OSError) as exc:
        raise EngineUnavailable(f"cannot reach the Docker engine at {where} ({_short(exc)})") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    for marker in ("Connection refused", "No such file or directory", "Permission denied",
                   "timed out", "Name or service not known"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:160]


class DockerBackend(Backend):
    """Sandboxes as containers of the local Docker engine."""

    name = "docker"

    def __init__(self, client: docker.DockerClient):
        self.client = client

    @classmethod
    def connect(cls) -> "DockerBackend":
        return cls(connect())

    def run(self, spec: ContainerSpec, sink: StreamSink, on_started: Callable[[], None] = lambda: None,
            on_created: Callable[[str], None] = lambda container_id: None) -> Outcome:
        with container(self.client, spec) as container_id:
            on_created(container_id)
            return run(self.client, container_id, spec.limits, sink, on_started)

    def interact(self, spec: ContainerSpec, arguments: list[str], terminal,
                 on_started: Callable[[], None] = lambda: None) -> Outcome:
        with container(self.client, spec) as container_id:
            return interact(self.client, container_id, spec, arguments, terminal, on_started)

    def close(self) -> None:
        self.client.close()


# ---------------------------------------------------------------- ownership and sweeping

def owner_label() -> str:
    """host/boot/pid/start-time of this process: enough to tell whether it is still alive."""
    me = psutil.Process()
    return f"{hostname()}/{boot_id()}/{me.pid}/{me.create_time():.2f}"


def owner_alive(owner: str) -> bool:
    try:
        host, boot, pid, created = owner.rsplit("/", 3)
    except ValueError:
        return False
    if host != hostname():
        return True  # another machine's runner on a shared engine: not ours to judge
    if boot != boot_id():
        return False
    try:
        return abs(psutil.Process(int(pid)).create_time() - float(created)) < 0.05
    except (psutil.Error, ValueError):
        return False


def labels_for(kind: str, **extra: str) -> dict[str, str]:
    labels = {f"{LABEL}.kind": kind, f"{LABEL}.owner": owner_label()}
    labels.update({f"{LABEL}.{k}": v for k, v in extra.items()})
    return labels


def sweep(client: docker.DockerClient) -> list[str]:
    """Remove containers and temp dirs of ours whose owning process is gone. Returns what went."""
    removed = []
    try:
        containers = client.api.containers(all=True, filters={"label": f"{LABEL}.owner"})
    except ENGINE_ERRORS:
        return removed
    for info in containers:
        labels = info.get("Labels") or {}
        if labels.get(f"{LABEL}.keep") == "1" or owner_alive(labels.get(f"{LABEL}.owner", "")):
            continue
        with contextlib.suppress(*ENGINE_ERRORS):
            client.api.remove_container(info["Id"], force=True, v=True)
            removed.append(info["Names"][0].lstrip("/") if info.get("Names") else info["Id"][:12])
    removed += sweep_temp_dirs()
    return removed


def sweep_temp_dirs() -> list[str]:
    removed = []
    root = Path(tempfile.gettempdir())
    for path in root.glob(TEMP_PREFIX + "*"):
        owner = path.name[len(TEMP_PREFIX):].split("-")
        pid = next((int(p) for p in owner if p.isdigit()), None)
        if pid is not None and not psutil.pid_exists(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed


def temp_dir(purpose: str) -> Path:
    """A temp dir named so a sweep can tell whose it is: numerai-sandbox-<purpose>-<pid>-<random>."""
    return Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{purpose}-{os.getpid()}-"))


# ---------------------------------------------------------------- running one container

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


def engine_time(stamp: str | None) -> float | None:
    """The engine's RFC 3339 timestamp (nanoseconds, Z) as epoch seconds; None for its zero time."""
    try:
        when = datetime.fromisoformat((stamp or "").replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return when if when > 0 else None


def _host_config(client: docker.DockerClient, spec: ContainerSpec) -> dict:
    limits = spec.limits
    if any(m.writable for m in spec.mounts):
        raise ValueError("a model run never gets a writable mount")
    ulimits = [docker.types.Ulimit(name="nofile", soft=limits.open_files, hard=limits.open_files),
               docker.types.Ulimit(name="core", soft=0, hard=0)]
    if math.isfinite(limits.timeout_seconds):  # a shell without --timeout has no wall clock to back up
        # A backstop should the host die: the kernel ends a runaway on its own.
        cpu_seconds = int(limits.timeout_seconds * max(limits.cpus, 1)) + 120
        ulimits.append(docker.types.Ulimit(name="cpu", soft=cpu_seconds, hard=cpu_seconds))
    return client.api.create_host_config(
        mounts=[docker.types.Mount(m.target, str(m.source), type="bind", read_only=True)
                for m in spec.mounts],
        network_mode="none",
        mem_limit=limits.memory_bytes,
        memswap_limit=limits.memory_bytes,  # equal to the memory limit: no swap
        nano_cpus=int(limits.cpus * 1e9),
        # Also show the model only that many cores, so thread pools (OpenMP in LightGBM/XGBoost)
        # size themselves as on Numerai's 1-CPU machine instead of thrashing inside the quota.
        cpuset_cpus=choose_cpus(limits.cpus),
        pids_limit=limits.pids,
        read_only=True,
        tmpfs={"/tmp": f"rw,nosuid,nodev,size={limits.tmp_bytes},mode=1777"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        ulimits=ulimits,
        init=True,
        auto_remove=spec.remove_on_exit,
        ipc_mode="private",
        log_config=docker.types.LogConfig(type="json-file", config={"max-size": "10m", "max-file": "1"}),
    )


def choose_cpus(cpus: float) -> str | None:
    """ceil(cpus) of this machine's cores, picked at random so concurrent runs spread out."""
    import random

    available = sorted(os.sched_getaffinity(0))
    wanted = math.ceil(cpus)
    if wanted >= len(available):
        return None
    return ",".join(str(c) for c in sorted(random.sample(available, wanted)))


@contextlib.contextmanager
def container(client: docker.DockerClient, spec: ContainerSpec) -> Iterator[str]:
    """Create the container; always remove it afterwards (unless kept), whatever happens."""
    labels = labels_for("run", **spec.labels)
    if spec.keep:
        labels[f"{LABEL}.keep"] = "1"
    created = client.api.create_container(
        spec.image, command=spec.command, name=spec.name, user=spec.user,
        environment=spec.environment, labels=labels, working_dir="/tmp",
        network_disabled=True, host_config=_host_config(client, spec),
        stdin_open=True,  # with StdinOnce: stdin closes when our attachment does (see run)
    )
    container_id = created["Id"]
    try:
        yield container_id
    finally:
        if not spec.keep:
            remove(client, container_id)


def remove(client: docker.DockerClient, container_id: str) -> None:
    with contextlib.suppress(*ENGINE_ERRORS):
        client.api.remove_container(container_id, force=True, v=True)


def run(client: docker.DockerClient, container_id: str, limits: Limits, sink: StreamSink,
        on_started: Callable[[], None] = lambda: None) -> Outcome:
    """Start the created container, stream its output, enforce the wall clock, and report facts."""
    outcome = Outcome(container=container_id)
    # We hold the container's stdin open for as long as we live: should this process be killed
    # outright, the harness sees end-of-file and stops the model at once instead of running on
    # until the next start sweeps the container away.
    lifeline = client.api.attach_socket(container_id, params={"stdin": 1, "stream": 1})
    stream = client.api.attach(container_id, stdout=True, stderr=True, stream=True, demux=True)
    pump = threading.Thread(target=_pump, args=(stream, sink), daemon=True, name="output-pump")
    pump.start()
    client.api.start(container_id)
    started = time.monotonic()
    on_started()
    state = client.api.inspect_container(container_id)["State"]
    outcome.started_at = engine_time(state.get("StartedAt")) or time.time() - (time.monotonic() - started)
    watcher = MemoryWatcher(client, container_id, state.get("Pid") or 0, outcome.started_at)
    watcher.start()
    deadline = started + limits.timeout_seconds
    try:
        while True:
            abort = sink.abort_reason()
            remaining = deadline - time.monotonic()
            if abort or remaining <= 0:
                watcher.sample()
                kill(client, container_id)
                outcome.aborted = abort
                outcome.timed_out = abort is None
                break
            try:
                client.api.wait(container_id, timeout=min(remaining, 0.5))
                break
            except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
                continue
    finally:
        watcher.stop()
        with contextlib.suppress(OSError):
            lifeline.close()
    outcome.run_seconds = time.monotonic() - started
    pump.join(timeout=KILL_GRACE_SECONDS)
    state = client.api.inspect_container(container_id)["State"]
    outcome.exit_code = state.get("ExitCode")
    outcome.oom_killed = bool(state.get("OOMKilled"))
    outcome.engine_error = state.get("Error") or None
    outcome.peak_memory_bytes = watcher.peak or None
    outcome.memory_samples = watcher.samples.points()
    outcome.ended_at = engine_time(state.get("FinishedAt")) or outcome.started_at + outcome.run_seconds
    return outcome


def interact(client: docker.DockerClient, container_id: str, spec: ContainerSpec, arguments: list[str],
             terminal, on_started: Callable[[], None] = lambda: None) -> Outcome:
    """Start a shell's container and attach the user's terminal to the harness's shell inside it.

    A TTY container's stdin is not closed when its attachment goes, so the container's own
    process has none: it holds stdin, our lifeline (StdinOnce closes it when this process goes,
    even killed outright), and exits when it closes; the shell is an exec with a TTY beside it,
    in the same namespaces, cgroup, user and limits, and dies with the container, which the
    engine then removes (spec.remove_on_exit). The host still enforces the timeout and, on
    every path, the caller's `container` context removes the container.
    """
    from .terminal import EXITED, HANGUP, TIMEOUT

    outcome = Outcome(container=container_id)
    lifeline = client.api.attach_socket(container_id, params={"stdin": 1, "stream": 1})
    session = watcher = None
    try:
        client.api.start(container_id)
        state = client.api.inspect_container(container_id)["State"]
        outcome.started_at = engine_time(state.get("StartedAt")) or time.time()
        watcher = MemoryWatcher(client, container_id, state.get("Pid") or 0, outcome.started_at)
        watcher.start()
        entrypoint = client.api.inspect_image(spec.image)["Config"].get("Entrypoint") or []
        exec_id = client.api.exec_create(container_id, list(entrypoint) + arguments, stdin=True, tty=True,
                                         user=spec.user, workdir="/tmp")["Id"]
        session = client.api.exec_start(exec_id, tty=True, socket=True)
        sock = getattr(session, "_sock", session)
        started = time.monotonic()

        def resize(rows: int, columns: int) -> None:
            with contextlib.suppress(*ENGINE_ERRORS):
                client.api.exec_resize(exec_id, height=rows, width=columns)

        def alive() -> bool:
            with contextlib.suppress(*ENGINE_ERRORS):
                return bool(client.api.exec_inspect(exec_id).get("Running"))
            return False

        on_started()
        early = _already_buffered(session)
        with terminal.raw():
            if early:
                terminal.show(early)
            deadline = started + spec.limits.timeout_seconds if math.isfinite(spec.limits.timeout_seconds) else None
            ended = terminal.relay(sock, deadline, resize, alive)
        outcome.run_seconds = time.monotonic() - started
        outcome.oom_killed = watcher.oom_kills() > 0  # read while the container (and its cgroup) still stands
        if ended != EXITED:
            kill(client, container_id)
        outcome.timed_out = ended == TIMEOUT
        outcome.aborted = ended if ended == HANGUP else None
        with contextlib.suppress(*ENGINE_ERRORS):
            outcome.exit_code = client.api.exec_inspect(exec_id).get("ExitCode")
    finally:
        if watcher is not None:
            watcher.stop()
            watcher.sample()
            outcome.peak_memory_bytes = watcher.peak or None
            outcome.memory_samples = watcher.samples.points()
        for stream in (session, lifeline):
            with contextlib.suppress(OSError, AttributeError):
                stream.close()
    outcome.ended_at = outcome.started_at + outcome.run_seconds if outcome.started_at else None
    return outcome


def _already_buffered(session) -> bytes:
    """Output that arrived with the engine's upgrade response and sits in the HTTP reader's buffer, not the socket."""
    reader = getattr(getattr(getattr(getattr(session, "_response", None), "raw", None), "_fp", None), "fp", None)
    sock = getattr(session, "_sock", None)
    if reader is None or sock is None:
        return b""
    try:
        sock.setblocking(False)
        try:
            return reader.read1(65536) or b""
        finally:
            sock.setblocking(True)
    except (OSError, ValueError):
        return b""


def kill(client: docker.DockerClient, container_id: str) -> None:
    with contextlib.suppress(*ENGINE_ERRORS):
        client.api.kill(container_id)
    with contextlib.suppress(*ENGINE_ERRORS):
        client.api.wait(container_id, timeout=KILL_GRACE_SECONDS)


def _pump(stream, sink: StreamSink) -> None:
    try:
        for out, err in stream:
            if out:
                sink.stdout(out)
            if err:
                sink.stderr(err)
    except (requests.exceptions.RequestException, OSError, ValueError):
        pass  # the stream ends with the container; a broken stream ends it early


def remove_all(client: docker.DockerClient) -> list[str]:
    """Every container of ours, whoever owns it and whether kept or not (the `clean` command)."""
    removed = []
    for info in client.api.containers(all=True, filters={"label": f"{LABEL}.owner"}):
        remove(client, info["Id"])
        removed.append(info["Names"][0].lstrip("/") if info.get("Names") else info["Id"][:12])
    return removed


def run_script(client: docker.DockerClient, image: str, argv: list[str], mounts: list[Mount],
               timeout: float = 900) -> tuple[int, str]:
    """Run one of our own scripts (e.g. making example pickles) in an image: no network, the caller's
    uid so files it writes belong to the caller. Returns (exit code, output)."""
    host_config = client.api.create_host_config(
        mounts=[docker.types.Mount(m.target, str(m.source), type="bind", read_only=not m.writable)
                for m in mounts],
        network_mode="none", read_only=True, tmpfs={"/tmp": "rw,size=1g,mode=1777"}, cap_drop=["ALL"],
        security_opt=["no-new-privileges"], init=True)
    created = client.api.create_container(
        image, entrypoint=["/opt/venv/bin/python", "-I"], command=argv, user=f"{os.getuid()}:{os.getgid()}",
        environment={"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib"}, labels=labels_for("script"),
        working_dir="/tmp", network_disabled=True, host_config=host_config)
    try:
        client.api.start(created["Id"])
        try:
            code = client.api.wait(created["Id"], timeout=timeout)["StatusCode"]
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError):
            kill(client, created["Id"])
            code = -1
        output = client.api.logs(created["Id"], stdout=True, stderr=True).decode("utf-8", "replace")
        return code, output
    finally:
        remove(client, created["Id"])
