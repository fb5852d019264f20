"""Step 1 of Pending: the pickle read without running it, and the image's Python chosen (or refused).

`--python auto` reads the Python that made the pickle from the pickle itself; a Python the user
forced is checked against it, and only where loading is certain to fail (a code constructor the
image's Python does not take) does the run end here, before any container.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..images.pins import DEFAULT_PYTHON
from ..inspection import Inspection, choose_python, inspect_pickle, mismatch_message, static_note
from ..support.text import sentence
from ..verdict import numerai_log
from ..verdict.reasons import Verdict
from .request import RunRequest


@dataclass
class Chosen:
    """The pickle as inspection read it, the Python its image runs, and what the report keeps of both."""

    inspection: Inspection
    python: str | None  # None: no image can load it (then `refused` says so)
    pickle: dict[str, Any]  # the report's `pickle`: what inspect shows, and why this Python
    notes: list[str] = field(default_factory=list)
    refused: Verdict | None = None  # python_version_mismatch before any container

    @property
    def model(self) -> dict[str, Any]:
        """The report's `model`, as far as the file tells."""
        found = self.inspection
        return {"path": found.path, "size_bytes": found.size_bytes, "sha256": found.sha256}


def pickle_facts(found: Inspection) -> dict[str, Any]:
    """What the report keeps of the inspection (the HTML report shows modules and versions per image)."""
    facts = {"python": found.python.version, "candidates": found.python.candidates,
             "evidence": found.python.evidence, "unknown_because": found.python.reasons_unknown,
             "serializer": found.serializer, "protocol": found.protocol, "risky": [r.reference for r in found.risky]}
    facts.update({k: v for k, v in found.to_dict().items()
                  if k in ("modules", "recorded_versions", "callable", "images", "problems")})
    return facts


def choose(request: RunRequest, detail) -> Chosen:
    """The image's Python: read from the pickle for auto, checked against it when forced. `detail` shows a
    line under Pending."""
    found = inspect_pickle(request.model)
    chosen = Chosen(found, request.python, pickle_facts(found))
    if request.python == "auto":
        choice = choose_python(found)
        chosen.pickle["choice"] = choice.reason
        chosen.python = choice.python
        if choice.python is None:  # certain: every image's code constructor raises TypeError on its code
            chosen.refused = Verdict("python_version_mismatch", sentence(choice.reason), phase="inspecting",
                                     evidence={"pickle_python": found.python.version,
                                               "candidates": found.python.candidates},
                                     numerai_log=numerai_log.incompatible(DEFAULT_PYTHON))
            return chosen
        detail(f"Python {choice.python}: {choice.reason}")
        if not choice.detected or choice.substitute:
            chosen.notes.append(choice.reason)
        chosen.notes += choice.warnings
        return chosen
    mismatch = None if request.force else mismatch_message(found, request.python)
    if mismatch:  # certain: the image's code constructor raises TypeError on the pickle's code
        chosen.refused = Verdict("python_version_mismatch", sentence(mismatch), phase="inspecting",
                                 evidence={"image_python": request.python, "pickle_python": found.python.version,
                                           "candidates": found.python.candidates},
                                 numerai_log=numerai_log.incompatible(request.python))
        return chosen
    note = static_note(found, request.python)
    if note:  # made by another Python, loadable here: the container decides, the reading is a note
        detail(f"Python {request.python}: {note}")
        chosen.notes.append(note)
    return chosen
