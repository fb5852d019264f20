"""numerai-predict's current pins, against the vendored ones (`numerai-sandbox images pins`).

numerai-predict keeps one folder per Python with its requirements.txt; the set of py3.X folders is
the set of Pythons Numerai runs. They are read from a checkout (`--source DIR`, the commit from
git when it is a git checkout) or from GitHub (online: the default branch's newest commit). The
comparison covers added and removed Pythons and, per Python, added, removed and changed pins;
`update` rewrites images/py3.X/numerai.txt with the commit they came from.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from . import numerai
from .pinfiles import Pin, PinError, read_pins, version_dir

REPOSITORY = "numerai/numerai-predict"
API = f"https://api.github.com/repos/{REPOSITORY}"
RAW = f"https://raw.githubusercontent.com/{REPOSITORY}/{{ref}}/py{{python}}/requirements.txt"
TIMEOUT = 10  # seconds per request: offline must be said within seconds
_PYTHON_DIR = re.compile(r"^py(3\.\d+)$")


class UpstreamError(Exception):
    """numerai-predict could not be read (offline, or not a numerai-predict checkout)."""


@dataclass
class Upstream:
    """numerai-predict's requirements per Python, and where and at which commit they were read."""

    source: str
    commit: str | None
    texts: dict[str, str]  # {python: requirements.txt}

    def pins(self, python: str) -> list[Pin]:
        try:
            return read_pins(self.texts[python], f"{self.source}: py{python}/requirements.txt")
        except PinError as exc:
            raise UpstreamError(str(exc)) from exc


def from_checkout(directory: Path) -> Upstream:
    found = {}
    for folder in sorted(directory.iterdir()):
        match = _PYTHON_DIR.match(folder.name)
        if match and (folder / "requirements.txt").is_file():
            found[match.group(1)] = (folder / "requirements.txt").read_text()
    if not found:
        raise UpstreamError(f"{directory} has no py3.X/requirements.txt: it is not a numerai-predict checkout")
    commit = None
    try:
        done = subprocess.run(["git", "-C", str(directory), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10)
        commit = done.stdout.strip() if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return Upstream(str(directory), commit, found)


def _get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "numerai-sandbox",
                                                   "Accept": "application/vnd.github+json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.read()
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UpstreamError(f"cannot reach GitHub for {REPOSITORY} ({reason}); offline, compare with a local "
                            "checkout: --source DIR") from exc


def from_github() -> Upstream:
    """The default branch's newest commit of numerai-predict, read through GitHub's API (online)."""
    try:
        commit = json.loads(_get(f"{API}/commits/HEAD"))["sha"]
        listing = json.loads(_get(f"{API}/contents?ref={commit}"))
        pythons = sorted(m.group(1) for entry in listing if entry.get("type") == "dir"
                         and (m := _PYTHON_DIR.match(entry.get("name", ""))))
    except (ValueError, KeyError, TypeError) as exc:
        raise UpstreamError(f"GitHub's answer for {REPOSITORY} is not what its API returns") from exc
    texts = {}
    for python in pythons:
        try:
            texts[python] = _get(RAW.format(ref=commit, python=python)).decode("utf-8")
        except UpstreamError:
            continue  # a py3.X folder without requirements.txt is not an image
    if not texts:
        raise UpstreamError(f"{REPOSITORY}@{commit[:12]} has no py3.X/requirements.txt")
    return Upstream(f"{REPOSITORY}@{commit[:12]}", commit, texts)


# ---------------------------------------------------------------- comparing

@dataclass
class Difference:
    python: str
    added: list[Pin] = field(default_factory=list)
    removed: list[Pin] = field(default_factory=list)
    changed: list[tuple[Pin, Pin]] = field(default_factory=list)  # (vendored, upstream)

    def lines(self) -> list[str]:
        out = [f"Python {self.python}: {len(self.changed)} changed, {len(self.added)} added, "
               f"{len(self.removed)} removed"]
        out += [f"  changed {old.name} {_shown(old)} -> {_shown(new)}" for old, new in self.changed]
        out += [f"  added   {pin.line()}" for pin in self.added]
        out += [f"  removed {pin.line()}" for pin in self.removed]
        return out


def _shown(pin: Pin) -> str:
    return pin.version + (f" ; {pin.marker}" if pin.marker else "")


@dataclass
class Comparison:
    added_pythons: list[str]
    removed_pythons: list[str]
    differences: list[Difference]

    @property
    def equal(self) -> bool:
        return not (self.added_pythons or self.removed_pythons or self.differences)

    def lines(self) -> list[str]:
        out = [f"Python {p}: numerai-predict has an image for it; numerai-sandbox has no pins for it"
               for p in self.added_pythons]
        out += [f"Python {p}: numerai-predict has no image for it any more; its pins are vendored here"
                for p in self.removed_pythons]
        for difference in self.differences:
            out += difference.lines()
        return out


def vendored() -> dict[str, list[Pin]]:
    return {python: list(numerai.numerai_list(python).raw) for python in numerai.vendored_pythons()}


def compare(upstream: Upstream) -> Comparison:
    ours = vendored()
    pythons = sorted(set(ours) & set(upstream.texts), key=numerai.python_key)
    differences = []
    for python in pythons:
        mine = {pin.name: pin for pin in ours[python]}
        theirs = {pin.name: pin for pin in upstream.pins(python)}
        difference = Difference(python, [theirs[n] for n in sorted(set(theirs) - set(mine))],
                                [mine[n] for n in sorted(set(mine) - set(theirs))],
                                [(mine[n], theirs[n]) for n in sorted(set(mine) & set(theirs))
                                 if (mine[n].version, mine[n].marker) != (theirs[n].version, theirs[n].marker)])
        if difference.added or difference.removed or difference.changed:
            differences.append(difference)
    return Comparison(sorted(set(upstream.texts) - set(ours), key=numerai.python_key),
                      sorted(set(ours) - set(upstream.texts), key=numerai.python_key), differences)


# ---------------------------------------------------------------- rewriting

def list_text(python: str, pins: list[Pin], upstream: Upstream) -> str:
    commit = upstream.commit or "unknown"
    return "\n".join([
        f"# Package pins of Numerai's numerai-predict image for Python {python},",
        f"# as published in the numerai-predict repository's py{python}/requirements.txt (commit {commit}).",
        f"# Written by `numerai-sandbox images pins --update` from {upstream.source}; do not edit by hand",
        "# (a direct wheel link is written as the version it names).",
        *(pin.line() for pin in pins)]) + "\n"


def _same_commit(ours: str | None, theirs: str | None) -> bool:
    """Whether two commit ids (either abbreviated) name the same commit."""
    return bool(ours and theirs and (ours.startswith(theirs) or theirs.startswith(ours)))


def update(upstream: Upstream) -> tuple[list[Path], list[Path]]:
    """Rewrite images/py3.X/numerai.txt from numerai-predict: (written, removed)."""
    comparison = compare(upstream)
    written = []
    for python in sorted(upstream.texts, key=numerai.python_key):
        pins = upstream.pins(python)
        path = version_dir(python) / numerai.LIST_FILE
        if python in comparison.added_pythons or any(d.python == python for d in comparison.differences) \
                or not _same_commit(numerai.numerai_list(python).commit, upstream.commit):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(list_text(python, pins, upstream))
            written.append(path)
    removed = []
    for python in comparison.removed_pythons:
        path = version_dir(python) / numerai.LIST_FILE
        path.unlink()
        removed.append(path)
    numerai.numerai_list.cache_clear()
    return written, removed
