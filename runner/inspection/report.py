"""The parts of an inspection report: typed values, each filled once by the module of its concern.

`Inspection.to_dict()` is what `inspect --json` prints: the dataclasses below give its keys, in their
field order (a module's images: python -> {standard, full, auto} -> {present, distribution, version, note};
a recorded version's images: python -> {pin, status, note}).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .columns import ColumnNames


@dataclass
class PythonVersion:
    """Which Python made the pickle: `version` when certain, else the `candidates` the evidence allows."""

    version: str | None
    candidates: list[str]
    evidence: list[str]
    reasons_unknown: list[str]


@dataclass
class Presence:
    """Whether one image (one Python, one profile) has a module, and in which distribution and version."""

    present: bool | None  # None: the image's pins are unreadable
    distribution: str | None
    version: str | None
    note: str


@dataclass
class ProfilePresence:
    """One module in one Python's images: our standard profile, Numerai's image (full), what `run` builds (auto)."""

    standard: Presence
    full: Presence
    auto: Presence


@dataclass
class ModuleUse:
    """One top-level package the pickle needs, the names it uses in it, and which images have it."""

    package: str  # the top-level name, or inside a namespace package the package one wheel ships (google.protobuf)
    kind: str  # "stdlib", "third-party", "main" (the pickling script itself)
    names: list[str]
    images: dict[str, ProfilePresence]  # python -> its profiles


@dataclass
class PinCheck:
    """A recorded library version against one image's pin."""

    pin: str | None
    status: str  # same | ok | differs | breaks | missing | unknown
    note: str


@dataclass
class RecordedVersion:
    """A library version written inside the pickle, compared with each image's pin."""

    library: str
    version: str
    where: str  # what recorded it
    inferred: bool  # True: deduced from names, not written by the library
    images: dict[str, PinCheck]  # python -> the check against its pin


@dataclass
class CallableInfo:
    kind: str  # function, lambda, method, callable instance, class, partial, not callable, unknown
    name: str | None = None
    qualname: str | None = None
    params: list[str] | None = None
    n_params: int | None = None  # as inspect.signature(model).parameters counts them: 1 or 2 are valid
    notes: list[str] = field(default_factory=list)


@dataclass
class Risk:
    reference: str
    when: str  # "load" (runs while unpickling) or "call" (in the function's code)
    why: str


# Whether an image can load the pickle's code (ImageFit.load): the words `inspect` shows.
LOADS = "loads"
CANNOT_LOAD = "cannot load"
MAY_RUN = "made by another Python — may run"


@dataclass
class ImageFit:
    """Whether Numerai's image for one Python (as the auto profile builds it) can load the pickle, as far
    as static evidence tells. Only `load == CANNOT_LOAD` is certain (a run may end on it before any
    container); everything else is for the container to decide."""

    python: str
    load: str  # LOADS, CANNOT_LOAD or MAY_RUN
    why: str  # the evidence for `load`, in words
    blockers: list[str]  # modules or library versions the image lacks: loading will likely fail
    warnings: list[str]
    code: str = ""  # for MAY_RUN: what its bytecode would do there (the part of `why` after who made it)

    @property
    def loadable(self) -> bool:
        return self.load != CANNOT_LOAD


@dataclass
class Inspection:
    path: str
    size_bytes: int
    sha256: str | None
    protocol: int | None
    serializer: str
    serializer_evidence: list[str]
    python: PythonVersion
    modules: list[ModuleUse]
    recorded_versions: list[RecordedVersion]
    callable: CallableInfo
    risky: list[Risk]
    problems: list[str]
    images: dict[str, ImageFit]
    stats: dict[str, Any]
    columns: ColumnNames = field(default_factory=ColumnNames)  # live-data columns it names

    @property
    def is_pickle(self) -> bool:
        return self.stats.get("complete", False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, with stable keys."""
        return asdict(self)
