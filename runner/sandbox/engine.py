"""The Docker engine itself: reaching it, telling its failures apart, and the few calls everyone makes.

Every part that talks to the engine (the Docker backend, images/, doctor, clean) reaches it here:
`connect` (one round trip proves it answers), the exceptions that mean it is gone or refused
(`ENGINE_ERRORS`, `lost_engine`), removing and killing a container whatever state it is in, the
temp dirs a sweep can tell the owner of, and running one of our own scripts in an image.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import docker
import docker.errors
import requests

from ..support.machine import PLATFORM
from ..support.paths import TEMP_PREFIX
from .backend import UNREACHABLE, Mount, PlatformFailure, SandboxUnavailable
from .ownership import labels_for

KILL_GRACE_SECONDS = 10
CONNECT_TIMEOUT = 10  # to learn whether the engine answers at all
API_TIMEOUT = 900  # for everything else: removing a 10 GB image or importing a base takes a while


class EngineUnavailable(SandboxUnavailable):
    """The Docker engine cannot be reached (a platform problem, never the model's)."""

    kind = UNREACHABLE
    platform = "docker"


# What talking to the engine can raise when it is gone, refuses, or is too slow to answer.
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


def lost_engine(exc: BaseException) -> bool:
    """Whether an exception means the engine went away or stopped answering (not that it said no)."""
    return isinstance(exc, ENGINE_ERRORS) and not isinstance(exc, docker.errors.APIError)


def failure_of(exc: BaseException) -> PlatformFailure | None:
    """The engine went away or stopped answering while we talked to it (None: the exception is not that)."""
    if lost_engine(exc):
        return PlatformFailure(UNREACHABLE, f"Lost the Docker engine during the run ({type(exc).__name__}: "
                                            f"{str(exc)[:200]})", "docker")
    return None


def connect() -> docker.DockerClient:
    """A client for the engine DOCKER_HOST names (or the local socket), checked with a ping."""
    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        # One round trip: negotiating the API version, with a short timeout, proves the engine answers;
        # the client for the run's work reuses that version instead of asking again.
        probe = docker.from_env(timeout=CONNECT_TIMEOUT)
        version = probe.api.api_version
        probe.close()
        return docker.from_env(version=version, timeout=API_TIMEOUT)
    except (*ENGINE_ERRORS, OSError) as exc:
        raise EngineUnavailable(f"cannot reach the Docker engine at {where} ({short_error(exc)})") from exc


def short_error(exc: BaseException) -> str:
    """An engine error in a few words (the usual causes by name)."""
    text = str(exc).strip() or type(exc).__name__
    for marker in ("Connection refused", "No such file or directory", "Permission denied",
                   "timed out", "Name or service not known"):
        if marker in text:
            return marker.lower()
    return text.splitlines()[0][:160]


def temp_dir(purpose: str) -> Path:
    """A temp dir named so a sweep can tell whose it is: numerai-sandbox-<purpose>-<pid>-<random>."""
    return Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{purpose}-{os.getpid()}-"))


def remove(client: docker.DockerClient, container_id: str) -> None:
    """Remove a container and its volumes, whatever its state (gone already is fine)."""
    with contextlib.suppress(*ENGINE_ERRORS):
        client.api.remove_container(container_id, force=True, v=True)


def kill(client: docker.DockerClient, container_id: str) -> None:
    """Kill a container and wait (briefly) until it stopped."""
    with contextlib.suppress(*ENGINE_ERRORS):
        client.api.kill(container_id)
    with contextlib.suppress(*ENGINE_ERRORS):
        client.api.wait(container_id, timeout=KILL_GRACE_SECONDS)


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
        working_dir="/tmp", network_disabled=True, host_config=host_config, platform=PLATFORM)
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
