"""Profiles and pin files: which packages, at which versions, go into an image.

- `auto` (the default for `run`): the standard profile, plus exactly the distributions the
  pickle needs (its modules, read statically) that Numerai's image for that Python has and
  standard lacks, with their dependencies, all at Numerai's pins. When it needs nothing
  more, auto is the standard image itself.
- `standard`: the packages nearly every model needs, at exactly the versions Numerai's image
  has for that Python, with our own resolution of their dependencies, committed in
  images/py3.X/standard.txt.
- `full`: Numerai's complete pin list for that Python, vendored in images/py3.X/numerai.txt
  (or --requirements FILE).
- Extra requirements (--extra-requirements FILE) are layered on top of any of them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from . import numerai
from .numerai import NOT_FOR_LINUX
from .pinfiles import PinError, normalize, parse_pins, version_dir

SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
DEFAULT_PYTHON = "3.11"  # Numerai's default image
# Images Numerai itself marks experimental; said wherever a user picks or sees one.
EXPERIMENTAL_PYTHONS = ("3.14",)
PROFILES = ("auto", "standard", "full")


def experimental(python: str) -> str | None:
    """'experimental (...)' for an image Numerai marks experimental, else None."""
    return f"experimental (Numerai marks its {python} image experimental)" if python in EXPERIMENTAL_PYTHONS else None


# Distributions that provide the same importable package as the one Numerai pins.
SUBSTITUTES = {"xgboost-cpu": "xgboost"}
# Import names no vendored list knows, and the distribution that usually provides them.
FALLBACK_DISTRIBUTIONS = {"cv2": "opencv-python", "skimage": "scikit-image", "Crypto": "pycryptodome",
                          "bs4": "beautifulsoup4", "sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml"}


@dataclass(frozen=True)
class PinSet:
    """The exact distributions of one image."""

    python: str
    profile: str
    pins: dict[str, str]
    extra: dict[str, str] = field(default_factory=dict)
    extra_source: str | None = None
    skipped: tuple[str, ...] = ()  # pins left out because they do not exist for Linux
    added: dict[str, str] = field(default_factory=dict)  # auto: what it adds to the standard profile
    wanted: dict[str, str] = field(default_factory=dict)  # auto: {distribution the pickle needs: for which module}
    required_by: dict[str, str] = field(default_factory=dict)  # auto: {added dependency: what first required it}
    notes: tuple[str, ...] = ()  # auto: requirements Numerai's list lacks, versions it does not satisfy

    @property
    def all(self) -> dict[str, str]:
        merged = dict(self.pins)
        merged.update(self.extra)
        return dict(sorted(merged.items()))

    @property
    def tag_profile(self) -> str:
        """The profile as it appears in image tags: an auto image is named by its package set (Docker
        tags allow no `+`), extra requirements make a distinct image."""
        if self.profile == "auto":
            return f"auto-{self.digest()[:12]}"
        if not self.extra:
            return self.profile
        return f"{self.profile}-x{self.digest()[:8]}"

    def lock_text(self) -> str:
        lines = [f"# numerai-sandbox lock: Python {self.python}, profile {self.profile}"]
        if self.added:  # the set alone names the image: pickles needing the same packages share it
            lines.append("# auto: the standard profile plus, at Numerai's pins: "
                         + " ".join(f"{n}=={v}" for n, v in self.added.items()))
        if self.extra_source:
            lines.append(f"# extra requirements from {self.extra_source}")
        lines += [f"{name}=={version}" for name, version in self.all.items()]
        return "\n".join(lines) + "\n"

    def digest(self) -> str:
        return hashlib.sha256(self.lock_text().encode()).hexdigest()

    def layer(self) -> tuple["PinSet", dict[str, str]] | None:
        """(the standard pin set, what goes on top of it) when this image can be built as a layer on the
        standard environment: only new distributions, none replacing a standard one; else None."""
        if self.profile != "auto":
            return None
        under = PinSet(self.python, "standard", standard_pins(self.python))
        top = {name: version for name, version in self.all.items() if under.pins.get(name) != version}
        if any(name in under.pins for name in top):
            return None
        return under, top


def standard_pins(python: str) -> dict[str, str]:
    path = version_dir(python) / "standard.txt"
    return parse_pins(path.read_text(), str(path))


def numerai_pins(python: str) -> dict[str, str] | None:
    """Numerai's full pin list for `python` as its Linux image installs it (vendored), or None."""
    try:
        return dict(numerai.numerai_list(python).pins)
    except PinError:
        return None


def pin_set(python: str, profile: str, requirements: Path | None = None,
            extra_requirements: Path | None = None, needs: Mapping[str, str] | None = None) -> PinSet:
    """The pins of one image. `needs` ({distribution: module}) is what the pickle needs, for auto."""
    if python not in SUPPORTED_PYTHONS:
        raise PinError(f"Python {python} is not supported; choose one of {', '.join(SUPPORTED_PYTHONS)}")
    extra: dict[str, str] = {}
    if extra_requirements is not None:
        extra = parse_pins(extra_requirements.read_text(), str(extra_requirements))
    extra_source = str(extra_requirements) if extra_requirements else None
    if profile == "standard":
        return PinSet(python, profile, standard_pins(python), extra, extra_source)
    if profile == "auto":
        return _auto(python, needs or {}, extra, extra_source)
    if profile != "full":
        raise PinError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if requirements is not None:
        listed = parse_pins(requirements.read_text(), str(requirements))
        skipped = tuple(sorted(n for n in listed if n in NOT_FOR_LINUX))
        pins = {n: v for n, v in listed.items() if n not in NOT_FOR_LINUX}
    else:
        vendored = numerai.numerai_list(python)
        pins, skipped = dict(vendored.pins), vendored.left_out
    pins.setdefault("pip", standard_pins(python)["pip"])
    return PinSet(python, profile, pins, extra, extra_source, skipped)


def _provided_by(pins: Mapping[str, str]) -> set[str]:
    """The distributions `pins` provide, substitutes counted as what they stand for."""
    return set(pins) | {SUBSTITUTES[name] for name in pins if name in SUBSTITUTES}


def _auto(python: str, needs: Mapping[str, str], extra: dict[str, str], extra_source: str | None) -> PinSet:
    standard = standard_pins(python)
    have = _provided_by(standard)
    wanted = {normalize(dist): module for dist, module in needs.items() if normalize(dist) not in have}
    if not wanted:  # nothing beyond standard: auto is the standard image
        return PinSet(python, "standard", standard, extra, extra_source)
    found = numerai.closure(python, wanted)
    added = {name: version for name, version in found.pins.items() if name not in have}
    notes = [f"{by} requires {req}, which Numerai's list for Python {python} does not pin (left out, as in "
             "Numerai's image)" for by, req in found.not_in_list if by in found.pins]
    notes += [f"{by} requires {req}; Numerai's image has {version} (kept)" for by, req, version in found.conflicts]
    notes += [f"{name} {standard[name]} stays at the standard profile's version, not {found.pins[name]}"
              for name in found.pins if name in standard and standard[name] != found.pins[name]]
    return PinSet(python, "auto", {**standard, **added}, extra, extra_source, added=added, wanted=wanted,
                  required_by={n: by for n, by in found.required_by.items() if n in added}, notes=tuple(notes))


def pin_set_from_label(text: str) -> dict[str, str]:
    try:
        return dict(json.loads(text))
    except (ValueError, TypeError):
        return {}


def distribution_for_module(module: str, python: str | None = None) -> str:
    """The distribution that provides an import name: from Numerai's list for `python` (or any of its
    lists), as the wheels' own metadata says; for names no list knows, by convention."""
    if python is not None:
        found = numerai.provider(python, module)
        if found:
            return found[0]
    known = numerai.providers(module)
    if known:
        return known[0]
    top = module.split(".", 1)[0]
    return FALLBACK_DISTRIBUTIONS.get(top, normalize(top))


def installed_distribution(module: str, packages: dict[str, str]) -> tuple[str, str] | None:
    """(distribution, version) in `packages` that provides `module` (a dotted name or its top level), if any."""
    top = module.split(".", 1)[0]
    candidates = [*numerai.providers(module), FALLBACK_DISTRIBUTIONS.get(top, normalize(top))]
    for dist in dict.fromkeys(candidates):
        for candidate in (dist, *[s for s, target in SUBSTITUTES.items() if target == dist]):
            if candidate in packages:
                return candidate, packages[candidate]
    return None
