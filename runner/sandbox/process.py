"""The process sandbox: the harness as a child process of this host, where no container engine can be had.

Colab and Kaggle have no Docker engine, yet that is where Numerai's notebooks make their pickles.
Here the same harness runs with the same arguments and the same inputs as in a container, under
the Python of an environment holding Numerai's pins (runner.images.venv), confined as far as the
machine allows by the launcher (confine.py), which stays as the harness's init:

  CPU       pinned to its own core(s) (affinity, from the same host-wide allocator as containers)
  clock     the wall-clock timeout, then the whole process tree is killed
  memory    watched, not enforced by a cgroup: the memory of the whole process tree (its PSS: shared
            pages once), read every WATCH_SECONDS and kept as the container's curve is (every SAMPLE_SECONDS); the tree
            is killed once it is over the limit (the Outcome's oom_killed: "killed at the watched limit")
  files     RLIMIT_NOFILE; processes: RLIMIT_NPROC (root is exempt from it: then not enforced)
  network   a new network namespace, else a seccomp filter on socket families, else not isolated
            (said plainly in what `run` returns)

What it does not do, a container does: a read-only file system with only the inputs and an empty
/tmp, another user, dropped capabilities, a /tmp held in (and counted against) memory. Confinement
says, per run, what was enforced and what was not. The inputs are copies in a private folder (the
harness is told where with --input-dir, and logs them as /input/... as in a container), so nothing
the model does to them reaches the user's files; the folder is removed afterwards.

The public surface is `run` (one sandbox, start to facts) and `probe` (what this machine allows);
both return facts, never verdicts.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import psutil

from ..support.paths import TEMP_PREFIX
from ..support.units import human_bytes
from . import cpus
from .backend import Limits, MemorySamples, Mount, Outcome, StreamSink
from .confine import NETWORK_METHODS

WATCH_SECONDS = 0.1  # how often the tree's memory is compared with the limit
SAMPLE_SECONDS = 0.2  # how often it is kept in the curve, and the tree looked for new processes
LAUNCH_SECONDS = 30.0  # the launcher reports how it confined itself within this time, or the sandbox failed
KILL_GRACE_SECONDS = 10.0
INPUT = "/input"  # where a container has its inputs; here a private folder stands for it
TMP = "/tmp"  # the container's /tmp; here a private folder on disk
CONFINE = Path(__file__).with_name("confine.py")
HARNESS = Path(__file__).with_name("harness.py")
NOT_ISOLATED = "network not isolated"


class SandboxFailed(Exception):
    """The process sandbox could not be set up on this machine: never the model's fault."""


@dataclass(frozen=True)
class Confinement:
    """What the process sandbox enforced on one run, and what it could not."""

    network: str  # "namespace", "seccomp", or "none"
    network_detail: str
    cores: tuple[int, ...]
    rlimits: dict[str, list[int]]
    memory_bytes: int
    timeout_seconds: float
    user: str  # who the model runs as (the user running numerai-sandbox)

    @property
    def network_isolated(self) -> bool:
        return self.network != "none"

    def enforced(self) -> dict[str, str]:
        """{aspect: how it is enforced}: what holds however the model behaves."""
        out = {"cpu": f"pinned to core {', '.join(map(str, self.cores))} (CPU affinity)",
               "memory": f"watched, not enforced by a cgroup: the process tree is killed once its memory (PSS) "
                         f"is over {human_bytes(self.memory_bytes)} (read every {WATCH_SECONDS:g} s)"}
        if math.isfinite(self.timeout_seconds):
            out["time"] = f"the process tree is killed at {self.timeout_seconds:g} s"
        if "NOFILE" in self.rlimits:
            out["open_files"] = f"at most {self.rlimits['NOFILE'][0]} (RLIMIT_NOFILE)"
        if "NPROC" in self.rlimits:
            out["processes"] = (f"at most {self.rlimits['NPROC'][0]} processes and threads of user {self.user} in all "
                                "(RLIMIT_NPROC)")
        if self.network_isolated:
            out["network"] = self.network_detail
        return out

    def not_enforced(self) -> dict[str, str]:
        """{aspect: what a container would do that this sandbox does not}."""
        out = {"filesystem": f"the model runs as {self.user} and can read and write what that user can; a container "
                             "shows it its inputs, read-only, and an empty /tmp",
               "tmp": "its /tmp is a private folder on disk, not a tmpfs counted against the memory limit",
               "memory": "memory is read, not capped: between two readings the tree can go over the limit, and the "
                         "kernel's page cache is not counted as a container's cgroup counts it",
               "cpu": "a model can widen its own CPU affinity; a container's cpuset it cannot"}
        if "NPROC" not in self.rlimits:
            out["processes"] = f"not limited: {self.user} is exempt from RLIMIT_NPROC"
        if self.user == "root":
            out["privileges"] = "the model runs as root, with root's capabilities (a container drops them all)"
        if not self.network_isolated:
            out["network"] = f"{NOT_ISOLATED}: {self.network_detail}"
        return out

    def to_dict(self) -> dict:
        return {"backend": "process", "network": self.network, "network_detail": self.network_detail,
                "network_isolated": self.network_isolated, "cores": list(self.cores), "rlimits": self.rlimits,
                "user": self.user, "enforced": self.enforced(), "not_enforced": self.not_enforced()}


@dataclass
class ProcessRun:
    """One run's facts: what the host saw (the container's vocabulary), and how the process was confined."""

    outcome: Outcome
    confinement: Confinement


def user_name() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())


def rlimits(limits: Limits) -> dict[str, list[int]]:
    """The launcher's resource limits for `limits`: open files, processes (where they bind), CPU seconds as
    a backstop to the wall clock (as the container's), no core dumps."""
    import resource

    def capped(name: str, wanted: int) -> list[int]:
        soft, hard = resource.getrlimit(getattr(resource, f"RLIMIT_{name}"))
        value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        return [value, value]

    out = {"NOFILE": capped("NOFILE", limits.open_files), "CORE": [0, 0]}
    if math.isfinite(limits.timeout_seconds):
        out["CPU"] = capped("CPU", int(limits.timeout_seconds * max(limits.cpus, 1)) + 120)
    if os.geteuid() != 0:
        # RLIMIT_NPROC counts every task of the user, not of the sandbox: allow what they run already.
        out["NPROC"] = capped("NPROC", user_tasks(os.getuid()) + limits.pids)
    return out


def user_tasks(uid: int) -> int:
    """How many processes and threads `uid` runs now (what RLIMIT_NPROC counts)."""
    total = 0
    for proc in psutil.process_iter(["uids", "num_threads"]):
        uids, threads = proc.info.get("uids"), proc.info.get("num_threads")
        if uids is not None and uids.real == uid:
            total += threads or 1
    return total


def launch_command(python: Path, config: dict, program: list[str]) -> list[str]:
    return [str(python), "-I", "-S", str(CONFINE), json.dumps(config), "--", *program]


def private_inputs(mounts: Sequence[Mount], inputs: Path) -> None:
    """Copy each input where the harness will read it (INPUT/x is read from inputs/x), read-only: what the
    model does to its copy never reaches the user's file."""
    for mount in mounts:
        if mount.writable:
            raise ValueError("a model run never gets a writable mount")
        if not mount.target.startswith(INPUT + "/"):
            raise ValueError(f"the process sandbox has only {INPUT}/ to put inputs in, not {mount.target}")
        target = inputs / mount.target[len(INPUT) + 1:]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mount.source, target)
        target.chmod(0o444)


def child_environment(python: Path, environment: dict[str, str], tmp: Path) -> dict[str, str]:
    """The container's environment, with its /tmp standing for the private folder; nothing of ours (no API
    keys, no PYTHONPATH) is passed on."""
    env = {"PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": str(tmp),
           "TMPDIR": str(tmp)}
    for name, value in environment.items():
        if value == TMP or value.startswith(TMP + "/"):
            value = str(tmp) + value[len(TMP):]
        env[name] = value
    return env


def read_report(fd: int, proc: subprocess.Popen, timeout: float = LAUNCH_SECONDS) -> dict:
    """The launcher's one-line JSON report, or SandboxFailed (it died, hung, or could not confine)."""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise SandboxFailed(f"the process sandbox's launcher did not report within {timeout:g} s")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    try:
        report = json.loads(data.decode() or "null")
    except ValueError:
        report = None
    if not isinstance(report, dict):
        proc.wait(timeout=KILL_GRACE_SECONDS)
        raise SandboxFailed(f"the process sandbox's launcher ended ({proc.returncode}) without a report")
    if "error" in report:
        raise SandboxFailed(f"the process sandbox could not confine the model: {report['error']}")
    return report


def confinement_of(report: dict, limits: Limits) -> Confinement:
    return Confinement(network=report.get("network", "none"), network_detail=report.get("detail", ""),
                       cores=tuple(report.get("cores", ())), rlimits=report.get("rlimits", {}),
                       memory_bytes=limits.memory_bytes, timeout_seconds=limits.timeout_seconds, user=user_name())


class TreeWatcher(threading.Thread):
    """Watches the memory (in_use) of every process below the launcher (the launcher itself, our init,
    is not counted, as docker-init hardly is), and says when it is over the limit.

    The tree is looked up every SAMPLE_SECONDS; the memory of the processes found is read every
    WATCH_SECONDS; a reading is kept in `samples` every SAMPLE_SECONDS (the container's curve)."""

    def __init__(self, launcher: psutil.Process, limit: int, origin: float):
        super().__init__(daemon=True, name="process-memory-watcher")
        self.launcher, self.limit, self.origin = launcher, limit, origin
        self.samples = MemorySamples()
        self.peak = 0
        self.over = threading.Event()
        self._stop_event = threading.Event()

    def run(self) -> None:
        members: list[psutil.Process] = []
        next_sample = 0.0
        while not self._stop_event.is_set():
            now = time.monotonic()
            sampling = now >= next_sample
            if sampling:
                members = tree(self.launcher)
                next_sample = now + SAMPLE_SECONDS
            used = in_use(members)
            self.peak = max(self.peak, used)
            if sampling and used:
                self.samples.add(now - self.origin, used)
            if used > self.limit:
                if not sampling:
                    self.samples.add(now - self.origin, used)
                self.over.set()
                return
            self._stop_event.wait(WATCH_SECONDS)

    def stop(self) -> None:
        self._stop_event.set()


def tree(root: psutil.Process) -> list[psutil.Process]:
    """The processes below `root` (not itself); [] once it is gone."""
    try:
        return root.children(recursive=True)
    except psutil.Error:
        return []


def in_use(processes: Sequence[psutil.Process]) -> int:
    """The memory these processes use together: the sum of their proportional set sizes (PSS), so a page
    they share (a forked worker's copy-on-write pages, a library) counts once, as a cgroup counts it; the
    resident set where the kernel gives no PSS. Processes gone meanwhile count nothing."""
    total = 0
    for proc in processes:
        try:
            with open(f"/proc/{proc.pid}/smaps_rollup", "rb") as handle:
                total += next(int(line.split()[1]) * 1024 for line in handle if line.startswith(b"Pss:"))
            continue
        except (OSError, StopIteration, ValueError):
            pass
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def kill_tree(root: psutil.Process, with_root: bool = True) -> bool:
    """Stop every process below `root`, looking again until no new one appears (a stopped process forks
    nothing, so a forking model cannot outrun this), then kill them all; `root` too unless not `with_root`
    (the launcher then reaps them and exits as docker-init would). Whether anything was killed."""
    stopped: dict[int, psutil.Process] = {}
    for _ in range(100):
        fresh = [proc for proc in tree(root) if proc.pid not in stopped]
        if not fresh:
            break
        for proc in fresh:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGSTOP)
            stopped[proc.pid] = proc
    for proc in [*stopped.values(), *([root] if with_root else [])]:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return bool(stopped) or with_root


def _pump(fd: int, deliver: Callable[[bytes], None]) -> None:
    try:
        while chunk := os.read(fd, 65536):
            deliver(chunk)
    except OSError:
        pass


def host_cores(cores: list[int]) -> list[int]:
    """The allocator's core numbers (0..n-1 over the cores this process may use) as CPU ids."""
    available = sorted(os.sched_getaffinity(0))
    return [available[i] for i in cores]


def run(python: Path, arguments: list[str], mounts: Sequence[Mount], limits: Limits, sink: StreamSink,
        on_started: Callable[[], None] = lambda: None, on_waiting: Callable[[], None] = lambda: None,
        environment: dict[str, str] | None = None, network: Sequence[str] = NETWORK_METHODS) -> ProcessRun:
    """Run the harness under `python` (an environment's interpreter) with `arguments`, its inputs `mounts`
    (container targets under /input), within `limits`, streaming its stdout (the framed report) and stderr
    (the model's log) to `sink`; return the facts once the whole tree is gone and its folder removed.

    `network` lists the ways to cut the network, tried in order (NETWORK_METHODS by default; () runs with
    the network as it is). `on_waiting` is called if the run must queue for a free core, `on_started` once
    the harness starts. Raises SandboxFailed when the sandbox cannot be set up (never the model's fault).
    """
    if not sys.platform.startswith("linux"):
        raise SandboxFailed("the process sandbox needs Linux (prctl, namespaces, /proc)")
    available = len(os.sched_getaffinity(0))
    with cpus.allocate(limits.cpus, available, on_wait=on_waiting,
                       cancelled=lambda: sink.abort_reason() is not None) as allocated:
        cores = host_cores(allocated)
        work = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}process-{os.getpid()}-"))  # swept if we die
        try:
            return _run_in(work, python, arguments, mounts, limits, sink, on_started,
                           environment or {}, network, cores)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _run_in(work: Path, python: Path, arguments: list[str], mounts: Sequence[Mount], limits: Limits,
            sink: StreamSink, on_started: Callable[[], None], environment: dict[str, str],
            network: Sequence[str], cores: list[int]) -> ProcessRun:
    inputs, tmp = work / "input", work / "tmp"
    tmp.mkdir()
    private_inputs(mounts, inputs)
    harness = [str(python), "-I", "-u", "-B", str(HARNESS), "--input-dir", str(inputs), *arguments]
    started_at, started = time.time(), time.monotonic()
    proc, report = launch(python, harness, limits, network, cores, tmp, child_environment(python, environment, tmp))
    launcher = psutil.Process(proc.pid)
    confinement = confinement_of(report, limits)
    outcome = Outcome(container=f"process-{proc.pid}", started_at=started_at, cores=cores)
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    pumps = [threading.Thread(target=_pump, args=(stream.fileno(), deliver), daemon=True, name=f"process-{name}")
             for name, stream, deliver in (("stdout", proc.stdout, sink.stdout), ("stderr", proc.stderr, sink.stderr))]
    for pump in pumps:
        pump.start()
    watcher = TreeWatcher(launcher, limits.memory_bytes, started)
    killed = False
    try:
        on_started()
        watcher.start()
        sink.watch_memory(watcher.samples)
        deadline = started + limits.timeout_seconds
        while proc.poll() is None:
            abort = sink.abort_reason()
            if abort or watcher.over.is_set() or time.monotonic() >= deadline:
                # The launcher reaps what is killed and exits as docker-init would (128+9); if it does
                # not within the grace period (a model may have stopped it), it is killed too.
                killed = kill_tree(launcher, with_root=False)
                outcome.aborted = abort
                outcome.oom_killed = abort is None and watcher.over.is_set()
                outcome.timed_out = abort is None and not outcome.oom_killed
                try:
                    proc.wait(timeout=KILL_GRACE_SECONDS)
                except subprocess.TimeoutExpired:
                    kill_tree(launcher)
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.1)
        proc.wait()
    except BaseException:
        kill_tree(launcher)  # an interrupted host leaves nothing of the model running
        proc.wait()
        raise
    finally:
        outcome.run_seconds = time.monotonic() - started
        watcher.stop()
        with contextlib.suppress(OSError):
            proc.stdin.close()
        for pump in pumps:
            pump.join(timeout=KILL_GRACE_SECONDS)
        for stream in (proc.stdout, proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()
    code = proc.returncode
    outcome.exit_code = 128 + signal.SIGKILL if killed else (128 - code if code < 0 else code)
    outcome.ended_at = started_at + outcome.run_seconds
    outcome.peak_memory_bytes = watcher.peak or None
    outcome.memory_samples = watcher.samples.points()
    return ProcessRun(outcome, confinement)


def launch(python: Path, program: list[str], limits: Limits, network: Sequence[str], cores: list[int],
           cwd: Path | None, env: dict[str, str]) -> tuple[subprocess.Popen, dict]:
    """Start the launcher with `program` below it; (the process, its report) once it has confined itself.
    SandboxFailed, with nothing left running, when it cannot."""
    report_read, report_write = os.pipe()
    config = {"cores": cores, "network": list(network), "rlimits": rlimits(limits), "report_fd": report_write,
              "host_pid": os.getpid()}
    try:
        proc = subprocess.Popen(launch_command(python, config, program), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(report_write,),
                                cwd=cwd, env=env, start_new_session=True)
    except OSError as exc:
        os.close(report_read)
        raise SandboxFailed(f"cannot start {python}: {exc}") from exc
    finally:
        os.close(report_write)
    try:
        return proc, read_report(report_read, proc)
    except BaseException as exc:
        with contextlib.suppress(psutil.Error):
            kill_tree(psutil.Process(proc.pid))
        _, said = proc.communicate()
        said = said.decode("utf-8", "replace").strip()[-2000:]
        if isinstance(exc, SandboxFailed) and said:
            raise SandboxFailed(f"{exc}: {said}") from None
        raise
    finally:
        os.close(report_read)


def probe(python: Path, limits: Limits | None = None, network: Sequence[str] = NETWORK_METHODS) -> Confinement:
    """What the process sandbox can enforce on this machine with `python`, found by confining a process that
    does nothing (about 0.1 s). Raises SandboxFailed when it cannot run at all."""
    limits = limits or Limits()
    proc, report = launch(python, [str(python), "-I", "-S", "-c", ""], limits, network, [], None,
                          {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    try:
        proc.communicate(timeout=KILL_GRACE_SECONDS)
    finally:
        if proc.poll() is None:
            kill_tree(psutil.Process(proc.pid))
            proc.wait()
    return confinement_of(report, limits)


def describe(confinement: Confinement) -> str:
    """The verdict line's words for this sandbox."""
    words = "process sandbox (weaker than Numerai's container)"
    return words if confinement.network_isolated else f"{words}, {NOT_ISOLATED}"
