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
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import docker
import docker.errors
import psutil
import requests

from ..paths import LABEL, TEMP_PREFIX, boot_id, hostname
from .backend import Backend, ContainerSpec, IsolationUnavailable, Limits, Mount, Outcome, StreamSink

KILL_GRACE_SECONDS = 10
# The engine runtime for each isolation (None: the engine's default, runc).
RUNTIMES = {"runc": None, "gvisor": "runsc"}
REGISTER_RUNSC = ("register it with `sudo make gvisor` in a numerai-sandbox checkout (scripts/register-runsc.sh: "
                  "it installs Debian's runsc and reloads dockerd with SIGHUP, which keeps running containers), "
                  "or by hand: `apt-get install runsc`, add \"runtimes\": {\"runsc\": {\"path\": \"/usr/bin/runsc\", "
                  "\"runtimeArgs\": [\"--platform=ptrace\", \"--network=none\"]}} to /etc/docker/daemon.json, "
                  "then `kill -HUP $(cat /var/run/docker.pid)`")
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
        runtime = self.runtime(spec.limits.isolation)
        with container(self.client, spec, runtime) as container_id:
            on_created(container_id)
            try:
                return run(self.client, container_id, spec.limits, sink, on_started)
            except docker.errors.APIError as exc:
                if runtime is None or "OCI runtime" not in str(exc):
                    raise
                # The engine has the runtime but it cannot start a sandbox here (a platform this
                # host lacks, a kernel runsc does not support): the machine's fault, not the model's.
                raise IsolationUnavailable(f"gVisor's runsc could not start the container: "
                                           f"{(exc.explanation or str(exc)).strip()[:400]}; check `runsc "
                                           "--platform=ptrace do /bin/true` on the engine's machine") from exc

    def runtime(self, isolation: str) -> str | None:
        """The engine runtime for an isolation, checked to be registered with the engine."""
        runtime = RUNTIMES[isolation]
        if runtime is not None and runtime not in (self.client.info().get("Runtimes") or {}):
            raise IsolationUnavailable(f"--isolation {isolation} needs gVisor's runsc registered with the Docker "
                                       f"engine as the runtime `{runtime}`, and it is not: {REGISTER_RUNSC}")
        return runtime

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
    """Follows the container's memory peak from its cgroup (falls back to the stats API)."""

    def __init__(self, client: docker.DockerClient, container_id: str, pid: int):
        super().__init__(daemon=True, name="memory-watcher")
        self.client, self.container_id = client, container_id
        self.peak = 0
        self._stop_event = threading.Event()
        self._file = _cgroup_memory_file(pid)

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(0.2 if self._file else 1.0)

    def sample(self) -> None:
        value = None
        if self._file is not None:
            try:
                value = int(self._file.read_text().strip())
            except (OSError, ValueError):
                self._file = None
        if value is None:
            try:
                stats = self.client.api.stats(self.container_id, stream=False, one_shot=True)
                memory = stats.get("memory_stats") or {}
                value = memory.get("max_usage") or memory.get("usage")
            except (docker.errors.DockerException, requests.exceptions.RequestException):
                value = None
        if value:
            self.peak = max(self.peak, int(value))

    def stop(self) -> None:
        self._stop_event.set()


def _cgroup_memory_file(pid: int) -> Path | None:
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            candidate = Path("/sys/fs/cgroup/memory") / path.lstrip("/") / "memory.max_usage_in_bytes"
            if candidate.exists():
                return candidate
        if controllers == "":
            for name in ("memory.peak", "memory.current"):
                candidate = Path("/sys/fs/cgroup") / path.lstrip("/") / name
                if candidate.exists():
                    return candidate
    return None


def _host_config(client: docker.DockerClient, spec: ContainerSpec, runtime: str | None = None) -> dict:
    limits = spec.limits
    if any(m.writable for m in spec.mounts):
        raise ValueError("a model run never gets a writable mount")
    cpu_seconds = int(limits.timeout_seconds * max(limits.cpus, 1)) + 120
    ulimits = [docker.types.Ulimit(name="nofile", soft=limits.open_files, hard=limits.open_files),
               docker.types.Ulimit(name="core", soft=0, hard=0),
               # A backstop should the host die: the kernel ends a runaway on its own.
               docker.types.Ulimit(name="cpu", soft=cpu_seconds, hard=cpu_seconds)]
    if runtime == RUNTIMES["gvisor"]:
        # The pids limit binds the sandbox's host processes, not the tasks of gVisor's kernel, which
        # enforces RLIMIT_NPROC itself; its count is the sandbox's own (under runc it would be every
        # container of the same uid on the host, so runc relies on the pids limit alone).
        ulimits.append(docker.types.Ulimit(name="nproc", soft=limits.pids, hard=limits.pids))
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
        ipc_mode="private",
        log_config=docker.types.LogConfig(type="json-file", config={"max-size": "10m", "max-file": "1"}),
        runtime=runtime,
    )


def choose_cpus(cpus: float) -> str | None:
    """ceil(cpus) of this machine's cores, picked at random so concurrent runs spread out."""
    import math
    import random

    available = sorted(os.sched_getaffinity(0))
    wanted = math.ceil(cpus)
    if wanted >= len(available):
        return None
    return ",".join(str(c) for c in sorted(random.sample(available, wanted)))


@contextlib.contextmanager
def container(client: docker.DockerClient, spec: ContainerSpec, runtime: str | None = None) -> Iterator[str]:
    """Create the container; always remove it afterwards (unless kept), whatever happens."""
    labels = labels_for("run", **spec.labels)
    if spec.keep:
        labels[f"{LABEL}.keep"] = "1"
    created = client.api.create_container(
        spec.image, command=spec.command, name=spec.name, user=spec.user,
        environment=spec.environment, labels=labels, working_dir="/tmp",
        network_disabled=True, host_config=_host_config(client, spec, runtime),
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
    watcher = MemoryWatcher(client, container_id, state.get("Pid") or 0)
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
    return outcome


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
