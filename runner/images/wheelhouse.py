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

from ..paths import cache_dir, ensure_dir
from .pins import PinSet, normalize

GLIBC_MINOR = 36  # Debian bookworm; trixie's is newer, so these wheels load there too

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
    platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, 4, -1)]
    platforms += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"]
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


def inventory(pins: PinSet) -> Inventory:
    """Which of the pinned wheels are in the wheelhouse."""
    have = _index(wheel_dir(pins.python))
    present, missing = {}, []
    for name, version in pins.all.items():
        path = have.get((name, version))
        if path is None:
            missing.append(f"{name}=={version}")
        else:
            present[name] = path
    return Inventory(present, missing)


def fetch(pins: PinSet, progress: Progress, from_source: Collection[str] = ()) -> Inventory:
    """Download every missing wheel of the pin set (the network step).

    `from_source` ("name==version") have no wheel for this Python: sourcebuild makes them next."""
    before = inventory(pins)
    wanted = [m for m in before.missing if m not in from_source]
    if not wanted:
        progress(f"wheelhouse py{pins.python}: all {len(pins.all) - len(before.missing)} wheels already cached")
        return before
    target = ensure_dir(wheel_dir(pins.python))
    requirements = target / f".request-{pins.tag_profile}.txt"
    requirements.write_text("\n".join(wanted) + "\n")
    progress(f"wheelhouse py{pins.python}: downloading {len(wanted)} of {len(pins.all)} wheels into {target}")
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
                progress(f"[{count}/{len(wanted)}] {line.split()[1]}")
            elif line.lstrip().startswith("Downloading ") and "(" in line:
                progress(f"    downloading {line.split()[1].rsplit('/', 1)[-1]} {line[line.rfind('('):]}")
    requirements.unlink(missing_ok=True)
    after = inventory(pins)
    missing = [m for m in after.missing if m not in from_source]
    if proc.returncode != 0 or missing:
        errors = [t for t in tail if "ERROR" in t or "No matching" in t] or tail[-3:]
        raise WheelhouseError(f"pip could not download {len(missing)} wheel(s) "
                              f"({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}): "
                              + " | ".join(e.strip() for e in errors[:3]))
    return after
