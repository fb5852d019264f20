"""The local wheelhouse: every wheel an image needs, downloaded once while online.

`images fetch` is the only step that touches the network; it asks pip for wheels
built for the target Python and platform (not the host's), so one host can fill
the wheelhouse for every image. `images build` then only reads from here, and
names exactly what is missing when it cannot.

Every wheel enters the wheelhouse whole: pip downloads into a staging folder beside it,
and each wheel is moved into place by a rename once pip is done, its sha256 recorded in
the folder's SHA256SUMS. A fetch killed midway leaves only its staging folder (the next
fetch removes it), never a cut-short wheel under a real name. A wheel truncated or altered
afterwards no longer matches its sha256: `images fetch` fetches it again, and a build
refuses to start with it, naming it (pip inside the build would fail with a confusing
error about a bad zip file).
"""

from __future__ import annotations

import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Iterable

import psutil

from ..support.disk import disk_error
from ..support.paths import cache_dir, ensure_dir, file_lock, file_sha256
from .pinfiles import normalize
from .pins import PinSet
from .pypi import linux_platforms

Progress = Callable[[str], None]


class WheelhouseError(Exception):
    pass


def machine() -> str:
    arch = platform.machine()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(arch.lower(), arch)


def pip_target_options(python: str) -> list[str]:
    """pip options selecting wheels for CPython `python` on manylinux for this machine's arch."""
    arch = machine()
    nodot = python.replace(".", "")
    platforms = linux_platforms(arch)
    options = ["--only-binary=:all:", "--python-version", python, "--implementation", "cp",
               "--abi", f"cp{nodot}", "--abi", "abi3", "--abi", "none"]
    for tag in platforms:
        options += ["--platform", tag]
    return options


def wheel_dir(python: str) -> Path:
    return cache_dir() / "wheels" / f"py{python}"


_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def wheel_name_version(path: Path) -> tuple[str, str] | None:
    """(normalised name, version) of a wheel file, from its name."""
    match = _WHEEL.match(path.name)
    return (normalize(match["name"]), match["version"]) if match else None


def _index(directory: Path) -> dict[tuple[str, str], Path]:
    found = {}
    if directory.is_dir():
        for path in directory.glob("*.whl"):
            key = wheel_name_version(path)
            if key:
                found[key] = path
    return found


@dataclass
class Inventory:
    present: dict[str, Path]
    missing: list[str]


def inventory(pins: PinSet, only: dict[str, str] | None = None) -> Inventory:
    """Which of the pinned wheels (or of `only`, a part of them) are in the wheelhouse."""
    have = _index(wheel_dir(pins.python))
    present, missing = {}, []
    for name, version in (pins.all if only is None else only).items():
        path = have.get((name, version))
        if path is None:
            missing.append(f"{name}=={version}")
        else:
            present[name] = path
    return Inventory(present, missing)


def download_sizes(python: str, pins: dict[str, str]) -> dict[str, int | None]:
    """{name: bytes of the wheel pip will download} for pins on Python `python`: from the distribution map,
    else asked of PyPI (online; None where neither tells)."""
    from concurrent.futures import ThreadPoolExecutor

    from . import numerai, pypi

    sizes: dict[str, int | None] = {}
    for name, version in pins.items():
        dist = numerai.distribution(name, version)
        sizes[name] = dist.sizes.get(python) if dist else None

    def ask(name: str) -> int | None:
        try:
            wheel = pypi.best_wheel(pypi.project_files(name, timeout=10), pins[name], python, machine())
        except pypi.PyPIError:
            return None
        return int(wheel["size"]) if wheel and wheel.get("size") else None

    unknown = [name for name, size in sizes.items() if size is None]
    if unknown:
        with ThreadPoolExecutor(8) as pool:
            sizes.update(zip(unknown, pool.map(ask, unknown)))
    return sizes


def fetch(pins: PinSet, progress: Progress, only: dict[str, str] | None = None,
          from_source: Collection[str] = ()) -> Inventory:
    """Download every missing wheel of the pin set, or of `only`, a part of it (the network step); a cached
    wheel that is not what was downloaded (see `damaged`) is removed and downloaded again.

    `from_source` ("name==version") have no wheel for this Python: sourcebuild makes them next."""
    wanted = pins.all if only is None else only
    sweep_staging(pins.python)
    before = inventory(pins, only)
    for bad in damaged(pins.python, before.present.values()):
        progress(f"wheelhouse py{pins.python}: {bad}; fetching it again")
        bad.path.unlink(missing_ok=True)
        before = inventory(pins, only)
    to_download = [m for m in before.missing if m not in from_source]
    if not to_download:
        progress(f"wheelhouse py{pins.python}: all {len(wanted) - len(before.missing)} wheels already cached")
        return before
    target = ensure_dir(wheel_dir(pins.python))
    staging = target / f"{STAGING}{os.getpid()}-{secrets.token_hex(3)}"
    try:
        staging.mkdir()
        requirements = staging / "requirements.txt"
        requirements.write_text("\n".join(to_download) + "\n")
        progress(f"wheelhouse py{pins.python}: downloading {len(to_download)} of {len(wanted)} wheels "
                 f"into {target}")
        code, tail = _pip_download(staging, requirements, pins.python, len(to_download), progress)
        if code != 0 and any("No space left" in line or "[Errno 28]" in line for line in tail):
            raise disk_error(target, "pip could not write the wheels it downloaded")
        _move_in(pins.python, sorted(staging.glob("*.whl")), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    after = inventory(pins, only)
    missing = [m for m in after.missing if m not in from_source]
    if code != 0 or missing:
        errors = [t for t in tail if "ERROR" in t or "No matching" in t] or tail[-3:]
        raise WheelhouseError(f"pip could not download {len(missing)} wheel(s) "
                              f"({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}): "
                              + " | ".join(e.strip() for e in errors[:3]))
    return after


def _pip_download(staging: Path, requirements: Path, python: str, count: int,
                  progress: Progress) -> tuple[int, list[str]]:
    """pip download into `staging`: (its exit code, its last lines). pip dies with this process (a kill -9
    of `images fetch` leaves no download going on), and is stopped when this process is interrupted."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "off",
               "--disable-pip-version-check", "--dest", str(staging), *pip_target_options(python),
               "-r", str(requirements)]
    tail: list[str] = []
    done = 0
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          preexec_fn=_die_with_parent if sys.platform == "linux" else None) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                line = line.rstrip()
                tail = (tail + [line])[-15:]
                if line.startswith("Collecting "):
                    done += 1
                    progress(f"[{done}/{count}] {line.split()[1]}")
                elif line.lstrip().startswith("Downloading ") and "(" in line:
                    progress(f"    downloading {line.split()[1].rsplit('/', 1)[-1]} {line[line.rfind('('):]}")
        except BaseException:
            proc.kill()
            raise
    return proc.returncode, tail


def _die_with_parent() -> None:
    """In pip's process, before it starts: be killed when numerai-sandbox's process dies (Linux)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# ---------------------------------------------------------------- whole wheels, and their sha256

STAGING = ".fetch-"  # a fetch's staging folder in the wheelhouse: .fetch-<pid>-<random>
MANIFEST = "SHA256SUMS"  # "<sha256>  <wheel file name>" per line, as sha256sum writes them


@dataclass(frozen=True)
class Damaged:
    """A cached wheel that is not what was downloaded."""

    path: Path
    why: str

    def __str__(self) -> str:
        return f"the cached wheel {self.path} {self.why}"


def recorded(python: str) -> dict[str, str]:
    """{wheel file name: sha256} as recorded when the wheels entered the wheelhouse."""
    try:
        lines = (wheel_dir(python) / MANIFEST).read_text().splitlines()
    except FileNotFoundError:
        return {}
    pairs = (line.split(None, 1) for line in lines if line.strip())
    return {name.strip().lstrip("*"): digest for digest, name in pairs}


def record(python: str, digests: dict[str, str]) -> None:
    """Add {wheel file name: sha256} to the wheelhouse's SHA256SUMS (written whole, under the lock)."""
    with file_lock(f"wheels-py{python}"):
        known = recorded(python) | digests
        manifest = ensure_dir(wheel_dir(python)) / MANIFEST
        partial = manifest.with_name(f".{MANIFEST}.{os.getpid()}")
        try:
            partial.write_text("".join(f"{digest}  {name}\n" for name, digest in sorted(known.items())))
            partial.replace(manifest)
        finally:
            partial.unlink(missing_ok=True)


def _move_in(python: str, wheels: list[Path], target: Path) -> None:
    """Downloaded wheels into the wheelhouse, each by a rename, its sha256 recorded first."""
    record(python, {wheel.name: file_sha256(wheel) for wheel in wheels})
    for wheel in wheels:
        wheel.replace(target / wheel.name)


def add_wheel(python: str, wheel: Path) -> Path:
    """A wheel made here (sourcebuild) into the wheelhouse: copied beside it, recorded, renamed into place."""
    target = ensure_dir(wheel_dir(python))
    partial = target / f"{STAGING}{os.getpid()}-{wheel.name}.partial"
    try:
        shutil.copy2(wheel, partial)
        record(python, {wheel.name: file_sha256(partial)})
        partial.replace(target / wheel.name)
    finally:
        partial.unlink(missing_ok=True)
    return target / wheel.name


def damaged(python: str, wheels: Iterable[Path]) -> list[Damaged]:
    """The wheels that are not what entered the wheelhouse: another sha256 than the one recorded then. One
    that entered before sha256s were recorded is read as a zip (every member's CRC: a cut-short or altered
    file fails) and, when whole, recorded from then on."""
    known = recorded(python)
    bad, whole = [], {}
    for wheel in wheels:
        expected = known.get(wheel.name)
        digest = file_sha256(wheel)
        if expected is not None:
            if digest != expected:
                bad.append(Damaged(wheel, f"is not the file that was downloaded (sha256 {digest[:12]}..., "
                                          f"recorded {expected[:12]}...): truncated or altered since"))
        elif _whole_zip(wheel):
            whole[wheel.name] = digest
        else:
            bad.append(Damaged(wheel, "is not a whole wheel (its zip archive is cut short or damaged)"))
    if whole:
        try:
            record(python, whole)
        except OSError:  # a full or read-only cache: checked again next time, the verdict on them stands
            pass
    return bad


def _whole_zip(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError, ValueError, RuntimeError):
        return False


def sweep_staging(python: str) -> list[Path]:
    """Staging folders (and partial copies) of fetches whose process is gone: a fetch killed midway."""
    removed = []
    for path in wheel_dir(python).glob(f"{STAGING}*"):
        pid = path.name[len(STAGING):].split("-", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed
