"""The Python to run a pickle in, from what inspection found: the image for `run --python auto`, the images
that can load its code, an early python_version_mismatch, and what the run takes from the reading
(the Pythons its code allows, the library releases it recorded, what the auto profile adds)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..images.pins import DEFAULT_PYTHON, EXPERIMENTAL_PYTHONS, SUPPORTED_PYTHONS
from .fit import made_by_words
from .pyversions import KNOWN_PYTHONS, span, version_key
from .report import MAY_RUN, Inspection


def code_candidates(inspection: Inspection) -> list[str] | None:
    """The Pythons the pickle's code allows, or None when it holds no code to judge by."""
    candidates = inspection.python.candidates
    if inspection.python.version is None and set(candidates) >= set(KNOWN_PYTHONS):
        return None
    return list(candidates)


def recorded_releases(inspection: Inspection) -> dict[str, str]:
    """{distribution: release} written by the libraries themselves (a LightGBM format vN reads as N.x)."""
    out = {}
    for recorded in inspection.recorded_versions:
        if recorded.inferred:
            continue
        version = recorded.version
        match = re.fullmatch(r"model format v(\d+)", version)
        out[recorded.library] = f"{match.group(1)}.x" if match else version
    return out


def numerai_additions(inspection: Inspection, python: str) -> dict[str, str]:
    """{distribution: module} that the auto profile adds for this pickle in Python `python`'s image: the
    modules it needs that Numerai's image has and the standard profile lacks."""
    out: dict[str, str] = {}
    for use in inspection.modules:
        cell = use.images.get(python)
        if use.kind == "third-party" and cell is not None and cell.standard.present is False \
                and cell.full.present:
            out.setdefault(cell.full.distribution, use.package)
    return out


def compatible_pythons(inspection: Inspection, supported: tuple[str, ...] = SUPPORTED_PYTHONS) -> list[str]:
    """The image Pythons that can load the pickle's code: all but those where loading certainly fails."""
    return [p for p in supported if loadable(inspection, p)]


def loadable(inspection: Inspection, python: str) -> bool:
    fit = inspection.images.get(python)
    return fit.loadable if fit is not None else True


@dataclass
class Choice:
    python: str | None  # None: no supported image can load this pickle's code
    reason: str
    detected: bool  # True: from the pickle's own evidence; False: a fallback (say so in the report)
    warnings: list[str] = field(default_factory=list)  # what else stands in the chosen image's way
    substitute: bool = False  # Numerai has no image for the Python that made it: the nearest that loads it


def choose_python(inspection: Inspection, supported: tuple[str, ...] = SUPPORTED_PYTHONS,
                  default: str = DEFAULT_PYTHON) -> Choice:
    """The image Python for `run --python auto`, and why."""
    choice = choose(inspection, supported, default)
    fit = inspection.images.get(choice.python or "")
    if fit is not None:
        choice.warnings = list(fit.blockers)
    return choice


def choose(inspection: Inspection, supported: tuple[str, ...], default: str) -> Choice:
    py = inspection.python
    if py.version in supported:
        decisive = next((e for e in py.evidence if e.endswith(f"Python {py.version} only")), py.evidence[0])
        return Choice(py.version, f"the pickle was made by Python {py.version} ({decisive})", True)
    has_code = bool(inspection.stats.get("code_arguments"))
    made_here = [p for p in supported if p in py.candidates and loadable(inspection, p)] if has_code else []
    if made_here:
        # An experimental image only for a pickle that only it can load (then py.version names it above).
        pool = [p for p in made_here if p not in EXPERIMENTAL_PYTHONS] or made_here
        pick = default if default in pool else min(
            pool, key=lambda p: (len(inspection.images[p].blockers) if p in inspection.images else 0,
                                 -version_key(p)[1]))
        return Choice(pick, f"the pickle's code loads under Python {span(made_here)} and nothing in it tells "
                            f"which made it; using {pick}", True)
    if has_code:
        made = made_by_words(py)
        can_load = compatible_pythons(inspection, supported)
        if not can_load:
            why = inspection.images[supported[0]].why if supported[0] in inspection.images else ""
            return Choice(None, f"the pickle was made by Python {made}; the images are Python "
                                f"{span(list(supported))}: none can load its code ({why})", True)
        pick = nearest(can_load, py.candidates)
        fit = inspection.images[pick]
        return Choice(pick, f"the pickle was made by Python {made}, which Numerai has no image for; Python {pick} "
                            f"is the nearest image that can load it ({fit.code or fit.why})", True,
                      substitute=True)
    why = "; ".join(py.reasons_unknown) or "no version evidence"
    return Choice(default, f"the Python that made the pickle is unknown ({why}): falling back to Numerai's "
                           f"default, Python {default}", False)


def nearest(can_load: list[str], made_by: list[str]) -> str:
    """The image Python closest to the one that made the code (none known: a newer one than any image)."""
    targets = [version_key(v)[1] for v in made_by] or [version_key(KNOWN_PYTHONS[-1])[1] + 1]
    return min(can_load, key=lambda p: (min(abs(version_key(p)[1] - t) for t in targets), -version_key(p)[1]))


def mismatch_message(inspection: Inspection, python: str) -> str | None:
    """Why `python`'s image certainly cannot load the pickle (an early python_version_mismatch), or None
    when it may: then the run decides."""
    if loadable(inspection, python):
        return None
    allowed = compatible_pythons(inspection)
    hint = f"use --python {allowed[0]}" if allowed else "re-pickle it with the Python of a Numerai image"
    return (f"the pickle's code was made by Python {made_by_words(inspection.python)} and cannot load under "
            f"Python {python}: {inspection.images[python].why}; {hint}, or --force to run it anyway")


def static_note(inspection: Inspection, python: str) -> str | None:
    """What static inspection says about running the pickle in `python`'s image when it may run there but
    was made by another Python: a note for the report, never a verdict."""
    fit = inspection.images.get(python)
    if fit is None or fit.load != MAY_RUN:
        return None
    return f"{fit.why}; the run in the Python {python} image decides"
