"""Step 5 of Pending: the sandbox's shape, whatever backend runs it — the harness's arguments (built here,
once), the read-only inputs, the limits, the non-root user that can read them. A run, a shell, a
pre-started sandbox and a Kubernetes Job are all made from these specs.
"""

from __future__ import annotations

import math
import os
import secrets
import stat
from dataclasses import replace
from pathlib import Path

from .. import data as live_data
from ..sandbox.backend import ContainerSpec, Limits, Mount
from ..support.units import human_bytes
from .request import RunRequest, UsageError

SANDBOX_USER = (1000, 1000)


def harness_arguments(limits: Limits, debug: bool) -> list[str]:
    """The harness's arguments for one model: the output cap, stop when our hold on stdin goes, --debug."""
    return ["--max-output-bytes", str(limits.max_output_bytes), "--exit-on-stdin-eof"] + (["--debug"] if debug else [])


def container_user(paths: list[Path]) -> str:
    """The non-root user that runs the model, chosen so it can read the inputs without copying them."""
    def readable_by(path: Path, uid: int, gid: int) -> bool:
        st = path.stat()
        return bool(st.st_mode & stat.S_IROTH or (st.st_gid == gid and st.st_mode & stat.S_IRGRP)
                    or (st.st_uid == uid and st.st_mode & stat.S_IRUSR))

    if all(readable_by(p, *SANDBOX_USER) for p in paths):
        return f"{SANDBOX_USER[0]}:{SANDBOX_USER[1]}"
    uid, gid = os.getuid(), os.getgid()
    if uid != 0 and all(readable_by(p, uid, gid) for p in paths):
        return f"{uid}:{gid}"
    blocked = next(p for p in paths if not readable_by(p, *SANDBOX_USER))
    mode = stat.filemode(blocked.stat().st_mode)
    raise UsageError(f"{blocked} ({mode}) is not readable by the sandbox's non-root user; make it readable "
                     f"(chmod a+r {blocked}) or run numerai-sandbox as its owner")


def own_user() -> str:
    """The user running numerai-sandbox, as uid:gid (the process sandbox's model runs as it)."""
    return f"{os.getuid()}:{os.getgid()}"


def sandbox_name(kind: str) -> str:
    return f"numerai-sandbox-{kind}-{secrets.token_hex(5)}"


def sandbox_spec(request: RunRequest, image: str, python: str, data: live_data.LiveData, kind: str = "run",
                 command: list[str] | None = None, preload: tuple[str, ...] | None = None,
                 user: str | None = None) -> ContainerSpec:
    """The sandbox of one run (or shell): by default the harness's arguments for one model; `user` (default: a
    non-root user that can read the inputs) runs it."""
    limits = request.limits
    return ContainerSpec(
        image=image, name=sandbox_name(kind),
        command=harness_arguments(limits, request.debug) if command is None else command,
        mounts=[Mount(request.model.resolve(), "/input/model.pkl"),
                Mount(data.live, "/input/live.parquet"),
                Mount(data.benchmarks, "/input/live_benchmark_models.parquet")],
        limits=limits, user=user or container_user([request.model, data.live, data.benchmarks]),
        environment={"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib"}, keep=request.keep,
        labels={"python": python, "purpose": kind}, preload=preload)


def cold_twin(spec: ContainerSpec) -> ContainerSpec:
    """The same sandbox under a new name, never served by a pre-started one."""
    return replace(spec, name=sandbox_name("run"), preload=None)


def shell_spec(request: RunRequest, image: str, python: str, data: live_data.LiveData) -> ContainerSpec:
    """A shell's sandbox: the run's, holding on while the user works in it, removed by the engine once it
    stops (the process that started it may be killed)."""
    spec = sandbox_spec(request, image, python, data, "shell", ["--hold"])
    return replace(spec, environment=spec.environment | {"TERM": shell_term()}, remove_on_exit=True)


def shell_term() -> str:
    """The user's TERM for the shell's terminal (line editing needs it), when it is a plain name."""
    term = os.environ.get("TERM", "")
    return term if term.replace("-", "").replace(".", "").isalnum() else "xterm-256color"


def timeout_text(limits: Limits) -> str:
    return f"timeout {limits.timeout_seconds:g}s" if math.isfinite(limits.timeout_seconds) else "no timeout"


def running_note(spec: ContainerSpec) -> str:
    """What Running says of the sandbox: its name, its limits, its isolation."""
    limits = spec.limits
    if spec.image.startswith("/"):  # an environment's Python: the process sandbox
        return (f"process sandbox {spec.name} · {limits.cpus:g} CPU · {human_bytes(limits.memory_bytes)} watched · "
                f"{timeout_text(limits)} · weaker than Numerai's container")
    return (f"container {spec.name} · {limits.cpus:g} CPU · {human_bytes(limits.memory_bytes)} · "
            f"no network · {timeout_text(limits)}" + (" · gVisor" if limits.isolation == "gvisor" else ""))


def container_facts(spec: ContainerSpec, sandbox_id: str | None = None) -> dict:
    """The report's `container`, as far as the spec (and the sandbox's id, once it exists) tells."""
    return {"name": spec.name, "kept": spec.keep, "user": spec.user} | ({"id": sandbox_id[:12]} if sandbox_id else {})
