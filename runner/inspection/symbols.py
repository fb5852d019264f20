"""What the opcode walker holds instead of objects: names of what would be imported, records of what would be
called, heads and tails of payloads too large to keep; the walk's findings; its limits.

Nothing here is ever imported, called or unpickled: a `Global` only names, a `Call` only records.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Limits:
    full_limit: int = 1 << 16  # payloads up to this size are kept whole (budget permitting)
    budget: int = 64 << 20  # total payload bytes kept whole
    head: int = 4096  # kept from the start of a skipped payload
    tail: int = 4096  # kept from its end
    container_cap: int = 10_000  # items kept per list/dict/set
    memo_cap: int = 300_000  # memo entries kept
    call_cap: int = 200_000  # Call objects recorded for analysis
    # Lists, dicts, sets, tuples, calls and globals made: the walk stops beyond max(max_objects, one per
    # `bytes_per_object` bytes of the file), never beyond `objects_cap` (~100 bytes each: 200 MB at most).
    max_objects: int = 300_000
    bytes_per_object: int = 8
    objects_cap: int = 2_000_000
    max_stack: int = 1_000_000  # values on the stack at once: the walk stops beyond
    max_marks: int = 100_000  # MARKs open at once (Python's pickler nests ~1,000 deep at most): stops beyond
    max_seconds: float = 120.0  # give up walking (and say so) after this long


class Mark:
    """The MARK sentinel on the symbolic stack."""

    __slots__ = ()


MARK = Mark()


class Global:
    """What a GLOBAL / STACK_GLOBAL / INST would import: never imported here."""

    __slots__ = ("module", "name", "offset")

    def __init__(self, module: str, name: str, offset: int):
        self.module, self.name, self.offset = module, name, offset

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"

    def __repr__(self) -> str:
        return f"Global({self.dotted})"


class Call:
    """The result of calling `func` with `args` while loading (REDUCE, NEWOBJ, OBJ, INST)."""

    __slots__ = ("func", "args", "kwargs", "kind", "offset", "states", "extra_items")

    def __init__(self, func: Any, args: Any, kind: str, offset: int, kwargs: Any = None):
        self.func, self.args, self.kind, self.offset, self.kwargs = func, args, kind, offset, kwargs
        self.states: list[Any] = []  # BUILD states applied to the result
        self.extra_items = 0  # APPENDS/SETITEMS applied to the result

    def __repr__(self) -> str:
        return f"Call({self.func!r}, {self.kind}@{self.offset})"


class Blob:
    """A payload too large to keep: its length, first and last bytes."""

    __slots__ = ("kind", "length", "head", "tail", "offset")

    def __init__(self, kind: str, length: int, head: bytes, tail: bytes, offset: int):
        self.kind, self.length, self.head, self.tail, self.offset = kind, length, head, tail, offset

    def __repr__(self) -> str:
        return f"Blob({self.kind}, {self.length} bytes)"


class Opaque:
    """A value the walker cannot represent: a persistent id, an extension code, an out-of-band buffer,
    a forgotten memo entry."""

    __slots__ = ("what",)

    def __init__(self, what: str):
        self.what = what

    def __repr__(self) -> str:
        return f"Opaque({self.what})"


FORGOTTEN, PERSISTENT_ID, OUT_OF_BAND = (Opaque("a memo entry not kept"), Opaque("a persistent id"),
                                       Opaque("an out-of-band buffer"))


class SList(list):
    """A list (or, with `kind`, a set or frozenset) being built; `dropped` counts items not kept."""

    __slots__ = ("kind", "dropped")

    def __init__(self, items=(), kind: str = "list"):
        super().__init__(items)
        self.kind, self.dropped = kind, 0


class SDict(dict):
    __slots__ = ("dropped",)

    def __init__(self):
        super().__init__()
        self.dropped = 0


PayloadHook = Callable[[str, bytes, bytes, int], None]


@dataclass
class Walk:
    """Everything the opcode walk saw."""

    size: int
    protocol: int | None = None
    complete: bool = False  # reached STOP
    result: Any = None  # the symbolic object STOP would return
    end_offset: int = 0
    opcodes: int = 0
    max_opcode_protocol: int = 0
    globals: Counter = field(default_factory=Counter)  # (module, name) -> times referenced
    calls: list[Call] = field(default_factory=list)
    calls_dropped: int = 0
    out_of_band_buffers: int = 0
    persistent_ids: int = 0
    extension_codes: int = 0
    dropped_items: int = 0
    memo_dropped: int = 0
    payloads_skipped: int = 0
    bytes_skipped: int = 0
    problems: list[str] = field(default_factory=list)
    error_offset: int | None = None
    seconds: float = 0.0

    @property
    def trailing_bytes(self) -> int:
        return max(0, self.size - self.end_offset) if self.complete else 0


class Malformed(Exception):
    """The stream is not a well-formed pickle at this point."""


class OverBudget(Exception):
    """The stream builds more than the walker follows (Limits.max_objects, max_stack): it stops there."""


class Truncated(Exception):
    """The file ended in the middle of the stream."""


def describe(value: Any, depth: int = 0) -> str:
    """A short human description of a symbolic value (for evidence sentences)."""
    if depth > 3:
        return "..."
    if isinstance(value, Global):
        return value.dotted
    if isinstance(value, Call):
        return f"{describe(value.func, depth + 1)}(...)"
    if isinstance(value, Blob):
        return f"<{value.kind} of {value.length:,} bytes>"
    if isinstance(value, Opaque):
        return f"<{value.what}>"
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, (bytes, bytearray)):
        return f"<{type(value).__name__} of {len(value):,} bytes>"
    if isinstance(value, SDict):
        return f"<dict of {len(value)} items>"
    if isinstance(value, SList):
        return f"<{value.kind} of {len(value)} items>"
    if isinstance(value, tuple):
        return f"<tuple of {len(value)} items>"
    return repr(value)
