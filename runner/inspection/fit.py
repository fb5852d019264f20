"""The pickle against each image's pins: whether each Python's images have the modules it needs, how
the library versions it recorded fare against their pins, and whether each image's Python can load
its code (only "cannot load" is certain)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping

from ..images.pins import (PinError, SUPPORTED_PYTHONS, installed_distribution, normalize, numerai_pins,
                           standard_pins)
from .facts import LibraryRecord, PickleFacts, is_stdlib
from .pyversions import KNOWN_PYTHONS, code_arity, foreign_code, span
from .report import (CANNOT_LOAD, LOADS, MAY_RUN, ImageFit, ModuleUse, PinCheck, Presence, ProfilePresence,
                     PythonVersion, RecordedVersion)
from .version_tables import STDLIB_MISSING

Pins = Mapping[str, str]  # distribution -> version


@dataclass(frozen=True)
class ImagePins:
    """Per Python, the pins of our standard profile and of Numerai's image (None: unreadable, or no list)."""

    standard: dict[str, Pins | None]
    full: dict[str, Pins | None]


def image_pins(full_pins: Mapping[str, Mapping[str, str]] | None = None) -> ImagePins:
    """The pins to judge against; `full_pins` stands in for Numerai's vendored lists (images/py3.X/numerai.txt)."""
    full = dict(full_pins) if full_pins is not None else {p: numerai_pins(p) for p in SUPPORTED_PYTHONS}
    return ImagePins(standard={p: readable_standard_pins(p) for p in SUPPORTED_PYTHONS},
                     full={p: {normalize(k): v for k, v in pins.items()} if pins is not None else None
                           for p, pins in full.items()})


def readable_standard_pins(python: str) -> dict[str, str] | None:
    try:
        return standard_pins(python)
    except (OSError, ValueError, PinError):
        return None


# ---------------------------------------------------------------- library versions against pins

def recorded_versions(records: list[LibraryRecord], pins: ImagePins) -> list[RecordedVersion]:
    return [RecordedVersion(r.library, r.version, r.where, r.inferred, pin_checks(r, pins)) for r in records]


def pin_checks(record: LibraryRecord, pins: ImagePins) -> dict[str, PinCheck]:
    """The record against each Python's standard pin of its library."""
    result = {}
    for python, image in pins.standard.items():
        found = installed_distribution(record.library if record.library != "scikit-learn" else "sklearn", image) \
            if image is not None else None
        pin = found[1] if found else None
        if image is None:
            result[python] = PinCheck(None, "unknown", "the image's pins are unreadable")
        elif pin is None:
            result[python] = PinCheck(None, "missing", f"{record.library} is not in the image")
        else:
            status, note = record.rule(record.version, pin)
            result[python] = PinCheck(pin, status, note)
    return result


# ---------------------------------------------------------------- modules against images

def module_table(modules: dict[str, set[str]], pins: ImagePins) -> list[ModuleUse]:
    """Each package the pickle needs (its own script's __main__ last), and which profile of which Python has it."""
    out = []
    for package in sorted(modules, key=lambda p: (p == "__main__", p.lower())):
        names = sorted(modules[package])
        kind = "main" if package == "__main__" else "stdlib" if is_stdlib(package) else "third-party"
        images = {python: ProfilePresence(*(presence(package, kind, python, profile, pins)
                                            for profile in ("standard", "full", "auto")))
                  for python in SUPPORTED_PYTHONS}
        out.append(ModuleUse(package, kind, names[:50] + ([f"... and {len(names) - 50} more"]
                                                          if len(names) > 50 else []), images))
    return out


def presence(package: str, kind: str, python: str, profile: str, pins: ImagePins) -> Presence:
    if kind == "main":
        return Presence(False, None, None, "the image's __main__ is Numerai's script")
    if kind == "stdlib":
        missing = package in STDLIB_MISSING.get(python, ())
        return Presence(not missing, "python", python,
                        f"removed from the standard library before Python {python}" if missing else "stdlib")
    if profile == "auto":  # the standard image, plus what Numerai's image has and standard lacks
        standard = presence(package, kind, python, "standard", pins)
        theirs = presence(package, kind, python, "full", pins)
        if standard.present or not theirs.present:
            return standard if standard.present or theirs.present is None else replace(
                theirs, note=f"not in Numerai's image for Python {python}, nor in ours")
        return replace(theirs, note="auto adds it, at Numerai's version")
    image = pins.standard.get(python) if profile == "standard" else pins.full.get(python)
    if image is None:
        note = "the image's pins are unreadable" if profile == "standard" else \
            f"no vendored Numerai pin list for Python {python}"
        return Presence(None, None, None, note)
    found = installed_distribution(package, image)
    if found is None:
        where = "the standard profile" if profile == "standard" else f"Numerai's image for Python {python}"
        return Presence(False, None, None, f"not in {where}")
    return Presence(True, found[0], found[1], "")


# ---------------------------------------------------------------- each image as a whole

def image_fits(facts: PickleFacts, python: PythonVersion, modules: list[ModuleUse],
               recorded: list[RecordedVersion]) -> dict[str, ImageFit]:
    """Per Python, whether its auto image can load the pickle, and what stands in the way."""
    out = {}
    for image in SUPPORTED_PYTHONS:
        load, why, code = python_fit(facts, python, image)
        blockers, warnings = [], []
        for use in modules:
            auto = use.images[image].auto
            if auto.present is False:
                blockers.append(f"{use.package}: {auto.note}")
        for record in recorded:
            cell = record.images.get(image)
            if cell is not None and cell.status == "breaks":
                blockers.append(f"{record.library} {record.version} vs {cell.pin}: {cell.note}")
            elif cell is not None and cell.status == "differs":
                warnings.append(f"{record.library} {record.version} vs {cell.pin}: {cell.note}")
        out[image] = ImageFit(image, load, why, blockers, warnings, code)
    return out


def made_by_words(py: PythonVersion) -> str:
    """'3.12', '3.8 or 3.9', 'a Python newer than 3.14 (or damaged code)': who made the pickle's code."""
    if py.version or py.candidates:
        return py.version or span(py.candidates)
    return f"a Python this table does not know (newer than {KNOWN_PYTHONS[-1]}, or damaged code)"


def python_fit(facts: PickleFacts, python: PythonVersion, image: str) -> tuple[str, str, str]:
    """(LOADS | CANNOT_LOAD | MAY_RUN, why, what its bytecode would do) for the pickle's code in `image`'s
    Python.

    Certain only where the code constructor's argument count differs from the image's: unpickling then
    raises TypeError, which numerai-predict logs as "Pickle incompatible with 3.X"."""
    findings = list(facts.code_findings.values())
    counts = facts.code_arguments()
    if not counts:
        return LOADS, "the pickle holds no code: nothing in it ties it to a Python", ""
    wanted = code_arity(image)
    if any(n != wanted for n in counts):
        theirs = " and ".join(str(n) for n in counts if n != wanted)
        return CANNOT_LOAD, (f"its code objects are rebuilt with {theirs} arguments where Python {image}'s "
                             f"code constructor takes {wanted}: unpickling raises TypeError"), ""
    if image in python.candidates:
        return LOADS, (f"its code was made by Python {image}" if python.version == image else
                       f"its code is valid, unchanged, under Python {span(python.candidates)}"), ""
    made = made_by_words(python)
    if python.candidates and not set(python.candidates) & set(SUPPORTED_PYTHONS):
        made += f"; Numerai has no {made} image"
    foreign = next(((f, why) for f in findings if (why := foreign_code(f, image)) is not None), None)
    if foreign is None:
        code = f"its code happens to be valid {image} bytecode, with the same meaning there"
    else:
        finding, why = foreign
        where = f"`{finding.name}`" if finding.name else "a code object"
        code = (f"Python {image} loads its code, but {where} is not valid {image} bytecode as written ({why}): "
                "it will likely fail when called")
    return MAY_RUN, f"made by Python {made}; {code}", code
