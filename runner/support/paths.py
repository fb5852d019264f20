"""Where numerai-sandbox keeps things on the host, and how it names what it owns.

Everything persistent lives under one cache directory (wheelhouses, base root
filesystems, synthetic data); everything transient carries our prefix or label
so a sweep can find and remove what a killed runner left behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
from pathlib import Path
from typing import Iterator

APP = "numerai-sandbox"
LABEL = "numerai-sandbox"  # prefix of every Docker label we set
TEMP_PREFIX = "numerai-sandbox-"
NAMESPACE_ENV = "NUMERAI_SANDBOX_NAMESPACE"
NAMESPACE_LABEL = f"{LABEL}.namespace"
# A Docker repository name component: lower case, digits, separated by one . _ or - (or two _).
NAMESPACE_PATTERN = re.compile(r"[a-z0-9]+(?:(?:[._-]|__)[a-z0-9]+)*")
REPOSITORY_SUFFIX = {"image": "", "env": "-env", "base": "-base"}


class BadNamespace(ValueError):
    """NUMERAI_SANDBOX_NAMESPACE cannot name Docker images."""


def namespace() -> str:
    """NUMERAI_SANDBOX_NAMESPACE, else numerai-sandbox: what keeps one user's (or CI job's, or test run's)
    images and sandboxes apart from another's on a shared engine. Our images are named after it, the
    containers we start carry it as a label, and every command finds, lists, pushes, removes and cleans
    only what its namespace holds (a leaked container, whose process is gone, is anyone's to sweep)."""
    value = os.environ.get(NAMESPACE_ENV, "").strip() or APP
    if len(value) > 100 or not NAMESPACE_PATTERN.fullmatch(value):
        raise BadNamespace(f"{NAMESPACE_ENV}={value!r} cannot name Docker images: use lower-case letters and "
                           "digits, separated by single '.', '_' or '-' (e.g. ci-job-42), at most 100 characters")
    return value


def repository(kind: str = "image", space: str | None = None) -> str:
    """The repository our images of a kind go under: NAMESPACE (runtime images), NAMESPACE-env
    (environments), NAMESPACE-base (base root filesystems); `space` defaults to this process's namespace."""
    return (space or namespace()) + REPOSITORY_SUFFIX[kind]


def in_namespace(labels: dict[str, str]) -> bool:
    """Whether a container of ours belongs to this namespace (one from before namespaces: the default's)."""
    return (labels or {}).get(NAMESPACE_LABEL, APP) == namespace()


def cache_dir() -> Path:
    """NUMERAI_SANDBOX_CACHE, else $XDG_CACHE_HOME/numerai-sandbox, else ~/.cache/numerai-sandbox."""
    explicit = os.environ.get("NUMERAI_SANDBOX_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / APP


def file_sha256(path: Path) -> str:
    """The file's SHA-256, read in 1 MiB blocks (models and root filesystems can be gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(path: Path) -> dict:
    """What a cached file is, to know it again: its sha256 and size, and its stamp when hashed (see `changed`)."""
    stamp = _stamp(path)
    return {"sha256": file_sha256(path), "size": stamp[0], "stamp": stamp}


def changed(path: Path, recorded: dict) -> str | None:
    """Why the file at `path` is not the one `recorded` (a `fingerprint`) describes, or None when it is.

    Its sha256 is read again only when the file was written since it was recorded: any write changes a
    file's ctime (which no tool sets back) and so its stamp (size, mtime, ctime, inode)."""
    try:
        stamp = _stamp(path)
    except FileNotFoundError:
        return "is missing"
    if stamp == recorded.get("stamp"):
        return None
    if stamp[0] != recorded.get("size"):
        return f"is {stamp[0]:,} bytes, not the {recorded.get('size', 0):,} recorded (truncated or altered)"
    if file_sha256(path) != recorded.get("sha256"):
        return "does not have the sha256 recorded (altered)"
    return None


def _stamp(path: Path) -> list[int]:
    found = os.stat(path)
    return [found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino]


def ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[None]:
    """An exclusive lock shared by every numerai-sandbox process on this machine.

    Concurrent runs that need the same image or the same synthetic data wait for
    the first one to make it instead of both writing it.
    """
    from filelock import FileLock  # portable (flock, or Windows' locking); imported only by those who lock

    with FileLock(ensure_dir(cache_dir() / "locks") / f"{name}.lock"):
        yield


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def hostname() -> str:
    return socket.gethostname()


def user_id() -> str:
    """Who runs this process: the uid where there is one (POSIX), else the login name (Windows)."""
    if hasattr(os, "getuid"):
        return str(os.getuid())
    import getpass

    return getpass.getuser()
