"""The local wheelhouse: every wheel an image needs, downloaded once while online.

`images fetch` is the only step that touches the network; it asks pip for wheels
built for the target Python and platform (not the host's), so one host can fill
the wheelhouse for every image. `images build` then only reads from here, and
names exactly what is missing when it cannot.
"""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection

from ..support.paths import cache_dir, ensure_dir
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
    """Download every missing wheel of the pin set, or of `only`, a part of it (the network step).

    `from_source` ("name==version") have no wheel for this Python: sourcebuild makes them next."""
    wanted = pins.all if only is None else only
    before = inventory(pins, only)
    to_download = [m for m in before.missing if m not in from_source]
    if not to_download:
        progress(f"wheelhouse py{pins.python}: all {len(wanted) - len(before.missing)} wheels already cached")
        return before
    target = ensure_dir(wheel_dir(pins.python))
    requirements = target / f".request-{pins.tag_profile}.txt"
    requirements.write_text("\n".join(to_download) + "\n")
    progress(f"wheelhouse py{pins.python}: downloading {len(to_download)} of {len(wanted)} wheels "
             f"into {target}")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "off",
               "--disable-pip-version-check", "--dest", str(target), *pip_target_options(pins.python),
               "-r", str(requirements)]
    tail: list[str] = []
    count = 0
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-15:]
            if line.startswith("Collecting "):
                count += 1
                progress(f"[{count}/{len(to_download)}] {line.split()[1]}")
            elif line.lstrip().startswith("Downloading ") and "(" in line:
                progress(f"    downloading {line.split()[1].rsplit('/', 1)[-1]} {line[line.rfind('('):]}")
    requirements.unlink(missing_ok=True)
    after = inventory(pins, only)
    missing = [m for m in after.missing if m not in from_source]
    if proc.returncode != 0 or missing:
        errors = [t for t in tail if "ERROR" in t or "No matching" in t] or tail[-3:]
        raise WheelhouseError(f"pip could not download {len(missing)} wheel(s) "
                              f"({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}): "
                              + " | ".join(e.strip() for e in errors[:3]))
    return after
