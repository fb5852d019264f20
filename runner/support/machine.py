"""The machine numerai-sandbox runs on, against the one Numerai runs models on: linux/amd64.

Images are built and run as linux/amd64 everywhere. On another architecture (an arm64 Mac or
Linux machine) the engine emulates amd64: verdicts still hold, timings do not, and the run says
so. A base root filesystem can only be made offline from amd64 parts.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

PLATFORM = "linux/amd64"  # Numerai's
ARCH = "amd64"
_ALIASES = {"x86_64": "amd64", "amd64": "amd64", "x64": "amd64", "aarch64": "arm64", "arm64": "arm64",
            "armv8": "arm64", "i386": "386", "i686": "386", "x86": "386"}
# ELF e_machine values of the architectures a CPython build may be made for.
_ELF_MACHINES = {0x3E: "amd64", 0xB7: "arm64", 0x03: "386", 0x28: "arm", 0x14: "ppc", 0x15: "ppc64",
                 0x16: "s390x", 0xF3: "riscv64"}


def local_cores() -> int:
    """This process's cores: those it may run on (its affinity), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def arch(machine: str | None = None) -> str:
    """An architecture by Docker's name (amd64, arm64, ...): `machine` as platform.machine() spells it."""
    name = (platform.machine() if machine is None else machine).lower()
    return _ALIASES.get(name, name)


def emulation_note(machine: str | None = None) -> str | None:
    """What to tell a person whose runs are emulated, or None on an amd64 machine."""
    here = arch(machine)
    if here == ARCH:
        return None
    return (f"emulated: {PLATFORM} images on this {here} machine (verdicts hold; times are slower than on "
            "Numerai's)")


def elf_arch(path: Path) -> str | None:
    """The architecture an ELF executable was built for, or None when it is not a readable ELF file."""
    try:
        with open(path, "rb") as handle:
            header = handle.read(20)
    except OSError:
        return None
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    order = "little" if header[5] == 1 else "big"
    number = int.from_bytes(header[18:20], order)
    return _ELF_MACHINES.get(number, f"elf machine {number:#x}")


def bootstrap_problem(python: str, machine: str | None = None, python_binary_arch: str | None = None,
                      system: str | None = None) -> str | None:
    """Why an offline base (debootstrap, plus a local CPython whose executable is `python_binary_arch`)
    cannot be made for Numerai's platform on this machine, with what to do instead; None when it can.
    `machine` and `system` default to this machine's (platform.machine(), platform.system())."""
    pull = (f"`docker pull --platform {PLATFORM} python:{python}-slim` while online, then `numerai-sandbox images "
            f"fetch --python {python}`")
    here, system = arch(machine), system or platform.system()
    if system != "Linux":
        return f"the offline base bootstrap (debootstrap, chroot) needs Linux, not {system}: use Numerai's base: {pull}"
    if here != ARCH:
        return (f"this {here} machine cannot bootstrap a {PLATFORM} base offline (debootstrap makes root "
                f"filesystems for the machine's own architecture): use Numerai's base instead: {pull}")
    if python_binary_arch is not None and python_binary_arch != ARCH:
        return (f"that CPython {python} is built for {python_binary_arch}, and Numerai runs {PLATFORM}: pass "
                f"--python-home with an x86_64 build (e.g. `uv python install cpython-{python}-linux-x86_64-gnu`), "
                f"or use Numerai's base: {pull}")
    return None
