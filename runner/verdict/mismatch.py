"""The pickle against the image: another Python, another library version, a module the image lacks.

The verdicts both halves of diagnosis reach when what the model's process raised comes from a
difference between where the pickle was made and the image it runs in: python_version_mismatch,
library_mismatch, missing_module (the model's fault) and sandbox_lacks_module (ours: Numerai's image
has the module, this one does not).
"""

from __future__ import annotations

import re

from ..images.numerai import import_root
from ..images.pins import SUBSTITUTES, distribution_for_module, installed_distribution
from ..sandbox.protocol import ExceptionFacts
from .context import Context
from .reasons import Verdict
from .tracebacks import LIBRARY_MODULES, first_line


def pick_image(made_by: str | None) -> str:
    """What to do about a pickle made by another Python."""
    if made_by and re.fullmatch(r"3\.\d+", made_by):
        return (f"Run it with --python {made_by} (choose \"Python {made_by}\" on Numerai), or re-pickle "
                "it with the Python of the image you will choose.")
    return "Re-pickle it with the Python of the image you will choose on Numerai."


def versions_text(libraries: dict[str, tuple[str, str | None]]) -> str:
    return ", ".join(f"{name} {pickle_version} (the image has {have or 'none'})"
                     for name, (pickle_version, have) in sorted(libraries.items()))


def version_verdict(ctx: Context, made_by: str | None, error: str, evidence: dict, what: str,
                    phase: str) -> Verdict:
    """python_version_mismatch: the image's Python `what` (cannot rebuild / run the pickle's code)."""
    if made_by:
        text = (f"The pickle was made by Python {made_by}; this image runs Python {ctx.python}, which "
                f"{what} ({error}). {pick_image(made_by)}")
    else:
        text = (f"Python {ctx.python} {what} ({error}): the pickle's code was most likely compiled by "
                "another Python version.")
    return Verdict("python_version_mismatch", text, phase=phase,
                   evidence=evidence | {"image_python": ctx.python, "pickle_python": made_by})


def distribution(module: str, ctx: Context) -> tuple[str, str | None]:
    """(the distribution that provides `module`, named as in the report's library_versions; its version)."""
    found = installed_distribution(module, ctx.packages)
    if found is None:
        return distribution_for_module(module), None
    return SUBSTITUTES.get(found[0], found[0]), found[1]


def library_verdict(library: str, exc: ExceptionFacts, ctx: Context, evidence: dict, phase: str = "loading",
                    doing: str = "could not rebuild an object from the pickle") -> Verdict:
    """library_mismatch: `library` failed on an object another version of it made."""
    dist, version = distribution(library, ctx)
    recorded = ctx.library_differences().get(dist)
    made = (f"The pickle was made with {dist} {recorded[0]}." if recorded
            else f"The pickle was most likely made with another version of {dist}.")
    return Verdict("library_mismatch",
                   f"{dist} {doing} ({exc.type}: {first_line(exc.message)}); the image has "
                   f"{dist} {version or '(not installed)'}. {made}", phase=phase,
                   evidence=evidence | {"library": dist, "module": library, "image_version": version,
                                        "pickle_version": recorded[0] if recorded else None})


def import_error(exc: ExceptionFacts, ctx: Context, evidence: dict, phase: str = "loading") -> Verdict:
    """A module that cannot be imported: the library's version, our image's lack, or the model's own."""
    message = exc.said
    module = exc.name or (re.search(r"No module named '([^']+)'", message) or [None, "?"])[1]
    top = module.split(".")[0]
    installed = installed_distribution(module, ctx.packages)
    if installed and import_root(module) != module:
        dist, version = distribution(top, ctx)
        recorded = ctx.library_differences().get(dist)
        made = (f"the pickle was made with {dist} {recorded[0]}" if recorded
                else f"it was made with another version of {dist}")
        return Verdict("library_mismatch",
                       f"The pickle needs {module}, which {dist} {version} in the image does not have: {made}.",
                       phase=phase,
                       evidence=evidence | {"module": module, "library": dist, "image_version": version,
                                            "pickle_version": recorded[0] if recorded else None})
    if installed:  # cannot import name X from an installed library
        return library_verdict(top, exc, ctx, evidence, phase=phase)
    doing = "Unpickling imports" if phase == "loading" else "The model imports"
    theirs = installed_distribution(module, ctx.full_pins) if ctx.full_pins is not None else None
    if theirs is not None:  # Numerai's image has it: the model is fine, our image is short of it
        return sandbox_lacks(module, theirs, ctx, evidence, phase, doing)
    if top == "dill":
        return Verdict("missing_module", "Unpickling imports `dill`: the pickle was made with dill, which "
                       "Numerai's images do not have. Pickle the function with cloudpickle instead "
                       "(cloudpickle.dump(predict, f)).", phase=phase,
                       evidence=evidence | {"module": module, "available_in": [], "in_full_profile": False})
    elsewhere = [py for py, pins in sorted(ctx.other_pythons.items())
                 if py != ctx.python and installed_distribution(module, pins) is not None]
    known_library = top in LIBRARY_MODULES
    hints = []
    if ctx.full_pins is not None:
        hints.append(f"Numerai's image for Python {ctx.python} does not have it either: the upload fails there too.")
    if not known_library:
        hints.append(f"If `{top}` is your own module (e.g. `from {top} import ...` in your notebook), pickle it "
                     f"by value: cloudpickle.register_pickle_by_value({top}) before cloudpickle.dump.")
    if elsewhere:
        hints.append(f"Numerai's image for Python {', '.join(elsewhere)} has it and this one does not: pickle with "
                     "that Python and choose its image.")
    return Verdict("missing_module", f"{doing} `{module}`, which the image does not have. "
                   + " ".join(hints), phase=phase,
                   evidence=evidence | {"module": module, "available_in": elsewhere,
                                        "in_full_profile": False if ctx.full_pins is not None else None})


def sandbox_lacks(module: str, theirs: tuple[str, str], ctx: Context, evidence: dict, phase: str,
                  doing: str) -> Verdict:
    """A module Numerai's image provides is missing here: not the model's fault (Error), and how to get it."""
    dist, version = theirs
    profile = ctx.profile
    fetch_full = f"`numerai-sandbox images fetch --python {ctx.python} --profile full` once"
    if profile == "standard":
        why = "the standard profile leaves it out."
        fix = ("Run with the default --profile auto, which adds what the pickle needs from Numerai's image; if "
               f"the import is hidden from it, use --profile full ({fetch_full}).")
    else:
        why = ("the pickle does not show this import (importlib, or a lazy import inside a library), so the auto "
               "profile could not know to add it." if profile == "auto" else f"the {profile} image leaves it out.")
        fix = (f"Run with --profile full ({fetch_full}), or put `{dist}=={version}` (and what it requires) in a "
               f"file and pass it with --extra-requirements (fetch it once with `numerai-sandbox images fetch "
               f"--python {ctx.python} --extra-requirements FILE`).")
    return Verdict("sandbox_lacks_module",
                   f"{doing} `{module}`, which Numerai's Python {ctx.python} image has ({dist} {version}) and this "
                   f"image does not: {why} Numerai would run it. {fix}", phase=phase,
                   evidence=evidence | {"module": module, "distribution": dist, "numerai_version": version,
                                        "profile": ctx.profile, "in_full_profile": True})
