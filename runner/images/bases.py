"""Base images: a Linux root filesystem with CPython X and what the wheels need at run time.

Resolved in this order (the first that works wins):
1. a local `python:X-slim` image (Numerai's own base);
2. pulling `python:X-slim` when a registry is reachable;
3. an offline bootstrap: a Debian root filesystem made with debootstrap from this
   machine's Debian mirror, plus CPython X - Debian's own where the suite ships that
   version (bookworm: 3.11, trixie: 3.13, forky - testing: 3.14), otherwise a local CPython installation
   (--python-home, or one found under pyenv or uv).
Resolving happens in `images fetch` (the network step) and is recorded in the cache;
`images build` then only uses what the cache and the engine already hold.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import docker
import docker.errors
import psutil

from ..sandbox.ownership import labels_for
from ..sandbox.engine import temp_dir
from ..support.disk import disk_error
from ..support.machine import ARCH, PLATFORM, bootstrap_problem, elf_arch
from ..support.paths import LABEL, cache_dir, ensure_dir, file_sha256, repository

Progress = Callable[[str], None]

DEBIAN_PYTHON = {"3.11": "bookworm", "3.13": "trixie", "3.14": "forky"}
DEFAULT_SUITE = "bookworm"
RECIPE_VERSION = "1"  # bump when the bootstrap recipe changes
# Shared libraries a CPython build and the standard wheels load at run time (no compilers).
RUNTIME_PACKAGES = {
    "bookworm": ["libgomp1", "libssl3", "libffi8", "libsqlite3-0", "libreadline8", "libncursesw6",
                 "libbz2-1.0", "liblzma5", "zlib1g", "libuuid1", "libexpat1", "libnsl2", "libgdbm6",
                 "libcrypt1"],
    "trixie": ["libgomp1", "libssl3t64", "libffi8", "libsqlite3-0", "libreadline8t64", "libncursesw6",
               "libbz2-1.0", "liblzma5", "zlib1g", "libuuid1", "libexpat1", "libnsl2", "libgdbm6t64",
               "libcrypt1"],
    # Debian testing: no libnsl (nothing needs it since 3.13 dropped nis); libzstd for 3.14's compression.zstd.
    "forky": ["libgomp1", "libssl3t64", "libffi8", "libsqlite3-0", "libreadline8t64", "libncursesw6",
              "libbz2-1.0", "liblzma5", "zlib1g", "libuuid1", "libexpat1", "libgdbm6t64", "libcrypt1",
              "libzstd1"],
}
STDLIB_SMOKE = "import ssl, sqlite3, ctypes, lzma, bz2, zlib, decimal, uuid, json, socket, hashlib, pyexpat"
PRUNE = ["var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
         "usr/share/info", "usr/share/locale"]


class BaseError(Exception):
    pass


@dataclass
class BaseInfo:
    """A resolved base, as recorded in the cache (bases/py3.X/meta.json)."""

    python: str
    kind: str  # "local-image", "pulled", "debian", "local-python"
    python_bin: str  # the interpreter's path inside the base
    python_full: str
    digest: str
    description: str
    image: str | None = None  # for local-image/pulled: the engine's image id
    suite: str | None = None
    python_home: str | None = None
    created: float = 0.0

    @property
    def tag(self) -> str:
        return f"{repository('base')}:py{self.python}-{self.digest[:12]}"


def base_dir(python: str) -> Path:
    return cache_dir() / "bases" / f"py{python}"


def load(python: str) -> BaseInfo | None:
    meta = base_dir(python) / "meta.json"
    if not meta.exists():
        return None
    try:
        return BaseInfo(**json.loads(meta.read_text()))
    except (ValueError, TypeError):
        return None


def _save(info: BaseInfo) -> None:
    out = ensure_dir(base_dir(info.python))
    tmp = out / f"meta.json.{os.getpid()}"
    tmp.write_text(json.dumps(asdict(info), indent=1))
    tmp.rename(out / "meta.json")


# ---------------------------------------------------------------- fetch: resolve and create

def fetch(client: docker.DockerClient, python: str, progress: Progress,
          python_home: Path | None = None, allow_registry: bool = True) -> BaseInfo:
    """Resolve the base for Python `python` (network allowed) and record it in the cache."""
    if python_home is None:
        for ref in (f"python:{python}-slim",):
            image = _local_image(client, ref)
            if image is None and allow_registry:
                image = _pull(client, ref, progress)
                kind = "pulled"
            else:
                kind = "local-image"
            if image is not None:
                info = _describe_image(client, image, python, kind, ref)
                _save(info)
                return info
    cached = load(python)
    if cached and cached.kind in ("debian", "local-python") and (base_dir(python) / "rootfs.tar").exists() \
            and (python_home is None or cached.python_home == str(python_home)):
        progress(f"base py{python}: {cached.description} (cached)")
        return cached
    if python_home is None and python in DEBIAN_PYTHON:
        info = _bootstrap(python, DEBIAN_PYTHON[python], None, progress)
    else:
        home = python_home or find_local_python(python)
        if home is None:
            raise BaseError(f"no python:{python}-slim image, no registry, and Debian does not ship Python "
                            f"{python}: pass --python-home with a CPython {python} installation "
                            f"(e.g. `pyenv install {python}`)")
        info = _bootstrap(python, DEFAULT_SUITE, home, progress)
    _save(info)
    return info


def _local_image(client: docker.DockerClient, ref: str):
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def _pull(client: docker.DockerClient, ref: str, progress: Progress):
    progress(f"base: trying to pull {ref}")
    try:
        repository, tag = ref.split(":")
        return client.images.pull(repository, tag=tag, platform=PLATFORM)
    except docker.errors.DockerException as exc:
        why = getattr(exc, "explanation", None) or str(exc)
        why = "no registry reachable" if not why or "Internal Server Error" in str(exc) else why
        progress(f"base: cannot pull {ref} ({why.splitlines()[0][:120]}); bootstrapping offline")
        return None


def _describe_image(client: docker.DockerClient, image, python: str, kind: str, ref: str) -> BaseInfo:
    """Find the interpreter in an existing image (e.g. python:3.11-slim) with a network-less probe."""
    if image.attrs.get("Architecture", ARCH) != ARCH:
        raise BaseError(f"{ref} here is a {image.attrs['Architecture']} image, and Numerai runs {PLATFORM}: "
                        f"`docker pull --platform {PLATFORM} {ref}` while online, then fetch again")
    probe = ("import sys; print(sys.executable); print('.'.join(map(str, sys.version_info[:3])))")
    find = f'exec "$(command -v python{python} || command -v python3)" -c "{probe}"'
    try:
        out = client.containers.run(image.id, ["sh", "-c", find], entrypoint=[], network_mode="none",
                                    remove=True, labels=labels_for("probe"))
    except docker.errors.DockerException as exc:
        raise BaseError(f"{ref} has no working python3: {exc}") from exc
    executable, full = out.decode().split()
    if not full.startswith(python + "."):
        raise BaseError(f"{ref} holds Python {full}, not {python}")
    return BaseInfo(python, kind, executable, full, image.id.split(":")[-1],
                    f"{ref} ({kind}, Python {full})", image=image.id, created=time.time())


def find_local_python(python: str) -> Path | None:
    """A CPython `python` installation on this machine: pyenv first, then uv's managed interpreters."""
    roots = []
    pyenv = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    roots.append((Path(pyenv) / "versions", re.compile(rf"^{re.escape(python)}\.(\d+)$")))
    uv = Path(os.environ.get("UV_PYTHON_INSTALL_DIR") or Path.home() / ".local/share/uv/python")
    roots.append((uv, re.compile(rf"^cpython-{re.escape(python)}\.(\d+)-linux-[^-]+-gnu$")))
    found = []
    for root, pattern in roots:
        if not root.is_dir():
            continue
        for child in root.iterdir():
            match = pattern.match(child.name)
            if match and is_python_home(child, python):
                found.append((int(match.group(1)), child))
    return max(found)[1] if found else None


def is_python_home(home: Path, python: str) -> bool:
    return (home / "bin" / f"python{python}").exists() and (home / "lib" / f"python{python}" / "os.py").exists()


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (deb.debian.org when none is configured)."""
    candidates = [Path("/etc/apt/sources.list")] + sorted(Path("/etc/apt/sources.list.d").glob("*"))
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for match in re.finditer(r"(?:URIs:\s*|^deb\s+(?:\[[^\]]*\]\s+)?)(https?://\S+)", text, re.M):
            url = match.group(1)
            if "security" not in url and "/debian" in url:
                return url
    return "http://deb.debian.org/debian"


# debootstrap's stage lines (not its one-line-per-package ones).
_DEBOOTSTRAP_STAGE = re.compile(r"(packages|system)\.\.\.$|successfully|^I: Checking component|^I: Retrieving Packages")


def _run(command: list[str], progress: Progress, what: str) -> None:
    tail: list[str] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail = (tail + [line])[-10:]
            stage = line.startswith("I: ") and bool(_DEBOOTSTRAP_STAGE.search(line))
            if stage or line.startswith(("E: ", "W: ")):  # stages and problems, not one line per package
                progress(f"    {line[3:]}")
    if proc.returncode != 0:
        raise BaseError(f"{what} failed (exit {proc.returncode}): " + " | ".join(tail[-3:]))


def _debootstrap_script(suite: str) -> list[str]:
    """An older debootstrap lacks scripts for newer suites (bookworm's knows no forky): testing is made
    like unstable, so use sid's script then."""
    scripts = Path("/usr/share/debootstrap/scripts")
    return [] if (scripts / suite).exists() or not (scripts / "sid").exists() else ["sid"]


def _bootstrap(python: str, suite: str, home: Path | None, progress: Progress) -> BaseInfo:
    problem = bootstrap_problem(python, python_binary_arch=elf_arch(home / "bin" / f"python{python}") if home else None)
    if problem:
        raise BaseError(problem)
    if os.geteuid() != 0:
        raise BaseError("the offline base bootstrap needs root (debootstrap and chroot): run "
                        f"`sudo numerai-sandbox images fetch --python {python}`, or load a "
                        f"python:{python}-slim image into Docker")
    if shutil.which("debootstrap") is None:
        raise BaseError("debootstrap is not installed (apt-get install debootstrap)")
    if home is not None and not is_python_home(home, python):
        raise BaseError(f"{home} is not a CPython {python} installation (no bin/python{python})")
    packages = list(RUNTIME_PACKAGES[suite])
    if home is None:
        packages.append(f"python{python}")
    mirror = debian_mirror()
    source = f"Debian {suite}'s python{python}" if home is None else f"local CPython {home}"
    progress(f"base py{python}: debootstrap {suite} (minbase) from {mirror} + {source}")
    work = temp_dir("base")
    root = work / "rootfs"
    try:
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", suite, str(root),
              mirror, *_debootstrap_script(suite)], progress, "debootstrap")
        for relative in PRUNE:
            target = root / relative
            if target.is_dir():
                for child in target.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        if home is None:
            python_bin = f"/usr/bin/python{python}"
        else:
            python_bin = _install_python_home(root, home, python, progress)
        full = subprocess.run(["chroot", str(root), python_bin, "-c",
                               f"{STDLIB_SMOKE}; import sys; print('.'.join(map(str, sys.version_info[:3])))"],
                              capture_output=True, text=True)
        if full.returncode != 0:
            raise BaseError(f"Python {python} in the new base cannot load its standard library: "
                            + (full.stderr.strip().splitlines() or ["?"])[-1])
        full_version = full.stdout.strip()
        progress(f"base py{python}: Python {full_version} works; packing the root filesystem")
        tarball = ensure_dir(base_dir(python)) / f"rootfs.tar.{os.getpid()}"
        for left in base_dir(python).glob("rootfs.tar.*"):  # a bootstrap killed while packing left it
            if left.suffix[1:].isdigit() and not psutil.pid_exists(int(left.suffix[1:])):
                left.unlink(missing_ok=True)
        packed = subprocess.run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(tarball), "."],
                                capture_output=True, text=True)
        if packed.returncode != 0:
            tarball.unlink(missing_ok=True)  # whole or not at all
            said = packed.stderr.strip()
            if "No space left" in said or "Disk quota" in said:
                raise disk_error(tarball, "tar could not pack the base's root filesystem")
            raise BaseError(f"tar could not pack the base's root filesystem into {tarball}: {said[-300:]}")
        digest = file_sha256(tarball)
        tarball.rename(base_dir(python) / "rootfs.tar")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    kind = "debian" if home is None else "local-python"
    return BaseInfo(python, kind, python_bin, full_version, digest,
                    f"Debian {suite} minbase + {source} (Python {full_version})", suite=suite,
                    python_home=str(home) if home else None, created=time.time())


def _install_python_home(root: Path, home: Path, python: str, progress: Progress) -> str:
    """Copy a local CPython into /opt/python: its stdlib, not its tests, headers or site-packages."""
    progress(f"base py{python}: copying CPython from {home} into /opt/python")
    skip_dirs = {"test", "idle_test", "tests", "site-packages", "include", "pkgconfig",
                 "man", "share"}

    def ignore(directory: str, names: list[str]) -> set[str]:
        rel = Path(directory).relative_to(home)
        ignored = {n for n in names if n in skip_dirs} | \
                  {n for n in names if n.endswith(".a")}
        if rel == Path("bin"):
            ignored |= {n for n in names if n not in (f"python{python}", "python3", "python")}
        if rel == Path("lib") / f"python{python}":
            ignored |= {n for n in names if n.startswith("config-")}
        return ignored

    target = root / "opt" / "python"
    shutil.copytree(home, target, symlinks=True, ignore=ignore)
    ensure_dir(target / "lib" / f"python{python}" / "site-packages")
    conf = root / "etc" / "ld.so.conf.d" / "numerai-sandbox-python.conf"
    conf.write_text("/opt/python/lib\n")
    subprocess.run(["chroot", str(root), "ldconfig"], check=True)
    local_bin = ensure_dir(root / "usr" / "local" / "bin")
    for name in (f"python{python}", "python3"):
        link = local_bin / name
        if not link.exists():
            link.symlink_to(f"/opt/python/bin/python{python}")
    return f"/opt/python/bin/python{python}"


def fetch_debs(python: str, progress: Progress, packages: tuple[str, ...] = ("libgomp1",)) -> list[Path]:
    """Run-time libraries python:X-slim lacks, as .deb files the offline build unpacks."""
    out = ensure_dir(base_dir(python) / "debs")
    if shutil.which("apt-get") is None:
        raise BaseError("python:X-slim lacks libgomp1 (LightGBM/XGBoost need it) and this machine has no "
                        "apt-get to download it; use the offline bootstrap instead (images rm, then fetch "
                        "without a local python:X-slim image)")
    progress(f"base py{python}: downloading {', '.join(packages)} for the python:{python}-slim base")
    result = subprocess.run(["apt-get", "download", *packages], cwd=out, capture_output=True, text=True)
    if result.returncode != 0:
        raise BaseError(f"apt-get download {' '.join(packages)} failed: {result.stderr.strip()[-200:]}")
    return sorted(out.glob("*.deb"))


# ---------------------------------------------------------------- build: make sure the engine has it

def ensure_image(client: docker.DockerClient, info: BaseInfo, progress: Progress) -> str:
    """The engine's reference for this base, importing the cached root filesystem if needed (offline)."""
    if info.kind in ("local-image", "pulled"):
        try:
            client.images.get(info.image)
        except docker.errors.ImageNotFound as exc:
            raise BaseError(f"the base image {info.description} is gone from Docker: run "
                            f"`numerai-sandbox images fetch --python {info.python}`") from exc
        return info.image or ""
    try:
        client.images.get(info.tag)
        return info.tag
    except docker.errors.ImageNotFound:
        pass
    tarball = base_dir(info.python) / "rootfs.tar"
    if not tarball.exists():
        raise BaseError(f"the base root filesystem for Python {info.python} is not in the cache: run "
                        f"`numerai-sandbox images fetch --python {info.python}`")
    progress(f"base py{info.python}: importing {tarball} into Docker")
    repository, tag = info.tag.split(":")
    labels = {f"{LABEL}.kind": "base", f"{LABEL}.python": info.python,
              f"{LABEL}.python-full": info.python_full, f"{LABEL}.digest": info.digest,
              f"{LABEL}.description": info.description}
    changes = [f'LABEL {k}="{v}"' for k, v in labels.items()] + [
        "ENV LANG=C.UTF-8", "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"]
    client.api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=changes)
    return info.tag
