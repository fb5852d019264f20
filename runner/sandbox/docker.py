"""Sandboxes as containers of the local Docker engine: limits, isolation, the wall clock, the facts.

One container per run, created with the limits Numerai applies (memory with swap
off, CPUs, no network) and isolation that cannot be turned off (read-only root,
non-root user, no capabilities, no new privileges, a pids limit, a capped /tmp).
The wall-clock limit is enforced here, on the host: the container is killed when
it runs out. Every container carries our labels and the identity of the process
that owns it, so a later start can sweep away what a killed runner left behind
(runner/sandbox/leftovers.py). Reaching the engine is runner/sandbox/engine.py's.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

import docker
import docker.errors
import requests

from ..support.machine import PLATFORM, local_cores
from ..support.paths import LABEL
from . import cpus, pool
from . import idle
from .backend import (NO_IMAGE, NOT_STARTED, Backend, ContainerSpec, IsolationUnavailable, Limits, Outcome,
                      PlatformFailure, SandboxUnavailable, StreamSink)
from .cgroup import MemoryWatcher
from .engine import ENGINE_ERRORS, KILL_GRACE_SECONDS, connect, failure_of, kill, remove
from .leftovers import sweep
from .ownership import labels_for

# The engine runtime for each isolation (None: the engine's default, runc).
RUNTIMES = {"runc": None, "gvisor": "runsc"}
REGISTER_RUNSC = ("register it with `sudo make gvisor` in a numerai-sandbox checkout (scripts/register-runsc.sh: "
                  "it installs Debian's runsc and reloads dockerd with SIGHUP, which keeps running containers), "
                  "or by hand: `apt-get install runsc`, add \"runtimes\": {\"runsc\": {\"path\": \"/usr/bin/runsc\", "
                  "\"runtimeArgs\": [\"--platform=ptrace\", \"--network=none\"]}} to /etc/docker/daemon.json, "
                  "then `kill -HUP $(cat /var/run/docker.pid)`")


class DockerBackend(Backend):
    """Sandboxes as containers of the local Docker engine."""

    name = "docker"

    def __init__(self, client: docker.DockerClient):
        self.client = client
        self._cores: int | None = None

    @classmethod
    def connect(cls) -> "DockerBackend":
        """The engine for a run, after sweeping away what runners killed outright left behind."""
        client = connect()
        sweep(client)
        return cls(client)

    def run(self, spec: ContainerSpec, sink: StreamSink, on_started: Callable[[], None] = lambda: None,
            on_created: Callable[[str], None] = lambda container_id: None,
            on_waiting: Callable[[], None] = lambda: None) -> Outcome:
        """One sandbox on cores of its own (waiting for free ones when every core is taken)."""
        runtime = self.runtime(spec.limits.isolation)
        with cpus.allocate(spec.limits.cpus, self.cores(), on_wait=on_waiting,
                           cancelled=lambda: sink.abort_reason() is not None) as cores:
            claimed = pool.claim(self.client, spec, spec.preload) if pool.serves(spec) else None
            if claimed is not None:
                return self._serve(claimed, spec, sink, on_started, on_created, cores, runtime)
            return self._cold(spec, sink, on_started, on_created, cores, runtime)

    def _cold(self, spec: ContainerSpec, sink: StreamSink, on_started, on_created, cores, runtime) -> Outcome:
        with container(self.client, spec, cores, runtime) as container_id:
            on_created(container_id)
            outcome = run(self.client, container_id, spec.limits, sink, on_started, runtime)
            outcome.cores = cores
            return outcome

    def _serve(self, claimed, spec: ContainerSpec, sink: StreamSink, on_started, on_created, cores,
               runtime) -> Outcome:
        """One model in a pre-started sandbox: its cores and full CPU weight, the pickle, go; then it goes.

        A sandbox that does not acknowledge the pickle within pool.ACK_SECONDS is discarded and the
        model runs cold instead: a broken pre-started sandbox can cost time, never change a verdict."""
        watch = pool.Acknowledged(sink)
        try:
            on_created(claimed.container_id)
            model = next(m.source for m in spec.mounts if m.target == pool.MODEL_TARGET)
            pool.hand_over(claimed, model)
            self.client.api.update_container(claimed.container_id, cpuset_cpus=",".join(map(str, cores)),
                                             cpu_shares=1024)
            go = pool.go_line("--debug" in spec.command, spec.limits.max_output_bytes)
            outcome = follow(self.client, claimed.container_id, spec.limits, watch, on_started,
                             begin=lambda lifeline: (send(lifeline, go), watch.sent()), prestarted=True)
            outcome.cores, outcome.prestarted = cores, True
        finally:
            pool.release(self.client, claimed)
        if outcome.aborted != pool.UNRESPONSIVE:
            return outcome
        return self._cold(spec, sink, lambda: None, on_created, cores, runtime)  # the cold run it should have been

    def discard_prestarted(self, name: str) -> None:
        """Remove a pre-started sandbox no run took (a name that was claimed, and renamed, is left alone)."""
        with contextlib.suppress(*ENGINE_ERRORS):
            info = self.client.api.inspect_container(name)
            if info.get("Name", "").lstrip("/") == name:
                remove(self.client, info["Id"])
                slot = (info.get("Config", {}).get("Labels") or {}).get(f"{LABEL}.slot")
                if slot and Path(slot).parent == pool.slot_root():
                    shutil.rmtree(slot, ignore_errors=True)

    def prestart(self, spec: ContainerSpec) -> str | None:
        """Start a pre-started sandbox for a run about to come in this process (check's): owned by this
        process, so no other claims it and it goes with it. Its name (None when pooling is off); returns at
        once: it prepares on its own, at the lowest CPU weight and on no fixed core."""
        if not pool.serves(spec):
            return None
        return self._start_prestarted(spec, owned=True)[0]

    def leave_for_next(self, spec: ContainerSpec, estimate: int) -> "LeaveForNext | None":
        """Start leaving a pre-started sandbox for the user's next run of `spec`, in the background, where pooling
        serves it (the handle's `join` waits for it, its `note` says what was left)."""
        if not pool.serves(spec):
            return None
        leaving = LeaveForNext(spec, estimate)
        leaving.start()
        return leaving

    def leave_prestarted(self, spec: ContainerSpec, estimate: int) -> pool.Left | None:
        """Leave a pre-started sandbox for the user's next run of the same spec, within the bound (see
        pool.leave); None when pooling is off, one waits already, or it cannot fit the bound."""
        if not pool.serves(spec):
            return None
        return pool.leave(self.client, spec, estimate,
                          lambda spec, estimate: self._start_prestarted(spec, owned=False, estimate=estimate))

    def _start_prestarted(self, spec: ContainerSpec, owned: bool, estimate: int = 0) -> tuple[str, float]:
        """Create and start one pre-started sandbox: (its name, when it gives up idle)."""
        name, slot = pool.new_slot()
        warm, command, labels = pool.prepared(spec, spec.preload, slot, name, owned=owned, estimate=estimate)
        try:
            created = self.client.api.create_container(
                spec.image, command=command, name=name, user=spec.user, environment=spec.environment,
                labels=labels, working_dir="/tmp", network_disabled=True, stdin_open=True, detach=True,
                host_config=host_config(self.client, warm, cores=None, cpu_shares=pool.IDLE_SHARES,
                                        runtime=self.runtime(spec.limits.isolation)))
            self.client.api.start(created["Id"])
        except BaseException:
            remove(self.client, name)
            shutil.rmtree(slot, ignore_errors=True)
            raise
        return name, float(labels[f"{LABEL}.idle_until"])

    def cores(self) -> int:
        """The engine's CPU count (a remote engine's or a VM's, not necessarily this host's)."""
        if self._cores is None:
            # A local engine runs where this process does (Docker Desktop's VM does not: no affinity to ask).
            local = os.environ.get("DOCKER_HOST", "unix://").startswith("unix://") and hasattr(os, "sched_getaffinity")
            self._cores = local_cores() if local else int((self.client.info() or {}).get("NCPU") or local_cores())
        return self._cores

    def interact(self, spec: ContainerSpec, arguments: list[str], terminal,
                 on_started: Callable[[], None] = lambda: None) -> Outcome:
        with container(self.client, spec, runtime=self.runtime(spec.limits.isolation)) as container_id:
            return interact(self.client, container_id, spec, arguments, terminal, on_started)

    def failure_of(self, exc: BaseException) -> PlatformFailure | None:
        return failure_of(exc)

    def make_room(self, needed: int) -> bool:
        """Idle pre-started sandboxes hold memory that is free for a run: they go first."""
        return bool(pool.make_room(self.client, needed))

    def runtime(self, isolation: str) -> str | None:
        """The engine runtime for an isolation, checked to be registered with the engine."""
        runtime = RUNTIMES[isolation]
        if runtime is not None and runtime not in (self.client.info().get("Runtimes") or {}):
            raise IsolationUnavailable(f"--isolation {isolation} needs gVisor's runsc registered with the Docker "
                                       f"engine as the runtime `{runtime}`, and it is not: {REGISTER_RUNSC}", "docker")
        return runtime

    def close(self) -> None:
        self.client.close()


class LeaveForNext(threading.Thread):
    """After `run`'s model ran: a pre-started sandbox for the user's next run in the same image, where one
    is likely (runner.sandbox.idle.should_leave) and within the bound (pool.leave); started while this
    run's predictions are validated, on its own engine connection (the run's closes meanwhile). `estimate`:
    what it will hold. `note` says which one it left; a faster next run is a bonus, never a reason to fail
    this one."""

    def __init__(self, spec: ContainerSpec, estimate: int):
        super().__init__(daemon=True, name="prestart")
        self.spec, self.estimate = spec, estimate
        self.note: str | None = None

    def run(self) -> None:
        try:
            if not self.wanted():
                return
            backend = DockerBackend(connect())  # no second sweep: the run's connection made one
            try:
                left = backend.leave_prestarted(self.spec, self.estimate)
                limit = pool.current_bound(backend.client)
            finally:
                backend.close()
        except Exception as exc:  # noqa: BLE001
            self.note = (f"no pre-started sandbox was left for the next run ({type(exc).__name__}: "
                         f"{str(exc).strip()[:200]})")
            return
        if left is not None and left.name is None:
            self.note = f"no pre-started sandbox was left for the next run: {left.refused}"
        elif left is not None and limit is not None:
            self.note = idle.left_note(left.name, left.estimate, left.idle_until, left.evicted, limit)

    def wanted(self) -> bool:
        """Whether a next run is likely: see idle.should_leave (this run is recorded for the next one's)."""
        mode = idle.setting()
        ci, terminal = idle.in_ci(), idle.has_terminal()
        asks = mode == "auto" and not ci and terminal
        recent = asks and idle.ran_recently(pool.recent_record(), pool.group_of(self.spec), pool.IDLE_SECONDS)
        return idle.should_leave(mode, idle.per_image(), ci, terminal, recent).leave


# ---------------------------------------------------------------- running one container

def engine_time(stamp: str | None) -> float | None:
    """The engine's RFC 3339 timestamp (nanoseconds, Z) as epoch seconds; None for its zero time."""
    try:
        when = datetime.fromisoformat((stamp or "").replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return when if when > 0 else None


def host_config(client: docker.DockerClient, spec: ContainerSpec, cores: list[int] | None,
                cpu_shares: int | None = None, runtime: str | None = None) -> dict:
    limits = spec.limits
    if any(m.writable for m in spec.mounts):
        raise ValueError("a model run never gets a writable mount")
    ulimits = [docker.types.Ulimit(name="nofile", soft=limits.open_files, hard=limits.open_files),
               docker.types.Ulimit(name="core", soft=0, hard=0)]
    if math.isfinite(limits.timeout_seconds):  # a shell without --timeout has no wall clock to back up
        # A backstop should the host die: the kernel ends a runaway on its own.
        cpu_seconds = int(limits.timeout_seconds * max(limits.cpus, 1)) + 120
        ulimits.append(docker.types.Ulimit(name="cpu", soft=cpu_seconds, hard=cpu_seconds))
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
        cpuset_cpus=",".join(map(str, cores)) if cores else None,
        cpu_shares=cpu_shares,
        pids_limit=limits.pids,
        read_only=True,
        tmpfs={"/tmp": f"rw,nosuid,nodev,size={limits.tmp_bytes},mode=1777"},
        cap_drop=["ALL"],
        security_opt=["no-new-privileges"],
        ulimits=ulimits,
        init=True,
        auto_remove=spec.remove_on_exit,
        ipc_mode="private",
        # The output reaches us through the attachment; the engine keeps a copy only of a container the
        # user keeps (for `docker logs`). Writing every frame to a JSON log file as well slows the model's
        # output and fills the engine's disk.
        log_config=(docker.types.LogConfig(type="json-file", config={"max-size": "10m", "max-file": "1"})
                    if spec.keep else docker.types.LogConfig(type="none")),
        runtime=runtime,
    )


@contextlib.contextmanager
def container(client: docker.DockerClient, spec: ContainerSpec, cores: list[int] | None = None,
              runtime: str | None = None) -> Iterator[str]:
    """Create the container on these cores; always remove it afterwards (unless kept), whatever happens."""
    labels = labels_for("run", **spec.labels)
    if spec.keep:
        labels[f"{LABEL}.keep"] = "1"
    try:
        created = create(client, spec, labels, cores, runtime)
    except docker.errors.ImageNotFound as exc:
        raise SandboxUnavailable(f"The image disappeared from Docker: {exc}", "docker", NO_IMAGE) from exc
    container_id = created["Id"]
    try:
        yield container_id
    finally:
        if not spec.keep:
            remove(client, container_id)


def create(client: docker.DockerClient, spec: ContainerSpec, labels: dict[str, str], cores: list[int] | None,
           runtime: str | None) -> dict:
    """The container of `spec`, created (not started), with our labels, limits and isolation."""
    return client.api.create_container(
        spec.image, command=spec.command, name=spec.name, user=spec.user,
        environment=spec.environment, labels=labels, working_dir="/tmp", platform=PLATFORM,
        network_disabled=True, host_config=host_config(client, spec, cores, runtime=runtime),
        stdin_open=True,  # with StdinOnce: stdin closes when our attachment does (see run)
    )


def run(client: docker.DockerClient, container_id: str, limits: Limits, sink: StreamSink,
        on_started: Callable[[], None] = lambda: None, runtime: str | None = None) -> Outcome:
    """Start the created container, stream its output, enforce the wall clock, and report facts."""
    def begin(lifeline) -> None:
        try:
            client.api.start(container_id)
        except docker.errors.APIError as exc:
            raise refused_start(exc, runtime) from exc

    return follow(client, container_id, limits, sink, on_started, begin=begin)


def refused_start(exc: docker.errors.APIError, runtime: str | None) -> SandboxUnavailable:
    """The engine would not start the container: not the model's fault, whatever it was."""
    said = (exc.explanation or str(exc)).strip()[:400]
    if runtime is not None and "OCI runtime" in str(exc):
        # The engine has the runtime but it cannot start a sandbox here (a platform this host lacks, a kernel
        # runsc does not support): the machine's fault, not the model's.
        return IsolationUnavailable(f"gVisor's runsc could not start the container: {said}; check `runsc "
                                    "--platform=ptrace do /bin/true` on the engine's machine", "docker")
    return SandboxUnavailable(f"the engine could not start the container: {said}", "docker", NOT_STARTED)


def send(lifeline, data: bytes) -> None:
    """Write to the container's stdin through our attachment."""
    sock = getattr(lifeline, "_sock", lifeline)
    sock.sendall(data)


def follow(client: docker.DockerClient, container_id: str, limits: Limits, sink: StreamSink,
           on_started: Callable[[], None], begin: Callable[[object], None], prestarted: bool = False) -> Outcome:
    """Begin the model (start a created container, or hand a pre-started one its pickle), stream its
    output, enforce the wall clock from that moment, and report facts.

    A `prestarted` container already runs: the clock starts when it is handed the pickle, and it
    gets a byte a second on its stdin, the heartbeat its harness needs to keep going.
    """
    outcome = Outcome(container=container_id)
    # We hold the container's stdin open for as long as we live: should this process be killed
    # outright, the harness sees end-of-file (or its heartbeats stop) and stops the model at once
    # instead of running on until the next start sweeps the container away.
    lifeline = client.api.attach_socket(container_id, params={"stdin": 1, "stream": 1})
    stream = client.api.attach(container_id, stdout=True, stderr=True, stream=True, demux=True)
    pump = threading.Thread(target=_pump, args=(stream, sink), daemon=True, name="output-pump")
    pump.start()
    begin(lifeline)
    started = time.monotonic()
    on_started()
    beats = threading.Event()
    if prestarted:
        threading.Thread(target=_heartbeat, args=(lifeline, beats), daemon=True, name="heartbeat").start()
    state = client.api.inspect_container(container_id)["State"]
    outcome.started_at = ((time.time() - (time.monotonic() - started)) if prestarted else
                          engine_time(state.get("StartedAt")) or time.time() - (time.monotonic() - started))
    watcher = MemoryWatcher(client, container_id, state.get("Pid") or 0, outcome.started_at)
    watcher.start()
    sink.watch_memory(watcher.samples)
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
        beats.set()
        with contextlib.suppress(OSError):
            lifeline.close()
    outcome.run_seconds = time.monotonic() - started
    pump.join(timeout=KILL_GRACE_SECONDS)
    state = client.api.inspect_container(container_id)["State"]
    outcome.exit_code = state.get("ExitCode")
    outcome.oom_killed = bool(state.get("OOMKilled"))
    if state.get("Error"):  # the engine's own failure to run it (the model's end is in the exit code)
        outcome.failure = PlatformFailure(NOT_STARTED, f"the container could not run: {state['Error']}", "docker")
    outcome.peak_memory_bytes = watcher.peak or None
    outcome.memory_samples = watcher.samples.points()
    outcome.ended_at = engine_time(state.get("FinishedAt")) or outcome.started_at + outcome.run_seconds
    return outcome


def _heartbeat(lifeline, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        try:
            send(lifeline, b".")
        except OSError:
            return


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


def _pump(stream, sink: StreamSink) -> None:
    try:
        for out, err in stream:
            if out:
                sink.stdout(out)
            if err:
                sink.stderr(err)
    except (requests.exceptions.RequestException, OSError, ValueError):
        pass  # the stream ends with the container; a broken stream ends it early


