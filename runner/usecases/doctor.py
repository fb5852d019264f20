"""`numerai-sandbox doctor`: whether this machine can run models the way Numerai does, and what to fix.

Each check gives a Finding at one of three levels: ok; warning (runs work, but something
is worth knowing or doing); problem (runs fail, or would not be judged as Numerai judges
them). Every finding that is not ok says how to fix it in one line. A check never raises:
an engine that refuses, or a cache that cannot be read, is a finding like any other, and
the checks that do not need the engine still run without it. Nothing is changed: doctor
builds, fetches, removes and restarts nothing.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..images.pins import DEFAULT_PYTHON, SUPPORTED_PYTHONS
from ..support.paths import LABEL, cache_dir
from ..sandbox.backend import Limits
from ..support.units import human_bytes

OK, WARNING, PROBLEM = "ok", "warning", "problem"
LOCAL_ENGINE = "unix:///var/run/docker.sock"
DISK_PROBLEM = 3 * 1024**3  # a standard image build needs about this much (wheels, layers, the image)
DISK_WARNING = 15 * 1024**3  # the full profile: 4.5 GB of wheels and a 10 GB image
AFTER_ENGINE = "once the engine answers (see its finding), run doctor again"
GVISOR_FIX = ("`make gvisor` (from a numerai-sandbox checkout) installs Debian's runsc, registers it with the "
              "engine and reloads dockerd with SIGHUP; running containers are not touched")


@dataclass
class Finding:
    check: str  # "engine", "image 3.11", "cache 3.11", "disk", ...
    level: str  # OK, WARNING or PROBLEM
    summary: str
    fix: str | None = None
    details: dict = field(default_factory=dict)


@dataclass
class Checkup:
    findings: list[Finding]

    def count(self, level: str) -> int:
        return sum(f.level == level for f in self.findings)

    @property
    def exit_code(self) -> int:
        """0 when nothing is a problem (warnings allowed), 1 otherwise."""
        return 1 if self.count(PROBLEM) else 0

    def to_dict(self) -> dict:
        return {"exit_code": self.exit_code, "problems": self.count(PROBLEM), "warnings": self.count(WARNING),
                "findings": [asdict(f) for f in self.findings]}


@dataclass
class Engine:
    """What the engine said, once, for every check that needs it; `client` is None when it did not answer."""

    where: str
    client: object | None = None
    error: str | None = None
    info: dict = field(default_factory=dict)
    version: dict = field(default_factory=dict)
    idle: list = field(default_factory=list)  # this user's idle pre-started sandboxes (runner.sandbox.idle.Idle)
    others_idle: int = 0  # those of other users or caches

    @property
    def local(self) -> bool:
        return self.where.startswith("unix://")


def checkup(required: tuple[str, ...] = (DEFAULT_PYTHON,), limits: Limits = Limits()) -> Checkup:
    """Every check, in the order a person reads them. `required`: the Pythons whose image must be usable
    (a problem otherwise); the other supported Pythons' images only warn."""
    engine = reach_engine()
    findings: list[Finding] = []
    try:
        checks: list[tuple[str, Callable[[], list[Finding | None]]]] = [
            ("engine", lambda: engine_findings(engine)),
            ("limits", lambda: limit_findings(engine)),
            ("images", lambda: image_findings(engine, required)),
            ("cache", lambda: [cache_finding()]),
            ("disk", lambda: disk_findings(engine)),
            ("memory and cpus", lambda: machine_findings(engine, limits)),
            ("gvisor", lambda: [gvisor_finding(engine)]),
            ("process", lambda: [process_finding()]),
            ("containers", lambda: [container_finding(engine)]),
            ("pre-started", lambda: [prestarted_finding(engine)]),
        ]
        for name, check in checks:
            findings += guarded(name, check)
    finally:
        if engine.client is not None:
            engine.client.close()
    return Checkup(findings)


def guarded(name: str, check: Callable[[], list[Finding | None]]) -> list[Finding]:
    """A check that fails unexpectedly is a finding too, never a traceback."""
    from ..sandbox.engine import ENGINE_ERRORS, lost_engine

    try:
        return [f for f in check() if f is not None]
    except Exception as exc:  # noqa: BLE001 - doctor reports; it does not crash
        if isinstance(exc, ENGINE_ERRORS) and lost_engine(exc):
            return [Finding("engine", PROBLEM, f"the engine stopped answering during the checks ({short(exc)})",
                            "check that dockerd is running and answers `docker version`")]
        return [Finding(name, WARNING, f"the {name} check could not finish: {type(exc).__name__}: {short(exc)}",
                        "this is a bug in numerai-sandbox doctor; the other checks stand")]


def short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


# ---------------------------------------------------------------- the engine

def reach_engine() -> Engine:
    from ..sandbox import engine as engine_api

    engine = Engine(where=os.environ.get("DOCKER_HOST") or LOCAL_ENGINE)
    try:
        engine.client = engine_api.connect()
        engine.info = engine.client.info() or {}
        engine.version = engine.client.version() or {}
        from ..sandbox import pool

        engine.idle = pool.idle_sandboxes(engine.client)
        engine.others_idle = pool.others_waiting(engine.client)
    except engine_api.EngineUnavailable as exc:
        engine.error = str(exc)
    except engine_api.ENGINE_ERRORS as exc:
        engine.error = f"the Docker engine at {engine.where} answered but then failed ({short(exc)})"
        if engine.client is not None:
            engine.client.close()
        engine.client = None
    return engine


def engine_findings(engine: Engine) -> list[Finding]:
    if engine.client is None:
        return [Finding("engine", PROBLEM, engine.error or f"cannot reach the Docker engine at {engine.where}",
                        engine_fix(engine), {"docker_host": engine.where})]
    info, version = engine.info, engine.version
    details = {"docker_host": engine.where, "version": version.get("Version"), "api": version.get("ApiVersion"),
               "storage_driver": info.get("Driver"), "cgroup_version": info.get("CgroupVersion"),
               "cgroup_driver": info.get("CgroupDriver"), "os": info.get("OSType"),
               "architecture": info.get("Architecture"), "root_dir": info.get("DockerRootDir"),
               "default_runtime": info.get("DefaultRuntime"), "local": engine.local}
    summary = (f"Docker {version.get('Version', '?')} (API {version.get('ApiVersion', '?')}) at {engine.where} · "
               f"{info.get('Driver', '?')} storage · cgroup v{info.get('CgroupVersion', '?')} "
               f"({info.get('CgroupDriver', '?')}) · {info.get('OSType', '?')}/{info.get('Architecture', '?')}")
    findings = [Finding("engine", OK, summary, None, details)]
    if not engine.local:
        findings.append(Finding(
            "engine", WARNING, f"a remote engine ({engine.where}): runs bind-mount the model and the data by their "
            "paths on this machine, which that engine only sees if it shares the filesystem; disk, memory and CPUs "
            "below are the engine's where it says them", "use a local engine (unset DOCKER_HOST), or run "
            "numerai-sandbox on the engine's machine"))
    if info.get("Architecture") not in (None, "x86_64", "amd64"):
        findings.append(Finding(
            "engine", WARNING, f"the engine runs on {info['Architecture']}; Numerai runs linux/amd64: library "
            "builds and timings differ", "for verdicts that match Numerai's to the letter, use an x86_64 machine"))
    if info.get("Driver") == "vfs":
        findings.append(Finding(
            "engine", WARNING, "the vfs storage driver copies every layer: builds are slow and images take "
            "several times their size on disk", "configure overlay2 (\"storage-driver\" in /etc/docker/daemon.json)"))
    if info.get("DefaultRuntime") not in (None, "runc"):
        findings.append(Finding(
            "engine", WARNING, f"the engine's default runtime is {info['DefaultRuntime']}, not runc: runs are "
            "isolated by it, which may change timings and what a model can do", "set \"default-runtime\": "
            "\"runc\" in /etc/docker/daemon.json unless you mean it"))
    return findings


def engine_fix(engine: Engine) -> str:
    error = (engine.error or "").lower()
    if "permission denied" in error:
        return ("use an account that may use the engine (in the docker group: `usermod -aG docker $USER`, then log "
                "in again) or run as root")
    if engine.local and ("no such file" in error or "connection refused" in error):
        return ("start the engine: `systemctl start docker` (or `dockerd &`; `make engine` in a checkout does it), "
                "or point DOCKER_HOST at a running one")
    return f"check that DOCKER_HOST ({engine.where}) names a running engine and that `docker version` answers"


def limit_findings(engine: Engine) -> list[Finding]:
    """Whether the engine can enforce Numerai's limits: memory with swap off, the CPU quota, pids."""
    if engine.client is None:
        return [Finding("limits", WARNING, "not checked: the engine is unreachable", AFTER_ENGINE)]
    info = engine.info
    findings = []
    if info.get("MemoryLimit") is False:
        findings.append(Finding(
            "limits", PROBLEM, "the engine cannot limit memory: a model using more than Numerai's 4 GB would not "
            "be stopped (Numerai ends it out_of_memory)", "enable the memory cgroup (kernel parameter "
            "cgroup_enable=memory) and restart the engine"))
    swap = _host_swap() if engine.local else None
    if info.get("SwapLimit") is False and swap:
        findings.append(Finding(
            "limits", WARNING, f"the engine cannot turn swap off for containers and this machine has "
            f"{human_bytes(swap)} of swap: a model over its memory limit may swap instead of being killed",
            "boot with swapaccount=1 (cgroup v1) or use cgroup v2, or turn swap off (`swapoff -a`)"))
    if info.get("CpuCfsQuota") is False:
        findings.append(Finding(
            "limits", WARNING, "the engine cannot enforce a CPU quota: models get more than Numerai's 1 CPU, so "
            "timings are faster than Numerai's", "use a kernel with CFS bandwidth control (CONFIG_CFS_BANDWIDTH)"))
    if info.get("PidsLimit") is False:
        findings.append(Finding(
            "limits", WARNING, "the engine cannot limit processes: a fork bomb in a pickle is not contained",
            "use a kernel with the pids cgroup"))
    if not findings:
        swap_note = "swap off" if info.get("SwapLimit") is not False else "no swap on this machine"
        findings.append(Finding("limits", OK, f"the engine enforces the memory limit ({swap_note}), the CPU quota "
                                "and cpuset, and the pids limit"))
    return findings


def _host_swap() -> int:
    import psutil

    return int(psutil.swap_memory().total)


# ---------------------------------------------------------------- images and the cache

def image_findings(engine: Engine, required: tuple[str, ...]) -> list[Finding]:
    """Per supported Python: the image (present, current, stale) and what the cache holds to rebuild it offline."""
    from ..images import store
    from ..images.pins import PinError, pin_set

    ours = store.list_images(engine.client) if engine.client is not None else []
    findings = []
    for python in SUPPORTED_PYTHONS:
        try:
            pins = pin_set(python, "standard")
        except PinError as exc:
            findings.append(Finding(f"image {python}", PROBLEM, f"the pins of Python {python} cannot be read: {exc}",
                                    "reinstall numerai-sandbox"))
            continue
        cache = cache_state(engine, pins)
        findings.append(image_finding(engine, pins, python in required, cache, ours))
        findings.append(cache.finding)
    return findings


def commands(python: str) -> str:
    return (f"`numerai-sandbox images fetch --python {python}` (online, once), then "
            f"`numerai-sandbox images build --python {python}`")


def image_finding(engine: Engine, pins, required: bool, cache: "CacheState", ours: list) -> Finding:
    from ..images import store

    python, check = pins.python, f"image {pins.python}"
    missing_level = PROBLEM if required else WARNING
    if engine.client is None:  # the engine's problem already fails the checkup
        return Finding(check, WARNING, "not checked: the engine is unreachable" + (
            "; the cache can build it offline" if cache.buildable else "; the cache cannot build it either"),
            AFTER_ENGINE if cache.buildable else commands(python))
    image = store.find(engine.client, pins)
    stale = [i for i in ours if i.python == python and i.profile == pins.tag_profile and
             (image is None or i.id != image.id)]
    others = sorted({i.profile for i in ours if i.python == python and i.profile != pins.tag_profile})
    details = {"ref": store.runtime_tag(pins), "required": required, "stale": [i.ref for i in stale],
               "other_profiles": others, "offline_rebuild": cache.buildable}
    if image is not None:
        details.update(image.to_dict())
        described = (f"{image.ref} · Python {image.python_full} · {human_bytes(image.size)} · built "
                     f"{image.built.replace('T', ' ')[:16]} UTC" + (f" · also: {', '.join(others)}" if others else ""))
        if store.is_current(image, pins):
            return Finding(check, OK, described, None, details)
        return Finding(check, WARNING, described + ": built from another base than the cache now holds",
                       f"`numerai-sandbox images build --python {python}` rebuilds it offline (the next run does too)",
                       details)
    if stale:
        named = ", ".join(f"{i.ref} ({i.id.removeprefix('sha256:')[:12]})" for i in stale)
        what = f"stale: {named} was built by another numerai-sandbox (its harness or pins differ)"
    else:
        what = "not built"
    if cache.buildable:
        return Finding(check, WARNING, f"{what}; the first run that needs it builds it offline from the cache "
                       "(about a minute)", f"`numerai-sandbox images build --python {python}` builds it now, offline",
                       details)
    return Finding(check, missing_level, f"{what}, and the cache cannot build it ({cache.lacks}): runs of Python "
                   f"{python} pickles end Error/image_unavailable", commands(python), details)


@dataclass
class CacheState:
    buildable: bool
    lacks: str
    finding: Finding


def cache_state(engine: Engine, pins) -> CacheState:
    """Whether the cache holds what an offline build of this image needs: the base and every wheel."""
    from ..images import bases, wheelhouse

    python = pins.python
    base = bases.load(python)
    stock = wheelhouse.inventory(pins)
    lacks = []
    if base is None:
        lacks.append("no base")
    elif not _base_usable(engine, base):
        lacks.append(f"the base {base.description} is gone")
    if stock.missing:
        lacks.append("no wheels" if not stock.present else f"{len(stock.missing)} of {len(pins.all)} wheels missing")
    details = {"base": base.description if base else None, "wheels": len(stock.present),
               "wheels_missing": stock.missing, "wheel_dir": str(wheelhouse.wheel_dir(python))}
    check = f"cache {python}"
    if not lacks:
        finding = Finding(check, OK, f"base ({base.description}) and all {len(pins.all)} wheels: the image can be "
                          "rebuilt offline", None, details)
    else:
        finding = Finding(check, WARNING, f"{'; '.join(lacks)}: the image cannot be (re)built offline",
                          f"`numerai-sandbox images fetch --python {python}` while online", details)
    return CacheState(not lacks, ", ".join(lacks), finding)


def _base_usable(engine: Engine, base) -> bool:
    """A bootstrapped base needs its root filesystem (or its image); a registry base needs its image."""
    from ..images import bases

    if base.kind in ("debian", "local-python") and (bases.base_dir(base.python) / "rootfs.tar").exists():
        return True
    if engine.client is None:
        return base.kind not in ("debian", "local-python")  # cannot tell without the engine: assume it is there
    import docker.errors

    try:
        engine.client.images.get(base.image if base.kind in ("local-image", "pulled") else base.tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def cache_finding() -> Finding:
    """The cache directory: where it is, whether it is usable, and how much it holds."""
    root = cache_dir()
    fix_dir = "point NUMERAI_SANDBOX_CACHE at a writable directory (or unset it for ~/.cache/numerai-sandbox)"
    if root.exists() and not root.is_dir():
        return Finding("cache", PROBLEM, f"{root} is not a directory", fix_dir, {"path": str(root)})
    if not root.exists():
        parent = next((p for p in root.parents if p.exists()), Path("/"))
        if not os.access(parent, os.W_OK):
            return Finding("cache", PROBLEM, f"{root} does not exist and {parent} is not writable", fix_dir,
                           {"path": str(root)})
        return Finding("cache", OK, f"{root}: empty (nothing fetched yet)", None, {"path": str(root), "bytes": 0})
    if not os.access(root, os.R_OK | os.W_OK | os.X_OK):
        return Finding("cache", PROBLEM, f"{root} is not readable and writable by this user", fix_dir,
                       {"path": str(root)})
    sizes, unreadable = {}, []
    for part in sorted(root.iterdir()):
        sizes[part.name] = tree_size(part, unreadable)
    total = sum(sizes.values())
    parts = " · ".join(f"{name} {human_bytes(size)}" for name, size in sizes.items() if size >= 1024**2)
    details = {"path": str(root), "bytes": total, "parts": sizes, "unreadable": unreadable[:20]}
    summary = f"{root}: {human_bytes(total)}" + (f" ({parts})" if parts else "")
    if unreadable:
        return Finding("cache", WARNING, f"{summary}; {len(unreadable)} entries could not be read "
                       f"(first: {unreadable[0]})", f"make {root} readable by this user (chown -R)", details)
    return Finding("cache", OK, summary, None, details)


def tree_size(path: Path, unreadable: list[str]) -> int:
    """Bytes under `path` (not following links); entries that cannot be read are listed, not fatal."""
    try:
        if path.is_symlink() or not path.is_dir():
            return path.lstat().st_size
    except OSError:
        unreadable.append(str(path))
        return 0
    total = 0
    for folder, directories, files in os.walk(path, onerror=lambda exc: unreadable.append(exc.filename)):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                unreadable.append(os.path.join(folder, name))
    return total


# ---------------------------------------------------------------- the machine

def disk_findings(engine: Engine) -> list[Finding]:
    """Free space where the engine keeps images and where the cache is (once when they share a filesystem)."""
    import psutil

    places = []
    root = engine.info.get("DockerRootDir") if engine.client is not None else "/var/lib/docker"
    if engine.local and root and Path(root).exists():
        places.append(("the engine's images", Path(root)))
    cache = next((p for p in (cache_dir(), *cache_dir().parents) if p.exists()), Path("/"))
    places.append(("the cache", cache))
    findings, seen = [], {}
    for role, path in places:
        device = path.stat().st_dev
        if device in seen:
            seen[device].summary += f"; {role} ({path}) is on the same filesystem"
            continue
        usage = psutil.disk_usage(str(path))
        summary = f"{role} ({path}): {human_bytes(usage.free)} free of {human_bytes(usage.total)}"
        details = {"path": str(path), "free_bytes": usage.free, "total_bytes": usage.total}
        if usage.free < DISK_PROBLEM:
            finding = Finding("disk", PROBLEM, summary + ": too little to build an image (about "
                              f"{human_bytes(DISK_PROBLEM)})", f"free space under {path}", details)
        elif usage.free < DISK_WARNING:
            finding = Finding("disk", WARNING, summary + ": enough for standard images, not for the full profile "
                              f"(about {human_bytes(DISK_WARNING)})", f"free space under {path} before building "
                              "--profile full", details)
        else:
            finding = Finding("disk", OK, summary, None, details)
        seen[device] = finding
        findings.append(finding)
    if not engine.local and engine.client is not None:
        findings.append(Finding("disk", OK, "the remote engine's disk is not visible from here"))
    return findings


def machine_findings(engine: Engine, limits: Limits) -> list[Finding]:
    """Memory against the default limit, and CPUs against the default one CPU (the engine's machine's)."""
    import psutil

    memory = psutil.virtual_memory()
    total = engine.info.get("MemTotal") or memory.total if engine.client is not None else memory.total
    held = sum(i.memory_bytes or 0 for i in engine.idle)  # free for a run: they go when one needs it
    free = memory.available + held if engine.local else None
    limit = human_bytes(limits.memory_bytes)
    details = {"total_bytes": total, "available_bytes": free, "limit_bytes": limits.memory_bytes,
               "prestarted_bytes": held}
    if total < limits.memory_bytes:
        memory_finding = Finding(
            "memory", PROBLEM, f"{human_bytes(total)} in all, less than Numerai's {limit} limit: runs end "
            "Error/host_resources", "run on a machine with more memory (a lower --memory gives verdicts Numerai "
            "would not)", details)
    elif free is not None and free < limits.memory_bytes:
        memory_finding = Finding(
            "memory", WARNING, f"{human_bytes(total)} in all, {human_bytes(free)} free: a model using its whole "
            f"{limit} may be killed by the machine before it reaches the limit", "close other programs before "
            "runs that need the whole limit", details)
    else:
        free_text = f", {human_bytes(free)} free" if free is not None else ""
        if free is not None and held:
            free_text += f" ({human_bytes(held)} of it held by idle pre-started sandboxes, given up for a run)"
        memory_finding = Finding("memory", OK, f"{human_bytes(total)} in all{free_text}: room for the {limit} "
                                 "limit", None, details)
    cpus = engine.info.get("NCPU") if engine.client is not None else None
    cpus = cpus or len(os.sched_getaffinity(0))
    wanted = limits.cpus
    if cpus < wanted:
        cpu_finding = Finding("cpus", PROBLEM, f"{cpus} CPU(s), fewer than the {wanted:g} a run gets",
                              "run on a machine with more CPUs", {"cpus": cpus})
    elif cpus <= wanted:
        cpu_finding = Finding("cpus", WARNING, f"{cpus} CPU: the model's {wanted:g} CPU is shared with the engine "
                              "and numerai-sandbox, so timings run slower than on Numerai",
                              "use a machine with 2 CPUs or more for timings like Numerai's", {"cpus": cpus})
    else:
        cpu_finding = Finding("cpus", OK, f"{cpus} CPUs: a run gets {wanted:g}, as on Numerai; the rest is left "
                              "for the engine and numerai-sandbox", None, {"cpus": cpus})
    return [memory_finding, cpu_finding]


def process_finding() -> Finding:
    """Whether `--backend process` can run here (no engine needed): this Python's environment, made or makeable
    offline, and what the sandbox can enforce (found by confining a process that does nothing, about 0.1 s).
    Never a problem: it is the fallback where no engine can be had."""
    from ..images import venv, wheelhouse
    from ..images.pins import pin_set
    from ..sandbox import process

    running = venv.interpreter()
    if running.python not in SUPPORTED_PYTHONS:
        return Finding("process", WARNING, f"this Python ({running.version}) has no Numerai image: `--backend "
                       "process` runs only pickles of a Python found on this machine", None)
    pins = pin_set(running.python, "standard")
    try:
        confinement = process.probe(running.executable)
    except process.SandboxFailed as exc:
        return Finding("process", WARNING, f"the process sandbox cannot run here: {exc}", None)
    network = confinement.network_detail if confinement.network_isolated else \
        f"{process.NOT_ISOLATED} ({confinement.network_detail})"
    details = {"python": running.version, "network": confinement.network, "user": confinement.user}
    made = venv.find(pins, running)
    if made is None and wheelhouse.inventory(pins).missing:
        return Finding("process", WARNING, f"Python {running.version}: the wheels of its environment are not fetched",
                       "`numerai-sandbox images fetch --backend process` (online, once)", details)
    ready = f"environment {made.path.name}" if made else "its environment is made by the first run (offline)"
    level = OK if confinement.network_isolated else WARNING
    return Finding("process", level, f"`--backend process` ready for Python {running.version}: {ready}; {network}; "
                   "memory watched, not capped by a cgroup", None if level == OK else
                   "run where unprivileged user namespaces or seccomp are allowed, or use a Docker engine", details)


def gvisor_finding(engine: Engine) -> Finding:
    """Whether the engine has gVisor's runsc registered (a stronger sandbox than runc, optional)."""
    if engine.client is None:
        return Finding("gvisor", WARNING, "not checked: the engine is unreachable", AFTER_ENGINE)
    runtimes = engine.info.get("Runtimes") or {}
    if "runsc" not in runtimes:
        return Finding("gvisor", WARNING, "gVisor (runsc) is not registered with the engine: runs are isolated "
                       f"by runc only (runtimes: {', '.join(sorted(runtimes)) or 'none'})", GVISOR_FIX,
                       {"runtimes": sorted(runtimes)})
    path = (runtimes.get("runsc") or {}).get("path") or "runsc"
    details = {"runtimes": sorted(runtimes), "runsc": path}
    if engine.local and not (shutil.which(path) or Path(path).is_file()):
        return Finding("gvisor", WARNING, f"runsc is registered, but its program {path} is missing", GVISOR_FIX,
                       details)
    return Finding("gvisor", OK, f"gVisor's runsc is registered with the engine ({path})", None, details)


def container_finding(engine: Engine) -> Finding | None:
    """Containers of ours on the engine: runs in progress elsewhere, kept ones, leftovers."""
    if engine.client is None:
        return None
    from ..sandbox.ownership import owner_alive

    found = engine.client.api.containers(all=True, filters={"label": f"{LABEL}.owner"})
    labels = [c.get("Labels") or {} for c in found]
    kept = sum(label.get(f"{LABEL}.keep") == "1" for label in labels)
    live = sum(label.get(f"{LABEL}.keep") != "1" and owner_alive(label.get(f"{LABEL}.owner", "")) for label in labels)
    orphans = len(found) - kept - live
    details = {"in_progress": live, "kept": kept, "orphaned": orphans}
    if not found:
        return Finding("containers", OK, "none of ours on the engine", None, details)
    summary = f"{live} in progress (other processes), {kept} kept with --keep, {orphans} left by killed runs"
    if orphans or kept:
        return Finding("containers", WARNING, summary, "`numerai-sandbox clean` removes kept and leftover ones",
                       details)
    return Finding("containers", OK, summary, None, details)


def prestarted_finding(engine: Engine) -> Finding | None:
    """This user's idle pre-started sandboxes (their memory and idle deadline), the bound that applies, and
    whether `run` would leave one here."""
    from datetime import datetime

    from ..sandbox import idle, pool

    try:
        mode, limit = idle.setting(), idle.bound(pool.host_memory(engine.client))
    except ValueError as exc:
        return Finding("pre-started", PROBLEM, str(exc), "unset it or give a valid value: runs and checks refuse "
                       "to start until then")
    ci, terminal = idle.in_ci(), idle.has_terminal()
    policy = idle.should_leave(mode, limit.per_image, ci, terminal, ran_recently=True)
    when = (f"`run` leaves one here after a second run in an image within {pool.IDLE_SECONDS / 60:g} minutes"
            if policy.leave else f"`run` leaves none here: {policy.why}")
    details = {"bound": limit.to_dict(), "idle_seconds": pool.IDLE_SECONDS, "setting": mode, "ci": ci,
               "terminal": terminal, "run_leaves_one": policy.leave, "idle": [], "count": 0, "memory_bytes": 0}
    if engine.client is None:
        return Finding("pre-started", OK, f"bound: {limit.describe()}; {when}", None, details)
    waiting = sorted(engine.idle, key=lambda i: i.made)
    held = sum(i.memory_bytes or 0 for i in waiting)
    details.update(idle=[i.to_dict() for i in waiting], count=len(waiting), memory_bytes=held,
                   others=engine.others_idle)
    others = f" ({engine.others_idle} more of other users or cache directories)" if engine.others_idle else ""
    if not waiting:
        return Finding("pre-started", OK, f"none of yours idle{others}; bound: {limit.describe()}; {when}", None,
                       details)
    listed = "; ".join(f"{i.name} (Python {i.python} · {i.profile} · {i.isolation}, {human_bytes(i.memory_bytes)}, "
                       f"until {datetime.fromtimestamp(i.idle_until).strftime('%H:%M')})" for i in waiting)
    summary = (f"{len(waiting)} idle, holding {human_bytes(held)}: {listed}{others}; bound: {limit.describe()}; "
               f"{when}; `numerai-sandbox clean` removes them, NUMERAI_SANDBOX_WARM=0 turns them off")
    return Finding("pre-started", OK, summary, None, details)

