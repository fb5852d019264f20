"""What the host knows about a run, independent of the model: the image, the limits, the pickle as read
without running it, Numerai's pins for every Python, and the live data the model was given.

Diagnosis judges the model's process against these facts: which Python made the pickle and whether the
image's differs, which library versions the pickle records and the image lacks, which columns the data has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..images.pins import installed_distribution
from ..inspection.pyversions import KNOWN_PYTHONS, span
from ..sandbox.backend import Limits


@dataclass(frozen=True)
class DataFacts:
    """The live data as the host prepared it: what a missing column is judged against."""

    columns: frozenset[str]  # live_features' columns
    benchmark_columns: frozenset[str]
    source: str  # "synthetic", "round", "local", "numerapi"
    description: str
    names_checked: bool  # the names are Numerai's own (real data or its features.json)


@dataclass
class Context:
    """What the host knows about the run, independent of the model."""

    python: str  # the image's Python, "3.11"
    packages: dict[str, str]  # the image's distributions
    limits: Limits
    model_path: Path
    other_pythons: dict[str, dict[str, str]] = field(default_factory=dict)  # Numerai's pins per Python
    pickle_candidates: list[str] | None = None  # Pythons the pickle's code allows (None: it holds no code)
    recorded_versions: dict[str, str] = field(default_factory=dict)  # written into the pickle by libraries
    full_pins: dict[str, str] | None = None  # Numerai's full pin list for this Python (vendored)
    profile: str = "standard"  # the profile the run asked for: auto, standard or full
    data: DataFacts | None = None  # the live data the model was given

    def made_by(self) -> tuple[str | None, bool | None]:
        """(the Python that made the pickle as words, whether it differs from the image's).

        ("3.12", True) known and different; ("3.11", False) the image's; (None, None) unknown
        (no code objects, or bytecode that several Pythons including the image's share)."""
        candidates = self.pickle_candidates
        if candidates is None:
            return None, None
        if not candidates:  # code objects that no Python we know compiles (a newer one, or damaged)
            if self.python not in KNOWN_PYTHONS:
                return None, None
            return f"a Python other than {KNOWN_PYTHONS[0]}-{KNOWN_PYTHONS[-1]} (a newer one?)", True
        if self.python in candidates:
            return (self.python, False) if candidates == [self.python] else (None, None)
        return span(candidates), True

    def library_differences(self) -> dict[str, tuple[str, str | None]]:
        """{distribution: (version recorded in the pickle, the image's version)} where they differ."""
        out = {}
        for name, recorded in self.recorded_versions.items():
            found = installed_distribution(name, self.packages)
            have = found[1] if found else None
            if have is None or not same_version(recorded, have):
                out[name] = (recorded, have)
        return out


def same_version(recorded: str, have: str) -> bool:
    """A recorded version against an installed one ("2.x": only the major version is known)."""
    if recorded.endswith(".x"):
        return have.split(".")[0] == recorded.split(".")[0]
    return recorded == have
