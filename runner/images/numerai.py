"""Numerai's own images as data, offline: what each Python's image holds and what needs what.

- images/py3.X/numerai.txt: numerai-predict's requirements for that Python, vendored with the
  commit they came from (`numerai-sandbox images pins --check` compares them with numerai-predict's
  current ones, `--update` rewrites them);
- images/numerai-distributions.json: for every distribution==version in those lists, the modules it
  makes importable and its Requires-Dist lines, read from the wheels themselves by
  scripts/make_module_map.py (generated, never written by hand).

From these: the distribution behind an import name within one Python's list, and the dependency
closure of a few distributions at Numerai's pins (what the auto profile adds to the standard image).
Numerai's lists are not self-consistent (numerblox requires packages no list pins), so requirements a
list lacks are skipped and reported, never invented.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterable, Mapping

from .pinfiles import Pin, PinError, images_root, normalize, read_pins, version_dir

LIST_FILE = "numerai.txt"
MAP_FILE = "numerai-distributions.json"
# Pins in Numerai's lists that only exist for Windows or macOS (and carry no marker saying so).
NOT_FOR_LINUX = {"pywin32", "pywinpty", "appnope", "pywin32-ctypes"}
_COMMIT = re.compile(r"\(commit ([0-9a-f]{7,40})\)")


def python_key(python: str) -> tuple[int, ...]:
    return tuple(int(part) for part in python.split("."))


def vendored_pythons() -> list[str]:
    """The Pythons whose Numerai pin list is vendored (images/py3.X/numerai.txt), oldest first."""
    found = [p.parent.name[2:] for p in images_root().glob(f"py3.*/{LIST_FILE}")]
    return sorted(found, key=python_key)


def linux_environment(python: str) -> dict[str, str]:
    """The marker environment of Numerai's image for `python`: CPython on Linux x86_64."""
    return {"implementation_name": "cpython", "implementation_version": f"{python}.0", "os_name": "posix",
            "platform_machine": "x86_64", "platform_release": "", "platform_system": "Linux",
            "platform_version": "", "python_full_version": f"{python}.0",
            "platform_python_implementation": "CPython", "python_version": python, "sys_platform": "linux",
            "extra": ""}


def for_linux(pin: Pin, python: str) -> bool:
    """Whether Numerai's Linux image installs this pin."""
    if pin.name in NOT_FOR_LINUX:
        return False
    return not pin.marker or _marker_holds(pin.marker, python)


_CLAUSE = re.compile(r'^\s*([a-z_]+)\s*(==|!=)\s*"([^"]*)"\s*$')


@lru_cache(maxsize=None)
def _marker_holds(marker: str, python: str) -> bool:
    """Whether a marker holds on Numerai's Linux image. The lists' markers are `and`-joined equalities
    (`sys_platform == "darwin" and ...`), judged here directly: importing packaging's full marker grammar
    costs 40 ms on every run's path. Any other marker goes to packaging."""
    environment = linux_environment(python)
    clauses = [_CLAUSE.match(part) for part in marker.split(" and ")]
    if all(c is not None and c.group(1) in environment for c in clauses):
        return all((environment[c.group(1)] == c.group(3)) == (c.group(2) == "==") for c in clauses)
    from packaging.markers import Marker

    return Marker(marker).evaluate(environment)


@dataclass(frozen=True)
class NumeraiList:
    """Numerai's pin list for one Python, as its Linux image installs it."""

    python: str
    commit: str | None  # the numerai-predict commit it was published at
    pins: dict[str, str]  # {distribution: version} that the Linux image installs
    left_out: tuple[str, ...]  # pins for Windows or macOS only
    raw: tuple[Pin, ...]  # every line of the list, markers kept (what `images pins --check` compares)


def commit_of(text: str) -> str | None:
    match = _COMMIT.search("\n".join(line for line in text.splitlines() if line.startswith("#")))
    return match.group(1) if match else None


@lru_cache(maxsize=None)
def numerai_list(python: str) -> NumeraiList:
    path = version_dir(python) / LIST_FILE
    try:
        text = path.read_text()
    except OSError as exc:
        raise PinError(f"no vendored Numerai pin list for Python {python} ({path}: {exc.strerror})") from exc
    raw = tuple(read_pins(text, str(path)))
    kept = {p.name: p.version for p in raw if for_linux(p, python)}
    left_out = tuple(sorted(p.name for p in raw if p.name not in kept))
    return NumeraiList(python, commit_of(text), kept, left_out, raw)


# ---------------------------------------------------------------- the distribution map

@dataclass(frozen=True)
class Distribution:
    """One distribution==version as its wheel describes itself."""

    name: str
    version: str
    modules: tuple[str, ...]  # import names: top-level, or `namespace.package` inside a namespace package
    requires: tuple[str, ...]  # Requires-Dist lines, markers included
    sizes: dict[str, int | None]  # {python: bytes of the wheel pip picks for linux x86_64}; None: no wheel


@lru_cache(maxsize=1)
def distribution_map() -> dict[str, Distribution]:
    """{"name==version": Distribution} from images/numerai-distributions.json ({} when it is absent)."""
    path = images_root() / MAP_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    out = {}
    for key, entry in data.get("distributions", {}).items():
        name, _, version = key.partition("==")
        out[key] = Distribution(name, version, tuple(entry.get("modules", ())), tuple(entry.get("requires", ())),
                                dict(entry.get("wheel_sizes", {})))
    return out


def distribution(name: str, version: str) -> Distribution | None:
    return distribution_map().get(f"{normalize(name)}=={version}")


def _candidates(module: str) -> list[str]:
    """"google.protobuf.message" -> ["google.protobuf.message", "google.protobuf", "google"]."""
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _pick(module: str, names: Iterable[str]) -> str | None:
    """One distribution among those claiming a module: the one named like it, else the first by name."""
    names = sorted(set(names))
    if not names:
        return None
    wanted = normalize(module.split(".")[0])
    return next((n for n in names if n == wanted), names[0])


@lru_cache(maxsize=None)
def _module_index(python: str) -> dict[str, list[str]]:
    """{import name: [distributions of Numerai's list for `python` that provide it]}."""
    index: dict[str, list[str]] = {}
    for name, version in numerai_list(python).pins.items():
        dist = distribution(name, version)
        for module in dist.modules if dist else ():
            index.setdefault(module, []).append(name)
            if "." in module:  # a package inside a namespace package also answers for the namespace
                index.setdefault(module.split(".")[0], []).append(name)
    return index


def provider(python: str, module: str) -> tuple[str, str] | None:
    """(distribution, version) in Numerai's list for `python` that makes `module` importable, if any."""
    try:
        index = _module_index(python)
    except PinError:
        return None
    for candidate in _candidates(module):
        found = _pick(candidate, index.get(candidate, ()))
        if found:
            return found, numerai_list(python).pins[found]
    return None


@lru_cache(maxsize=1)
def _any_index() -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for entry in distribution_map().values():
        for module in entry.modules:
            index.setdefault(module, []).append(entry.name)
            if "." in module:
                index.setdefault(module.split(".")[0], []).append(entry.name)
    return index


@lru_cache(maxsize=1)
def _known_modules() -> frozenset[str]:
    return frozenset(module for entry in distribution_map().values() for module in entry.modules)


def import_root(module: str) -> str:
    """The part of a dotted name one distribution provides: the top-level name, or inside a namespace
    package the package a wheel ships ("google.protobuf.message" -> "google.protobuf")."""
    known = _known_modules()
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        if ".".join(parts[:i]) in known:
            return ".".join(parts[:i])
    return parts[0]


def providers(module: str) -> list[str]:
    """Every distribution in any of Numerai's lists that provides `module` (best match first)."""
    index = _any_index()
    for candidate in _candidates(module):
        names = sorted(set(index.get(candidate, ())))
        if names:
            best = _pick(candidate, names)
            return [best] + [n for n in names if n != best]
    return []


def wheel_bytes(python: str, pins: Mapping[str, str]) -> tuple[int, list[str]]:
    """(bytes of the wheels pip picks for these pins on Python `python`, the pins the map has no size for)."""
    total, unknown = 0, []
    for name, version in pins.items():
        dist = distribution(name, version)
        size = dist.sizes.get(python) if dist else None
        if size is None:
            unknown.append(name)
        else:
            total += size
    return total, unknown


# ---------------------------------------------------------------- dependency closure

@dataclass
class Closure:
    """Distributions at Numerai's pins for one Python, with everything they require there."""

    pins: dict[str, str] = field(default_factory=dict)
    required_by: dict[str, str] = field(default_factory=dict)  # {distribution: the one that first required it}
    not_in_list: list[tuple[str, str]] = field(default_factory=list)  # (required by, requirement) Numerai lacks
    conflicts: list[tuple[str, str, str]] = field(default_factory=list)  # (by, requirement, Numerai's version)
    no_metadata: list[str] = field(default_factory=list)  # pinned, but the distribution map does not know it


@lru_cache(maxsize=None)
def _requirement(line: str):
    """A Requires-Dist line parsed (once per process: torch's are read for every closure holding it)."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(line)
    except InvalidRequirement:
        return None


def closure(python: str, roots: Iterable[str], extras: Mapping[str, Iterable[str]] | None = None) -> Closure:
    """`roots` and their requirements, recursively, at Numerai's pins for `python` on Linux x86_64.

    Requires-Dist markers are evaluated for that Python; a requirement's extras are followed only
    when asked (`extras` for the roots, `name[extra]` in a requirement for the rest).
    """
    pins = numerai_list(python).pins
    environment = linux_environment(python)
    result = Closure()
    extras = {normalize(k): {normalize(e) for e in v} for k, v in (extras or {}).items()}
    queue: list[tuple[str, frozenset[str], str | None]] = [(normalize(r), frozenset(extras.get(normalize(r), ())),
                                                            None) for r in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        name, wanted, by = queue.pop(0)
        if (name, wanted) in seen:
            continue
        seen.add((name, wanted))
        version = pins.get(name)
        if version is None:
            result.not_in_list.append((by or "(asked for)", name))
            continue
        result.pins[name] = version
        if by is not None:
            result.required_by.setdefault(name, by)
        dist = distribution(name, version)
        if dist is None:
            if name not in result.no_metadata:
                result.no_metadata.append(name)
            continue
        for line in dist.requires:
            requirement = _requirement(line)
            if requirement is None:
                continue
            if requirement.marker is not None and not any(
                    requirement.marker.evaluate(environment | {"extra": extra}) for extra in (wanted or {""})):
                continue
            dep = normalize(requirement.name)
            if dep not in pins:
                if (name, line) not in result.not_in_list:
                    result.not_in_list.append((name, line))
                continue
            if requirement.specifier and not requirement.specifier.contains(pins[dep], prereleases=True):
                result.conflicts.append((name, line, pins[dep]))
            queue.append((dep, frozenset(normalize(e) for e in requirement.extras), name))
    result.pins = dict(sorted(result.pins.items()))
    return result
