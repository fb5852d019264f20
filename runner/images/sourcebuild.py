"""Pins with no wheel for the image's Python, built once from source while `images fetch` runs.

Numerai's Python 3.14 image builds scikit-learn 1.6.1 from source: that release has no cp314
wheel. We do the same, once, during the networked step, into the wheel cache, so `images build`
stays offline:

1. the host downloads the inputs: the source distribution (checked against the sha256 pinned
   here) and wheels of the build tools, all at exact versions, for the target Python;
2. a throwaway container from the image's own base installs a compiler with apt (the only
   networked step inside a container) and builds the wheel from those inputs alone (pip
   --no-index --no-build-isolation). The wheel is thus compiled against the very C library,
   libstdc++, OpenMP runtime and Python headers it will run with, whichever kind the base is;
   the compiler never reaches the base or the image;
3. a second container from the base, without network, installs the wheel with its run-time
   dependencies from the wheelhouse and runs a small fit: a broken build is caught here;
4. the wheel is kept under wheels/built/, in a folder named by the digest of every input
   (recipe, source, build tools, base), and linked into the wheelhouse. Same inputs, no rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from ..support.paths import cache_dir, ensure_dir, file_lock, file_sha256
from .pins import PinSet, normalize

Progress = Callable[[str], None]

RECIPE_VERSION = "1"  # bump when the build procedure below changes


class SourceBuildError(Exception):
    """A source build failed: which step, and the last lines it printed."""


@dataclass(frozen=True)
class Recipe:
    """How to build one pinned release from its source distribution."""

    name: str
    version: str
    sdist: str  # the file name on the package index
    sdist_sha256: str
    requires: tuple[str, ...]  # its run-time requirements (its wheels' Requires-Dist, extras left out)
    build_from_pins: tuple[str, ...]  # build requirements used at the image's own pinned versions
    tools: tuple[str, ...]  # every other build requirement, exact, with their dependencies
    apt: tuple[str, ...]  # system packages the build container needs (the compiler)
    check: str  # Python run with the installed wheel, offline, in the base: it must exit 0


SKLEARN_CHECK = """
import numpy as np, sklearn
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
X = np.random.default_rng(0).random((300, 6)); y = X @ np.arange(6.0)
model = HistGradientBoostingRegressor(max_iter=20).fit(X, y)  # Cython + OpenMP
assert abs(Ridge(alpha=1e-6).fit(X, y).coef_[5] - 5) < 1e-3
print("scikit-learn", sklearn.__version__, "fits and predicts:", model.predict(X[:2]).round(2))
"""

RECIPES: dict[str, tuple[Recipe, ...]] = {
    # Numerai's 3.14 image builds scikit-learn 1.6.1 from source (its Dockerfile installs a compiler).
    # Build tools: releases that support Python 3.14 and satisfy scikit-learn 1.6.1's build
    # requirements (meson-python>=0.16, Cython>=3.0.10, numpy>=2, scipy>=1.6), pinned so that
    # every machine compiles the same thing; numpy and scipy are the image's own.
    "3.14": (Recipe(
        "scikit-learn", "1.6.1", "scikit_learn-1.6.1.tar.gz",
        "b4fc2525eca2c69a59260f583c56a7557c6ccdf8deafdba6e060f94c1c59738e",
        requires=("numpy>=1.19.5", "scipy>=1.6.0", "joblib>=1.2.0", "threadpoolctl>=3.1.0"),
        build_from_pins=("numpy", "scipy"),
        tools=("cython==3.1.8", "meson-python==0.18.0", "meson==1.9.2", "ninja==1.13.0",
               "pyproject-metadata==0.9.1", "packaging==25.0"),
        apt=("build-essential",), check=SKLEARN_CHECK),),
}


def recipes_for(pins: PinSet) -> list[Recipe]:
    """The recipes these pins need: a pinned release that only exists as source for this Python."""
    return [r for r in RECIPES.get(pins.python, ()) if pins.all.get(r.name) == r.version]


def built_from_source(pins: PinSet) -> list[str]:
    """"name==version" of the pins that `ensure` builds (the wheelhouse does not download them)."""
    return [f"{r.name}=={r.version}" for r in recipes_for(pins)]


def from_source(python: str) -> dict[str, Recipe]:
    """{distribution: recipe} of the releases built from source for `python` (for the lock script)."""
    return {r.name: r for r in RECIPES.get(python, ())}


def _build_requirements(recipe: Recipe, pins: PinSet) -> list[str]:
    missing = [n for n in (*recipe.build_from_pins, "pip") if n not in pins.all]
    if missing:
        raise SourceBuildError(f"building {recipe.name} {recipe.version} needs {', '.join(missing)} pinned "
                               f"in the image's profile")
    return [f"{n}=={pins.all[n]}" for n in (*recipe.build_from_pins, "pip")] + list(recipe.tools)


def build_key(recipe: Recipe, pins: PinSet, base_digest: str) -> str:
    """The digest of everything the built wheel depends on: same key, same wheel."""
    parts = {"recipe": RECIPE_VERSION, "python": pins.python, "base": base_digest, "pip": pins.all.get("pip"),
             "build": _build_requirements(recipe, pins), "script": BUILD_SCRIPT, **asdict(recipe)}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def built_dir(python: str) -> Path:
    return cache_dir() / "wheels" / "built" / f"py{python}"


def tools_dir(python: str) -> Path:
    return cache_dir() / "wheels" / f"py{python}-build"


def _folder(recipe: Recipe, key: str, python: str) -> Path:
    """Where the wheel built from these inputs is kept."""
    return built_dir(python) / f"{normalize(recipe.name)}-{recipe.version}-{key[:16]}"


def cached_wheel(recipe: Recipe, key: str, python: str) -> Path | None:
    folder = _folder(recipe, key, python)
    found = sorted(folder.glob("*.whl")) if folder.is_dir() else []
    return found[0] if found else None


# ---------------------------------------------------------------- the build

# Runs as root in the build container (network on, for apt only). $1: the interpreter.
BUILD_SCRIPT = r"""
set -eu
PY="$1"; SDIST="$2"; shift 2
export DEBIAN_FRONTEND=noninteractive
echo "@@step installing the compiler (apt-get install $APT_PACKAGES)"
# A snapshot mirror's Release files outlive their Valid-Until; their signatures are still checked.
apt-get update -q -o Acquire::Retries=3 -o Acquire::Check-Valid-Until=false
apt-get install -y -q --no-install-recommends -o Acquire::Retries=3 $APT_PACKAGES
echo "@@step installing the build tools"
"$PY" -m venv --without-pip /build/venv
set -- /wheels/pip-*.whl
/build/venv/bin/python "$1/pip" install --no-index --no-deps --no-cache-dir --disable-pip-version-check \
    --progress-bar off --find-links /wheels --find-links /tools -r /inputs/build-requirements.txt
echo "@@step compiling"
export PATH="/build/venv/bin:$PATH" PIP_NO_CACHE_DIR=1
/build/venv/bin/python -m pip wheel -v --no-index --no-deps --no-build-isolation --disable-pip-version-check \
    --wheel-dir /out "/inputs/$SDIST"
chown -R "$OWNER" /out
"""

# Runs in a network-less container from the base: the wheel must install and work there.
CHECK_SCRIPT = r"""
set -eu
PY="$1"
"$PY" -m venv --without-pip /tmp/venv
set -- /wheels/pip-*.whl
/tmp/venv/bin/python "$1/pip" install -q --no-index --no-deps --no-cache-dir --disable-pip-version-check \
    --find-links /wheels --find-links /out -r /inputs/check-requirements.txt
/tmp/venv/bin/python /inputs/check.py
"""


def ensure(client, base, pins: PinSet, progress: Progress) -> list[Path]:
    """Every source-built wheel these pins need, in the wheelhouse: from the cache, or built now."""
    made = []
    for recipe in recipes_for(pins):
        key = build_key(recipe, pins, base.digest)
        with file_lock(f"srcbuild-py{pins.python}-{normalize(recipe.name)}"):
            wheel = cached_wheel(recipe, key, pins.python)
            if wheel is not None:
                progress(f"{recipe.name} {recipe.version} for Python {pins.python}: built from source before "
                         f"(cached {wheel.parent.name})")
            else:
                wheel = _build(client, base, pins, recipe, key, progress)
        made.append(_link(wheel, pins.python, recipe))
    return made


def _link(wheel: Path, python: str, recipe: Recipe) -> Path:
    """Put the built wheel in the wheelhouse (whole, its sha256 recorded), replacing one built from other inputs."""
    from .wheelhouse import add_wheel, wheel_dir, wheel_name_version

    wheelhouse = ensure_dir(wheel_dir(python))
    for other in wheelhouse.glob("*.whl"):
        if wheel_name_version(other) == (normalize(recipe.name), recipe.version) and other.name != wheel.name:
            other.unlink()
    target = wheelhouse / wheel.name
    if target.exists() and file_sha256(target) == file_sha256(wheel):
        return target
    return add_wheel(python, wheel)


def _build(client, base, pins: PinSet, recipe: Recipe, key: str, progress: Progress) -> Path:
    from . import bases
    from ..sandbox.engine import temp_dir
    from .wheelhouse import wheel_dir

    started = time.monotonic()
    label = f"{recipe.name} {recipe.version} for Python {pins.python}"
    progress(f"{label}: no wheel exists; building it from source once (a few minutes)")
    work = temp_dir("srcbuild")
    try:
        inputs, out = ensure_dir(work / "inputs"), ensure_dir(work / "out")
        _download_sdist(recipe, inputs / recipe.sdist, progress)
        _download_tools(recipe, pins, progress)
        (inputs / "build-requirements.txt").write_text("\n".join(_build_requirements(recipe, pins)) + "\n")
        (inputs / "check-requirements.txt").write_text(
            "\n".join([f"{recipe.name}=={recipe.version}"] + [f"{n}=={pins.all[n]}" for n in _runtime_closure(
                recipe, pins)]) + "\n")
        (inputs / "check.py").write_text(recipe.check)
        try:
            image = bases.ensure_image(client, base, progress)
        except bases.BaseError as exc:
            raise SourceBuildError(str(exc)) from exc
        mounts = {str(inputs): "/inputs", str(wheel_dir(pins.python)): "/wheels", str(tools_dir(pins.python)): "/tools",
                  str(out): "/out"}
        if base.kind == "local-python" and base.python_home:
            mounts[str(Path(base.python_home) / "include")] = "/opt/python/include"
        apt = list(recipe.apt) + ([f"python{pins.python}-dev"] if base.kind == "debian" else [])
        _container(client, image, ["sh", "-c", BUILD_SCRIPT, "build", base.python_bin, recipe.sdist],
                   mounts, {"APT_PACKAGES": " ".join(apt), "OWNER": f"{os.getuid()}:{os.getgid()}"},
                   network=True, label=f"building {label}", progress=progress)
        built = sorted(out.glob("*.whl"))
        if len(built) != 1:
            raise SourceBuildError(f"building {label} produced {len(built)} wheels, expected one")
        progress(f"{label}: built {built[0].name}; checking it installs and fits in the base, offline")
        _container(client, image, ["sh", "-c", CHECK_SCRIPT, "check", base.python_bin], mounts, {},
                   network=False, label=f"checking {label}", progress=progress)
        folder = _folder(recipe, key, pins.python)
        for leftover in ensure_dir(built_dir(pins.python)).glob(f".{normalize(recipe.name)}-*"):
            shutil.rmtree(leftover, ignore_errors=True)  # from an interrupted fetch (we hold the lock)
        staging = built_dir(pins.python) / f".{folder.name}.{os.getpid()}"
        staging.mkdir()
        shutil.move(str(built[0]), staging / built[0].name)
        seconds = time.monotonic() - started
        (staging / "meta.json").write_text(json.dumps({
            "key": key, "recipe": asdict(recipe), "build_requirements": _build_requirements(recipe, pins),
            "base": base.description, "base_digest": base.digest, "seconds": round(seconds),
            "built": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, indent=1))
        for older in built_dir(pins.python).glob(f"{normalize(recipe.name)}-{recipe.version}-*"):
            shutil.rmtree(older, ignore_errors=True)  # built from other inputs (an older base): replaced
        staging.rename(folder)
        progress(f"{label}: built and checked in {seconds:.0f}s; cached in {folder}")
        return folder / built[0].name
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _runtime_closure(recipe: Recipe, pins: PinSet) -> list[str]:
    """The pinned distributions the recipe's wheel needs at run time (its requirements, by name)."""
    names = [normalize(re.split(r"[<>=!~;\s\[]", r, maxsplit=1)[0]) for r in recipe.requires]
    missing = [n for n in names if n not in pins.all]
    if missing:
        raise SourceBuildError(f"{recipe.name} {recipe.version} needs {', '.join(missing)}, which the profile "
                               "does not pin")
    return names


def _container(client, image: str, command: list[str], mounts: dict[str, str], environment: dict[str, str],
               network: bool, label: str, progress: Progress) -> None:
    """Run one step in a throwaway container of ours, following its output; removed whatever happens."""
    import docker

    from ..sandbox.engine import ENGINE_ERRORS, remove
    from ..sandbox.ownership import labels_for

    binds = [docker.types.Mount(target, source, type="bind", read_only=target not in ("/out",))
             for source, target in mounts.items()]
    host_config = client.api.create_host_config(mounts=binds, network_mode="bridge" if network else "none",
                                                init=True)
    try:
        created = client.api.create_container(image, command=command, entrypoint=[], environment=environment,
                                              name=f"numerai-sandbox-build-{secrets.token_hex(5)}", user="0:0",
                                              labels=labels_for("build"), network_disabled=not network,
                                              host_config=host_config, working_dir="/tmp")
    except ENGINE_ERRORS as exc:
        raise SourceBuildError(f"{label}: cannot create the build container: {exc}") from exc
    follower = _BuildOutput(label, progress)
    try:
        client.api.start(created["Id"])
        for chunk in client.api.logs(created["Id"], stream=True, follow=True):
            follower.feed(chunk.decode("utf-8", "replace"))
        code = client.api.wait(created["Id"])["StatusCode"]
    finally:
        remove(client, created["Id"])
    if code != 0:
        raise SourceBuildError(f"{label} failed while {follower.step} (exit {code}): "
                               + " | ".join(follower.tail[-3:]))


class _BuildOutput:
    """Turns a build's output into a few progress lines (steps, compile progress) and keeps its tail."""

    _NINJA = re.compile(r"^\[(\d+)/(\d+)\]")

    def __init__(self, label: str, progress: Progress):
        self.label, self.progress = label, progress
        self.step = "starting"
        self.tail: list[str] = []
        self._partial = ""
        self._shown_percent = -10
        self._total = 0

    def feed(self, text: str) -> None:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._line(line.rstrip())

    def _line(self, line: str) -> None:
        if not line.strip():
            return
        if line.startswith("@@step "):
            self.step = line[len("@@step "):]
            self.progress(f"{self.label}: {self.step}")
            return
        self.tail = (self.tail + [line.strip()[:300]])[-30:]
        match = self._NINJA.match(line.strip())
        if match:
            done, total = int(match.group(1)), int(match.group(2))
            if total != self._total:  # meson's build runs ninja more than once, each with its own count
                self._total, self._shown_percent = total, -10
            percent = 100 * done // max(total, 1)
            if percent >= self._shown_percent + 10 or done == total:
                self._shown_percent = percent
                self.progress(f"{self.label}: compiling, {done}/{total} steps ({percent}%)")


# ---------------------------------------------------------------- the inputs (host side, networked)

def _pip_settings() -> dict[str, str]:
    """pip's own configuration (index-url, cert), so the source download goes where pip's do."""
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    found: dict[str, str] = {}
    env: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"^([^.]*)\.([a-z-]+)='(.*)'$", line.strip())
        if match:
            (env if match.group(1) == ":env:" else found)[match.group(2)] = match.group(3)
    found.update(env)  # environment variables win, as in pip
    return found


def _download_sdist(recipe: Recipe, dest: Path, progress: Progress) -> None:
    """The source distribution from pip's index (PEP 691 JSON, or the HTML page), sha256-checked."""
    settings = _pip_settings()
    index = (settings.get("index-url") or "https://pypi.org/simple").split()[0].rstrip("/")
    context = ssl.create_default_context(cafile=settings.get("cert") or None)
    page = f"{index}/{normalize(recipe.name)}/"
    progress(f"downloading {recipe.sdist} from {urllib.parse.urlsplit(index).netloc or index}")
    try:
        request = urllib.request.Request(page, headers={
            "Accept": "application/vnd.pypi.simple.v1+json, text/html;q=0.1"})
        with urllib.request.urlopen(request, timeout=60, context=context) as response:
            body = response.read().decode("utf-8", "replace")
            is_json = "json" in (response.headers.get("Content-Type") or "")
        if is_json:
            links = {f["filename"]: f["url"] for f in json.loads(body).get("files", [])}
        else:
            links = {urllib.parse.unquote(m.group(2)).strip(): m.group(1)
                     for m in re.finditer(r'<a[^>]*href="([^"]+)"[^>]*>([^<]+)</a>', body)}
        if recipe.sdist not in links:
            raise SourceBuildError(f"the package index {index} has no {recipe.sdist}")
        url = urllib.parse.urljoin(page, links[recipe.sdist]).split("#", 1)[0]
        partial = dest.with_suffix(".part")
        with urllib.request.urlopen(url, timeout=120, context=context) as response, open(partial, "wb") as handle:
            shutil.copyfileobj(response, handle, 1 << 20)
    except (OSError, ValueError) as exc:
        raise SourceBuildError(f"cannot download {recipe.sdist} from {index}: {exc}") from exc
    digest = file_sha256(partial)
    if digest != recipe.sdist_sha256:
        partial.unlink()
        raise SourceBuildError(f"{recipe.sdist} from {index} has sha256 {digest}, not the published "
                               f"{recipe.sdist_sha256}: refusing to build it")
    partial.rename(dest)


def _download_tools(recipe: Recipe, pins: PinSet, progress: Progress) -> None:
    """Wheels of the build tools for the target Python (numpy, scipy and pip come from the wheelhouse)."""
    from .wheelhouse import pip_target_options, wheel_name_version

    target = ensure_dir(tools_dir(pins.python))
    have = {wheel_name_version(p) for p in target.glob("*.whl")}
    wanted = [t for t in recipe.tools if (normalize(t.split("==")[0]), t.split("==")[1]) not in have]
    if not wanted:
        return
    progress(f"downloading the build tools: {', '.join(wanted)}")
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--progress-bar", "off",
                           "--disable-pip-version-check", "--dest", str(target),
                           *pip_target_options(pins.python), *wanted], capture_output=True, text=True)
    if proc.returncode != 0:
        errors = [line for line in proc.stdout.splitlines() + proc.stderr.splitlines() if "ERROR" in line]
        raise SourceBuildError(f"pip could not download the build tools ({', '.join(wanted)}): "
                               + " | ".join(errors[:3] or proc.stderr.strip().splitlines()[-2:]))
