"""Environments for the process sandbox: an image's pins in a virtual environment of a Python on this host.

Where no engine can run our images (a notebook on Colab or Kaggle), the harness runs under a
host Python instead (runner.sandbox.process), in a virtual environment holding exactly the
wheels the image for that Python holds, from the same wheelhouse `images fetch` fills. It is
made by uv, offline: no index, no resolution (--no-deps: the lock is the whole environment, as
in the image), no uv cache (the wheels are unpacked straight into it, so no file is shared with
another environment a model could write through). The harness's own lock check (--verify) then
passes or the build fails, as the image's build does.

Like an image, an environment is named by a digest of its inputs (the interpreter, the lock,
this recipe), so an unchanged one is reused and a changed one is made anew beside it:
    <cache>/venvs/py3.11-standard-<digest[:12]>/     complete, with venv.json saying what it is
It is made under <cache>/venvs/.building-<digest[:12]>-<pid>-<random>/ and renamed into place
when complete (uv makes it relocatable), so a killed build leaves only a .building folder, which
the next build of that digest removes; a half-made environment is never found, let alone used.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Callable

from ..support.paths import cache_dir, ensure_dir, file_lock
from . import wheelhouse
from .pins import PinSet

Progress = Callable[[str], None]
# What an environment is made with; change it when the steps below change what they make.
RECIPE = ("uv venv --relocatable; uv pip install --offline --no-index --no-deps --no-cache --link-mode copy "
          "-r requirements.lock; python -I harness.py --verify requirements.lock; python -m compileall (named "
          "for the final folder, tests left out)")
BUILDING = ".building-"
METADATA = "venv.json"
TESTS = r"[/\\]tests?[/\\]"  # compileall -x: the folders of packages' own tests
UV_SECONDS = 600  # the slowest machine unpacking a 1 GB environment
# Describes an interpreter from inside it: its base interpreter when it is itself a virtual environment's.
DESCRIBE = r"""
import json, os, sys
base = getattr(sys, "_base_executable", "") or ""
if sys.prefix != sys.base_prefix and (not base or base.startswith(sys.prefix)):
    base = os.path.join(sys.base_prefix, "bin", "python%d.%d" % sys.version_info[:2])
print(json.dumps({"executable": os.path.realpath(base or sys.executable), "implementation": sys.implementation.name,
                  "version": "%d.%d.%d" % sys.version_info[:3], "build": sys.version}))
"""


class VenvUnavailable(Exception):
    """The environment cannot be made here (wheels not fetched, another Python, no uv): never the model's
    fault; the message says what to do."""


@dataclass(frozen=True)
class Interpreter:
    """A CPython on this host, as it describes itself."""

    executable: Path  # the base interpreter (never a virtual environment's), symlinks resolved
    version: str  # 3.11.7
    implementation: str  # cpython
    build: str  # sys.version: the compiler and build date tell two builds of 3.11.7 apart

    @property
    def python(self) -> str:
        """The minor version, as images name Pythons (3.11)."""
        return ".".join(self.version.split(".")[:2])


@dataclass(frozen=True)
class Venv:
    """A complete environment: its folder, its Python, and what it was made from."""

    path: Path
    interpreter: Interpreter
    pins: PinSet
    digest: str
    built_seconds: float | None = None  # how long this call took to make it; None when it was found made

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def interpreter(path: Path | None = None) -> Interpreter:
    """The interpreter at `path` (default: the one running this), or VenvUnavailable when it does not run."""
    executable = str(path or sys.executable)
    try:
        done = subprocess.run([executable, "-I", "-S", "-c", DESCRIBE], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VenvUnavailable(f"cannot run the Python at {executable}: {exc}") from exc
    if done.returncode != 0:
        raise VenvUnavailable(f"the Python at {executable} does not run: {done.stderr.strip()[-300:]}")
    facts = json.loads(done.stdout)
    return Interpreter(Path(facts["executable"]), facts["version"], facts["implementation"], facts["build"])


def interpreter_for(python: str) -> Interpreter | None:
    """A CPython `python` (3.11) on this host: the one running this first, then pythonX.Y on PATH, then
    pyenv's and the usual prefixes'; None when there is none."""
    import glob

    running = interpreter()
    if running.python == python and running.implementation == "cpython":
        return running
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(f"python{python}"), *sorted(glob.glob(str(pyenv / "versions" / f"{python}.*" / "bin" /
                                                                      f"python{python}")), reverse=True),
                  f"/usr/local/bin/python{python}", f"/usr/bin/python{python}"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            try:
                found = interpreter(Path(candidate))
            except VenvUnavailable:
                continue
            if found.python == python and found.implementation == "cpython":
                return found
    return None


def venvs_root() -> Path:
    return cache_dir() / "venvs"


def venv_digest(python: Interpreter, pins: PinSet) -> str:
    """The environment's inputs: the interpreter (where it is, which build), the machine, the lock, the recipe."""
    digest = hashlib.sha256()
    for part in (RECIPE, str(python.executable), python.implementation, python.build, wheelhouse.machine(),
                 pins.lock_text()):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def venv_dir(pins: PinSet, digest: str) -> Path:
    return venvs_root() / f"py{pins.python}-{pins.tag_profile}-{digest[:12]}"


def find(pins: PinSet, python: Interpreter) -> Venv | None:
    """The complete environment for these pins and this interpreter, if it was made."""
    digest = venv_digest(python, pins)
    path = venv_dir(pins, digest)
    try:
        recorded = json.loads((path / METADATA).read_text())
    except (OSError, ValueError):
        return None
    if recorded.get("digest") != digest or not (path / "bin" / "python").exists():
        return None
    return Venv(path, python, pins, digest)


def uv_binary() -> Path:
    """uv: the one our `uv` dependency installs, else one on PATH."""
    try:
        from uv import find_uv_bin

        return Path(find_uv_bin())
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found:
            return Path(found)
    raise VenvUnavailable("uv is not installed: `pip install uv` (numerai-sandbox depends on it)")


def ensure(pins: PinSet, python: Interpreter | None = None, progress: Progress = lambda line: None) -> Venv:
    """The environment for these pins under `python` (default: the running interpreter): found, or made
    offline from the wheelhouse. VenvUnavailable says what is missing and what to run."""
    python = python or interpreter()
    if python.implementation != "cpython":
        raise VenvUnavailable(f"{python.executable} is {python.implementation}; Numerai's images run CPython")
    if python.python != pins.python:
        raise VenvUnavailable(f"{python.executable} is Python {python.version}; these pins are for Python "
                              f"{pins.python}: give a Python {pins.python} interpreter")
    digest = venv_digest(python, pins)
    with file_lock(f"venv-{digest[:12]}"):
        found = find(pins, python)
        if found is not None:
            return found
        stock = wheelhouse.inventory(pins)
        if stock.missing:
            shown = ", ".join(stock.missing[:4]) + (f" and {len(stock.missing) - 4} more"
                                                    if len(stock.missing) > 4 else "")
            profile = "" if pins.profile == "standard" else f" --profile {pins.profile}"
            raise VenvUnavailable(f"the wheel cache for Python {pins.python} ({pins.tag_profile}) lacks {shown}: "
                                  f"run `numerai-sandbox images fetch --python {pins.python}{profile}` once online")
        root = ensure_dir(venvs_root())
        for stale in root.glob(f"{BUILDING}{digest[:12]}-*"):  # a killed build's (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        staging = root / f"{BUILDING}{digest[:12]}-{os.getpid()}-{secrets.token_hex(4)}"
        started = time.monotonic()
        progress(f"making the Python {python.version} environment ({pins.tag_profile}, {len(stock.present)} "
                 f"wheels) with uv, offline")
        try:
            _make(staging, venv_dir(pins, digest), python, pins, stock)
            seconds = time.monotonic() - started
            _record(staging, python, pins, digest, seconds)
            os.rename(staging, venv_dir(pins, digest))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        progress(f"made {venv_dir(pins, digest).name} in {seconds:.1f}s")
        return Venv(venv_dir(pins, digest), python, pins, digest, built_seconds=seconds)


def _make(staging: Path, final: Path, python: Interpreter, pins: PinSet, stock: wheelhouse.Inventory) -> None:
    uv = uv_binary()
    # uv reads nothing of the user's (no config file, no UV_* variable), downloads no Python, uses no index.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(Path.home()), "LANG": "C.UTF-8",
           "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    _uv([str(uv), "venv", str(staging), "--python", str(python.executable), "--relocatable", "--no-config",
         "--offline", "--quiet"], env)
    lock = staging / "requirements.lock"
    lock.write_text(pins.lock_text())
    wheels = sorted({str(path.parent) for path in stock.present.values()})
    _uv([str(uv), "pip", "install", "--python", str(staging / "bin" / "python"), "--offline", "--no-index",
         "--no-deps", "--no-cache", "--link-mode", "copy", "--no-config", "--quiet",
         *[f"--find-links={folder}" for folder in wheels], "-r", str(lock)], env)
    harness = resources.files("runner.sandbox").joinpath("harness.py")
    with resources.as_file(harness) as script:
        check = subprocess.run([str(staging / "bin" / "python"), "-I", str(script), "--verify", str(lock)],
                               capture_output=True, text=True, timeout=UV_SECONDS)
    if check.returncode != 0:
        raise VenvUnavailable(f"the environment does not hold exactly the lock: {check.stderr.strip()[-600:]}")
    # Bytecode, as pip makes it in the image: the harness runs with -B, so modules never compiled would be
    # compiled again on every run (pandas alone: most of a second). Named for the final folder, so the
    # tracebacks of library code name files that exist once it is renamed. The packages' own test suites
    # (a third of the files, never imported by a model) are left out; a file that does not compile is
    # left as it is, as pip leaves it.
    subprocess.run([str(staging / "bin" / "python"), "-I", "-m", "compileall", "-q", "-j", "0", "-x", TESTS,
                    "-s", str(staging), "-p", str(final), str(staging / "lib")], capture_output=True,
                   timeout=UV_SECONDS)


def _uv(command: list[str], env: dict[str, str]) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=UV_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VenvUnavailable(f"uv failed: {exc}") from exc
    if done.returncode != 0:
        raise VenvUnavailable(f"`uv {command[1]}` failed: {(done.stderr or done.stdout).strip()[-800:]}")


def _record(staging: Path, python: Interpreter, pins: PinSet, digest: str, seconds: float) -> None:
    version = subprocess.run([str(uv_binary()), "--version"], capture_output=True, text=True).stdout.strip()
    record = {"digest": digest, "python": pins.python, "profile": pins.tag_profile,
              "interpreter": {"executable": str(python.executable), "version": python.version, "build": python.build},
              "packages": pins.all, "uv": version, "built_seconds": round(seconds, 2),
              "built": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (staging / METADATA).write_text(json.dumps(record, indent=1) + "\n")


@dataclass(frozen=True)
class Made:
    """An environment found in the cache, as its venv.json describes it (what `images list` shows)."""

    path: Path
    python: str  # 3.11
    python_full: str  # 3.11.7
    profile: str  # the tag profile: standard, full, auto-<digest>
    digest: str
    built: str
    size: int
    interpreter: str  # the base interpreter it was made for

    def to_dict(self) -> dict:
        return {"kind": "environment", "ref": self.path.name, "path": str(self.path), "python": self.python,
                "python_full": self.python_full, "profile": self.profile, "digest": self.digest, "built": self.built,
                "size_bytes": self.size, "interpreter": self.interpreter}


def made() -> list[Made]:
    """Every complete environment in the cache, by Python then profile (half-made ones are `leftovers`)."""
    root = venvs_root()
    found = []
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        try:
            record = json.loads((path / METADATA).read_text())
        except (OSError, ValueError):
            continue
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        found.append(Made(path, record.get("python", "?"), record.get("interpreter", {}).get("version", "?"),
                          record.get("profile", "?"), record.get("digest", ""), record.get("built", ""), size,
                          record.get("interpreter", {}).get("executable", "")))
    return found


def leftovers() -> list[Path]:
    """What no run can use: half-made environments whose builder is gone (a killed build), and environments
    whose interpreter is gone from this machine."""
    root = venvs_root()
    out = []
    for path in sorted(root.glob(f"{BUILDING}*")) if root.is_dir() else []:
        pid = path.name[len(BUILDING):].split("-")[1] if path.name.count("-") >= 3 else ""
        if not (pid.isdigit() and Path(f"/proc/{pid}").exists()):
            out.append(path)
    out += [m.path for m in made() if m.interpreter and not Path(m.interpreter).exists()]
    return out


def remove(paths: list[Path]) -> list[str]:
    """Remove these environments (each under its lock, so never one a build is making); their names."""
    gone = []
    for path in paths:
        if path.parent != venvs_root():
            raise ValueError(f"{path} is not an environment of ours")
        if path.name.startswith(BUILDING):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with file_lock(f"venv-{path.name[-12:]}"):
                shutil.rmtree(path, ignore_errors=True)
        gone.append(path.name)
    return gone
