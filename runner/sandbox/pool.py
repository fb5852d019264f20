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
  has exited, or when the run that claimed it is gone; `clean` removes every one of the user's.

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

from ..paths import LABEL, NAMESPACE_LABEL, cache_dir, ensure_dir, in_namespace, namespace
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


def enabled() -> bool:
    """Pre-started sandboxes are on unless NUMERAI_SANDBOX_WARM=0."""
    return os.environ.get("NUMERAI_SANDBOX_WARM", "1") != "0"


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
             idle_seconds: float = IDLE_SECONDS) -> tuple[ContainerSpec, list[str], dict[str, str]]:
    """The spec, harness arguments and labels of a pre-started sandbox for `spec`.

    No owner label: a pre-started sandbox belongs to its user, not to the process that started it
    (which is gone by the time it is used), so the sweep of dead owners leaves it to `sweep` here."""
    from .ownership import labels_for

    mounts = [m for m in spec.mounts if m.target != MODEL_TARGET] + [Mount(slot, SLOT)]
    command = ["--ahead", "--idle-seconds", f"{idle_seconds:g}", "--preload", ",".join(sorted(preload)),
               "--model", SLOT_MODEL, "--max-output-bytes", str(spec.limits.max_output_bytes)]
    labels = labels_for("warm", **spec.labels, key=key(spec), preload=",".join(sorted(preload)), uid=str(os.getuid()),
                        idle_until=f"{time.time() + idle_seconds:.0f}", slot=str(slot))
    labels[f"{LABEL}.started_by"] = labels.pop(f"{LABEL}.owner")
    return replace(spec, mounts=mounts, name=name, command=command), command, labels


def claim(client: docker.DockerClient, spec: ContainerSpec, preload: tuple[str, ...]) -> Claimed | None:
    """A running pre-started sandbox made for exactly this spec, now ours alone; None when there is none."""
    from filelock import FileLock, Timeout

    from .ownership import owner_label

    filters = {"label": [f"{LABEL}.kind=warm", f"{LABEL}.key={key(spec)}", f"{LABEL}.uid={os.getuid()}",
                         f"{NAMESPACE_LABEL}={namespace()}"], "status": "running"}
    found = [info for info in client.api.containers(filters=filters)
             if usable((info.get("Labels") or {}).get(f"{LABEL}.preload", ""), preload)]
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
                         f"{LABEL}.preload={','.join(sorted(preload))}", f"{NAMESPACE_LABEL}={namespace()}"],
               "status": "running"}
    for info in client.api.containers(filters=filters):
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


def sweep(client: docker.DockerClient, everything: bool = False, dry_run: bool = False) -> list[str]:
    """This user's pre-started sandboxes that can serve no one: idle past their deadline, exited, or
    claimed by a run that is gone; with `everything`, all of them in this namespace. And slots left without
    a sandbox."""
    from .ownership import owner_alive

    removed = []
    try:
        containers = client.api.containers(all=True, filters={"label": [f"{LABEL}.kind=warm",
                                                                        f"{LABEL}.uid={os.getuid()}"]})
    except docker.errors.DockerException:
        return removed
    kept = set()
    for info in containers:
        labels = info.get("Labels") or {}
        slot = Path(labels.get(f"{LABEL}.slot", "/nonexistent"))
        owner = (slot / OWNER).read_text() if (slot / OWNER).is_file() else None
        starting = info.get("State") == "created" and time.time() - float(info.get("Created", 0)) < 60
        doomed = ((everything and in_namespace(labels)) or (info.get("State") != "running" and not starting)
                  or (owner is None and float(labels.get(f"{LABEL}.idle_until", 0)) < time.time())
                  or (owner is not None and not owner_alive(owner)))
        if not doomed or dry_run:
            kept.add(slot)
            if doomed:
                removed.append((info.get("Names") or ["/?"])[0].lstrip("/"))
            continue
        with contextlib.suppress(docker.errors.DockerException):
            client.api.remove_container(info["Id"], force=True, v=True)
            removed.append((info.get("Names") or ["/?"])[0].lstrip("/"))
    if slot_root().is_dir():
        for slot in slot_root().glob(PREFIX + "*"):
            if slot not in kept:
                shutil.rmtree(slot, ignore_errors=True)
    return removed
