"""Pre-started sandboxes: ready before the pickle arrives, each serving exactly one model, then destroyed.

A cold run pays, before the model's own work, for a container to start, Python and pandas
to import and live.parquet to be read. A pre-started sandbox has done that already:

- **Started** (by `run`, for the next run of the same model; by `check`, for the pickles it is
  about to run) from the same spec as a cold sandbox — image, limits, isolation, the live data
  mounted read-only — plus a private read-only folder, /input/slot, where the pickle will be put.
  Its harness imports pandas, reads the live data and imports the modules the pickle needs (as
  inspection read them from it; unpickling would import them anyway), then waits on stdin.
- **While idle** it belongs to the user who started it (labels: kind=warm, uid, host, the key of
  what it was made for, the time it gives up); it runs at the lowest CPU weight on no fixed core,
  so it never slows a running model, and it ends itself after `idle_seconds`.
- **Claimed** by a run of the same user on the same host whose key matches (image, data,
  limits, user, modules): a lock file in its slot makes the claim exclusive, and the container
  is renamed after its new owner. The claimer takes cores from the allocator, restores the full
  CPU weight, copies the pickle into the slot and sends the go line; from then on the harness
  needs the claimer's heartbeat (a byte a second) and ends itself when it stops. After that one
  model the container is removed, exactly like a cold one; it is never reused.
- **Swept** by any command that reaches the engine when its idle deadline has passed, when it
  has exited, when the run that claimed it (or the check that started it) is gone, or when it is
  past the bound (runner/sandbox/idle.py: how many may wait, how much memory they may hold, which
  goes first); `clean` removes every one of the user's.

Whose: `run` leaves one for the user (no owner label: it outlives the run), bounded and counted per
user and cache directory (the `pool` label; its slot lives in that cache); `check` starts its own,
labelled with the check's process as owner, which no other process claims and which go with it.

The verdict does not depend on any of this: the same checks, limits and isolation apply, and
the pickle and the data are the same files (tests run the hardening probes in one).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import docker
import docker.errors

from ..support.paths import LABEL, NAMESPACE_LABEL, cache_dir, ensure_dir, file_lock, in_namespace, namespace
from ..support.units import human_bytes
from . import idle
from .backend import ContainerSpec, Mount, StreamSink

PREFIX = "numerai-sandbox-warm-"
SLOT = "/input/slot"
SLOT_MODEL = f"{SLOT}/model.pkl"
MODEL_TARGET = "/input/model.pkl"
IDLE_SECONDS = float(os.environ.get("NUMERAI_SANDBOX_WARM_IDLE", 600))
IDLE_SHARES = 2  # the lowest CPU weight the kernel allows: an idle sandbox only uses what nobody else wants
OWNER = ".owner"  # in the slot: the owner label of the run that claimed it


ACK_SECONDS = 15.0  # a pre-started sandbox that has not taken the pickle by then is discarded
UNRESPONSIVE = "prestarted_unresponsive"


GO_FRAME = b"NSBX1 go "


class Acknowledged(StreamSink):
    """The output of a pre-started sandbox from its `go` frame on, and an abort when it never comes.

    We attach to a container that has been printing since it started, so the stream may begin in
    the middle of a frame: everything before the harness acknowledges the pickle (the `go` frame,
    written only after it read our go line, so always after we attached) is dropped, and the
    report channel the run parses starts clean. No acknowledgement within ACK_SECONDS: the run is
    aborted and the caller runs the model cold instead."""

    def __init__(self, inner: StreamSink):
        self.inner = inner
        self.acknowledged = False
        self.deadline: float | None = None
        self._tail = b""

    def sent(self) -> None:
        self.deadline = time.monotonic() + ACK_SECONDS

    def stdout(self, chunk: bytes) -> None:
        if self.acknowledged:
            self.inner.stdout(chunk)
            return
        seen = self._tail + chunk
        start = seen.find(GO_FRAME)
        if start < 0:
            self._tail = seen[-len(GO_FRAME):]
            return
        self.acknowledged = True
        self.inner.stdout(seen[start:])

    def stderr(self, chunk: bytes) -> None:
        self.inner.stderr(chunk)

    def watch_memory(self, samples) -> None:
        self.inner.watch_memory(samples)

    def abort_reason(self) -> str | None:
        if not self.acknowledged and self.deadline is not None and time.monotonic() > self.deadline:
            return UNRESPONSIVE
        return self.inner.abort_reason()


LOCK = "warm-pool"  # held while the user's idle sandboxes are counted, evicted and one is started


def enabled() -> bool:
    """Pre-started sandboxes are on unless NUMERAI_SANDBOX_WARM=0 or NUMERAI_SANDBOX_WARM_MAX=0 (a value
    that does not parse is the command line's usage error; here it leaves them on)."""
    try:
        return idle.setting() != "off" and idle.per_image() > 0
    except ValueError:
        return True


# Isolations whose sandbox can be pre-started: claiming moves it onto the run's cores at full CPU weight
# (`docker update`), which gVisor's runsc does not implement, so gVisor runs are always cold.
CLAIMABLE = ("runc",)


def serves(spec: ContainerSpec) -> bool:
    """Whether a run of `spec` may use (and leave) a pre-started sandbox: it preloads modules (a run, not a
    shell or --keep), pre-starting is on, and its isolation allows claiming."""
    return spec.preload is not None and spec.limits.isolation in CLAIMABLE and enabled()


def scope() -> str:
    """The pool a pre-started sandbox belongs to: the cache directory its slot is in (with the uid label,
    the user and cache whose bound counts it and whose runs may claim it)."""
    return hashlib.sha256(str(slot_root().resolve()).encode()).hexdigest()[:12]


def group_of(spec: ContainerSpec) -> str:
    """The image and isolation a sandbox is made for: the bound counts idle sandboxes per group."""
    return f"{spec.image.removeprefix('sha256:')[:12]}-{spec.limits.isolation}"


def host_memory(client: docker.DockerClient | None) -> int:
    """The engine's machine's memory: this machine's for a local engine (or none), else what the engine says."""
    import psutil

    if client is None or os.environ.get("DOCKER_HOST", "unix://").startswith("unix://"):
        return int(psutil.virtual_memory().total)
    return int((client.info() or {}).get("MemTotal") or psutil.virtual_memory().total)


def current_bound(client: docker.DockerClient) -> idle.Bound | None:
    """The bound that applies here (None when NUMERAI_SANDBOX_WARM_MAX does not parse: the command line says so)."""
    try:
        return idle.bound(host_memory(client))
    except ValueError:
        return None


def key(spec: ContainerSpec) -> str:
    """What a pre-started sandbox was made for, but its preloaded modules: a run may use it only if
    every part matches (the modules are matched apart, see `usable`)."""
    limits = spec.limits
    parts = [spec.image, spec.user, sorted((str(m.source), m.target) for m in spec.mounts if m.target != MODEL_TARGET),
             [limits.memory_bytes, limits.cpus, limits.pids, limits.open_files, limits.tmp_bytes,
              limits.max_output_bytes], sorted(spec.environment.items()), limits.isolation]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:24]


def usable(preloaded: str, preload: tuple[str, ...]) -> bool:
    """A sandbox that imported some of the modules this pickle needs, and nothing else, is as good as
    a cold one: unpickling imports the rest, and the memory held is what the pickle would hold anyway.
    One that imported more would charge this model for modules it never loads."""
    return set(filter(None, preloaded.split(","))) <= set(preload)


def slot_root() -> Path:
    return cache_dir() / "warm"


def recent_record() -> Path:
    """When this user last ran a model in each image (idle.ran_recently): beside the slots."""
    return slot_root() / "recent.json"


@dataclass
class Claimed:
    container_id: str
    name: str
    slot: Path
    lock: object  # the FileLock that makes the claim exclusive; released after the run


def new_slot() -> tuple[str, Path]:
    """A name and a private folder for one pre-started sandbox."""
    name = PREFIX + secrets.token_hex(5)
    slot = ensure_dir(slot_root() / name)
    slot.chmod(0o755)
    return name, slot


def prepared(spec: ContainerSpec, preload: tuple[str, ...], slot: Path, name: str,
             idle_seconds: float = IDLE_SECONDS, owned: bool = False,
             estimate: int = 0) -> tuple[ContainerSpec, list[str], dict[str, str]]:
    """The spec, harness arguments and labels of a pre-started sandbox for `spec`.

    Left for the user (not `owned`): no owner label, since it belongs to its user, not to the process
    that started it (gone by the time it is used), so the sweep of dead owners leaves it to `sweep`
    here. `owned` (check's): labelled with this process as owner, claimed by no other, and swept with it."""
    from .ownership import labels_for

    mounts = [m for m in spec.mounts if m.target != MODEL_TARGET] + [Mount(slot, SLOT)]
    command = ["--ahead", "--idle-seconds", f"{idle_seconds:g}", "--preload", ",".join(sorted(preload)),
               "--model", SLOT_MODEL, "--max-output-bytes", str(spec.limits.max_output_bytes)]
    now = time.time()
    labels = labels_for("warm", **spec.labels, key=key(spec), preload=",".join(sorted(preload)), uid=str(os.getuid()),
                        idle_until=f"{now + idle_seconds:.0f}", slot=str(slot), pool=scope(), group=group_of(spec),
                        made=f"{now:.3f}", estimate=str(int(estimate)), isolation=spec.limits.isolation)
    if not owned:
        labels[f"{LABEL}.started_by"] = labels.pop(f"{LABEL}.owner")
    return replace(spec, mounts=mounts, name=name, command=command), command, labels


@dataclass
class Left:
    """The sandbox a run left for the next one, and the ones it replaced."""

    name: str | None  # None: none was left (see refused)
    estimate: int
    idle_until: float
    evicted: list[str]
    refused: str | None = None


def claim(client: docker.DockerClient, spec: ContainerSpec, preload: tuple[str, ...]) -> Claimed | None:
    """A running pre-started sandbox made for exactly this spec, now ours alone; None when there is none."""
    from filelock import FileLock, Timeout

    from .ownership import owner_label

    filters = {"label": [f"{LABEL}.kind=warm", f"{LABEL}.key={key(spec)}", f"{LABEL}.uid={os.getuid()}",
                         f"{LABEL}.pool={scope()}", f"{NAMESPACE_LABEL}={namespace()}"], "status": "running"}
    me = owner_label()
    found = [info for info in client.api.containers(filters=filters)
             if usable((info.get("Labels") or {}).get(f"{LABEL}.preload", ""), preload)
             and (info.get("Labels") or {}).get(f"{LABEL}.owner", me) == me]  # another check's are its own
    found.sort(key=lambda info: -len((info.get("Labels") or {}).get(f"{LABEL}.preload", "")))  # the most done ahead
    for info in found:
        name = (info.get("Names") or ["/"])[0].lstrip("/")
        slot = Path((info.get("Labels") or {}).get(f"{LABEL}.slot", ""))
        if not name.startswith(PREFIX) or not slot.is_dir() or slot.parent != slot_root():
            continue
        lock = FileLock(str(slot / ".claim"), timeout=0)
        try:
            lock.acquire()
        except (Timeout, OSError):
            continue
        if (slot / OWNER).exists():  # claimed by a run that is gone: the sweep's, not ours
            lock.release()
            continue
        (slot / OWNER).write_text(owner_label())
        new_name = f"numerai-sandbox-run-w{secrets.token_hex(5)}"
        try:
            client.api.rename(name, new_name)
        except docker.errors.DockerException:
            lock.release()
            continue
        return Claimed(info["Id"], new_name, slot, lock)
    return None


def waiting(client: docker.DockerClient, spec: ContainerSpec, preload: tuple[str, ...]) -> bool:
    """Whether an unclaimed pre-started sandbox made for exactly this spec and these modules is waiting."""
    filters = {"label": [f"{LABEL}.kind=warm", f"{LABEL}.key={key(spec)}", f"{LABEL}.uid={os.getuid()}",
                         f"{LABEL}.preload={','.join(sorted(preload))}", f"{LABEL}.pool={scope()}",
                         f"{NAMESPACE_LABEL}={namespace()}"],
               "status": "running"}
    for info in client.api.containers(filters=filters):
        if f"{LABEL}.owner" in (info.get("Labels") or {}):  # a check's, for its own runs
            continue
        slot = Path((info.get("Labels") or {}).get(f"{LABEL}.slot", "/nonexistent"))
        if slot.is_dir() and not (slot / OWNER).exists():
            return True
    return False


def hand_over(claimed: Claimed, model: Path) -> None:
    """Put the pickle where the sandbox will read it (a copy: the user's file is never touched)."""
    target = claimed.slot / "model.pkl"
    shutil.copyfile(model, target)
    target.chmod(0o644)


def go_line(debug: bool, max_output_bytes: int) -> bytes:
    return (json.dumps({"model": SLOT_MODEL, "debug": debug, "max_output_bytes": max_output_bytes}) + "\n").encode()


def release(client: docker.DockerClient, claimed: Claimed) -> None:
    """After its one model: the container and its slot go."""
    with contextlib.suppress(docker.errors.DockerException):
        client.api.remove_container(claimed.container_id, force=True, v=True)
    shutil.rmtree(claimed.slot, ignore_errors=True)
    with contextlib.suppress(Exception):
        claimed.lock.release()


def _name(info: dict) -> str:
    return (info.get("Names") or ["/?"])[0].lstrip("/")


def _remove(client: docker.DockerClient, container_id: str) -> None:
    with contextlib.suppress(docker.errors.DockerException):
        client.api.remove_container(container_id, force=True, v=True)


def _ours(client: docker.DockerClient, all_pools: bool = False) -> list[dict]:
    """This user's pre-started sandboxes in this pool (`all_pools`: everyone's), in any state; only this
    namespace's (another namespace's work is not ours to count or remove)."""
    labels = [f"{LABEL}.kind=warm"] + ([] if all_pools else [f"{LABEL}.uid={os.getuid()}", f"{LABEL}.pool={scope()}"])
    try:
        found = client.api.containers(all=True, filters={"label": labels})
    except docker.errors.DockerException:
        return []
    return [info for info in found if in_namespace(info.get("Labels") or {})]


def _as_idle(info: dict, memory: int | None) -> idle.Idle:
    labels = info.get("Labels") or {}

    def number(name: str, default: float) -> float:
        try:
            return float(labels.get(f"{LABEL}.{name}", default))
        except ValueError:
            return default

    return idle.Idle(id=info["Id"], name=_name(info), group=labels.get(f"{LABEL}.group", "?"),
                     made=number("made", float(info.get("Created") or 0)), idle_until=number("idle_until", 0),
                     memory_bytes=memory, estimate=int(number("estimate", 0)),
                     python=labels.get(f"{LABEL}.python", "?"),
                     profile=labels.get(f"{LABEL}.profile", "?"), isolation=labels.get(f"{LABEL}.isolation", "runc"),
                     slot=labels.get(f"{LABEL}.slot", ""))


def _waiting_unclaimed(info: dict) -> bool:
    """Left for the user (no owning process), running or starting, and not claimed by a run."""
    labels = info.get("Labels") or {}
    slot = Path(labels.get(f"{LABEL}.slot", "/nonexistent"))
    starting = info.get("State") == "created" and time.time() - float(info.get("Created", 0)) < 60
    return (f"{LABEL}.owner" not in labels and (info.get("State") == "running" or starting)
            and slot.is_dir() and not (slot / OWNER).exists())


def memory_in_use(client: docker.DockerClient, container_id: str) -> int | None:
    """The container's memory in use as the engine counts it (what a run's memory curve shows)."""
    try:
        stats = client.api.stats(container_id, stream=False, one_shot=True)
    except (docker.errors.DockerException, ValueError):
        return None
    usage = (stats.get("memory_stats") or {}).get("usage")
    return int(usage) if isinstance(usage, (int, float)) else None


def idle_sandboxes(client: docker.DockerClient, measure: bool = True) -> list[idle.Idle]:
    """This user's idle pre-started sandboxes in this pool, with their memory in use when `measure`."""
    return [_as_idle(info, memory_in_use(client, info["Id"]) if measure else None)
            for info in _ours(client) if _waiting_unclaimed(info)]


def superseded(client: docker.DockerClient, info: dict) -> bool:
    """Made from an image that no longer carries a tag (rebuilt since, or removed): no run can claim it."""
    try:
        return not client.api.inspect_image(info.get("ImageID") or info.get("Image", "")).get("RepoTags")
    except docker.errors.NotFound:
        return True
    except docker.errors.DockerException:
        return False


def stale_and_fresh(client: docker.DockerClient, waiting_now: list[dict],
                    measure: bool) -> tuple[list[idle.Idle], list[idle.Idle]]:
    """Waiting sandboxes as the bound sees them: those made from an image rebuilt since (they go first,
    whatever the bound), and the others (with their memory in use when `measure`)."""
    stale, fresh = [], []
    for info in waiting_now:
        if superseded(client, info):
            stale.append(_as_idle(info, None))
        else:
            fresh.append(_as_idle(info, memory_in_use(client, info["Id"]) if measure else None))
    return stale, fresh


def others_waiting(client: docker.DockerClient) -> int:
    """Idle pre-started sandboxes of other users or cache directories on this engine (not ours to count)."""
    mine = {info["Id"] for info in _ours(client)}
    return sum(1 for info in _ours(client, all_pools=True)
               if info["Id"] not in mine and info.get("State") == "running"
               and f"{LABEL}.owner" not in (info.get("Labels") or {}))


def evict(client: docker.DockerClient, sandbox: idle.Idle) -> bool:
    """Remove an idle sandbox unless a run is claiming it at this moment (the claim's lock says so)."""
    from filelock import FileLock, Timeout

    slot = Path(sandbox.slot)
    if not slot.is_dir() or slot.parent != slot_root():
        _remove(client, sandbox.id)
        return True
    lock = FileLock(str(slot / ".claim"), timeout=0)
    try:
        lock.acquire()
    except (Timeout, OSError):
        return False  # being claimed: no longer idle
    try:
        if (slot / OWNER).exists():
            return False
        _remove(client, sandbox.id)
        shutil.rmtree(slot, ignore_errors=True)
        return True
    finally:
        with contextlib.suppress(Exception):
            lock.release()


def leave(client: docker.DockerClient, spec: ContainerSpec, estimate: int, start) -> Left | None:
    """Start a sandbox for the next run of `spec` in the user's pool, within the bound: under the pool's
    lock (two runs ending at once count each other's), count the idle ones, remove those past the bound
    with this one added (least recently made first), then `start(spec, estimate)` -> (name, idle_until).
    None when one made for exactly this waits already; a Left without a name (and why) when this one
    cannot fit the bound at all."""
    limit = current_bound(client)
    if limit is None or spec.preload is None:
        return None
    with file_lock(LOCK):
        if waiting(client, spec, spec.preload):
            return None
        stale, fresh = stale_and_fresh(client, [info for info in _ours(client) if _waiting_unclaimed(info)],
                                       measure=True)
        doomed = idle.evictions(fresh, limit, group_of(spec), estimate)
        if doomed is None:
            return Left(None, estimate, 0, [], refused=f"it would hold about {human_bytes(estimate)}, more than the "
                        f"bound allows ({limit.describe()})")
        evicted = [d.name for d in stale + doomed if evict(client, d)]
        name, idle_until = start(spec, estimate)
    return Left(name, estimate, idle_until, evicted)


def held_memory(client: docker.DockerClient) -> int:
    """The memory this user's idle sandboxes hold: free memory for any run that needs it (see make_room)."""
    return sum(i.memory_bytes or 0 for i in idle_sandboxes(client))


def make_room(client: docker.DockerClient, needed: int) -> list[str]:
    """Give up idle sandboxes, least recently made first, until `needed` bytes are freed (or none is left);
    the names of those removed."""
    if needed <= 0:
        return []
    with file_lock(LOCK):
        return [d.name for d in idle.to_free(idle_sandboxes(client), needed) if evict(client, d)]


def remove_for_images(client: docker.DockerClient, image_ids: set[str], dry_run: bool = False) -> list[str]:
    """Every waiting pre-started sandbox (anyone's: it holds the image) made from one of these images, before
    they are removed; those a run has claimed are runs in progress, left alone."""
    found = []
    for info in _ours(client, all_pools=True):
        labels = info.get("Labels") or {}
        slot = Path(labels.get(f"{LABEL}.slot", "/nonexistent"))
        if info.get("ImageID") in image_ids and not (slot / OWNER).exists():
            if not dry_run:
                _remove(client, info["Id"])
                if slot.parent == slot_root():
                    shutil.rmtree(slot, ignore_errors=True)
            found.append(_name(info))
    return found


def _just_made(slot: Path) -> bool:
    """A slot whose sandbox may not be created yet (another process is starting it)."""
    try:
        return time.time() - slot.stat().st_mtime < 60
    except OSError:
        return False


def sweep(client: docker.DockerClient, everything: bool = False, dry_run: bool = False,
          all_pools: bool = False) -> list[str]:
    """This user's pre-started sandboxes in this pool that can serve no one: idle past their deadline,
    exited, claimed by a run (or started by a check) that is gone, made from an image rebuilt since,
    or past the bound (it may have been
    lowered; the memory counted is what each was expected to hold: no engine round trip per sandbox);
    with `everything`, all those no live run or check uses (`all_pools`: every one, every user's and
    cache's, in use or not). And slots left without a sandbox."""
    from .ownership import owner_alive

    removed = []
    containers = _ours(client, all_pools)
    kept, waiting_now = set(), []
    for info in containers:
        labels = info.get("Labels") or {}
        slot = Path(labels.get(f"{LABEL}.slot", "/nonexistent"))
        owner = (slot / OWNER).read_text() if (slot / OWNER).is_file() else None
        starter = labels.get(f"{LABEL}.owner")
        starting = info.get("State") == "created" and time.time() - float(info.get("Created", 0)) < 60
        # Whose process it serves: the run that claimed it, else the check that started it (None: the user's).
        user = owner if owner is not None else starter
        in_use = user is not None and owner_alive(user)  # only --all takes a sandbox a live process uses
        expired = owner is None and float(labels.get(f"{LABEL}.idle_until", 0)) < time.time()
        doomed = ((everything and (all_pools or not in_use)) or (info.get("State") != "running" and not starting)
                  or expired or (user is not None and not in_use))
        if not doomed or dry_run:
            kept.add(slot)
            if doomed:
                removed.append(_name(info))
            elif _waiting_unclaimed(info):
                waiting_now.append(info)
            continue
        _remove(client, info["Id"])
        removed.append(_name(info))
    limit = current_bound(client) if waiting_now and not all_pools else None
    if limit is not None:
        stale, fresh = stale_and_fresh(client, waiting_now, measure=False)
        for sandbox in stale + idle.over_bound(fresh, limit):
            if dry_run or evict(client, sandbox):
                removed.append(sandbox.name)
    if slot_root().is_dir() and not dry_run:
        for slot in slot_root().glob(PREFIX + "*"):
            if slot not in kept and not _just_made(slot):
                shutil.rmtree(slot, ignore_errors=True)
    return removed
