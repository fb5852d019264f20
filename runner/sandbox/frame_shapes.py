"""The shapes of the harness's JSON frames, enforced before the host reads one.

The model shares the harness's process and can write any frame it likes, so every value the host
reads from a frame must have the type the harness writes (runner/sandbox/harness.py) — a `phase`
that is a list, an `exception` that is a number, a traceback frame without its line must not become
numerai-sandbox's own crash. `shaped` takes a decoded body and returns it with every value the host
reads checked: a value of another type is left out (as if the harness had not sent it), a list keeps
only its items of the right shape, and a body that is not an object counts as no frame at all. Text
loses what cannot be printed or written as UTF-8 (lone surrogates). Keys the host never reads are
kept, their text cleaned the same way, down to a bounded depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

LARGEST = 2**63
MAX_DEPTH = 12  # below this, values the host never reads are dropped (a JSON body can nest ~1000 deep)


@dataclass(frozen=True)
class Shape:
    """An object's known keys and their shapes; `required`: without these, the object is left out."""

    keys: dict[str, Any]
    required: frozenset[str] = frozenset()


class OneOf(tuple):
    """Any of these shapes."""


class ListOf(tuple):
    """A list whose items have this shape (items of another shape are left out)."""


class MapOf(tuple):
    """An object of any keys, whose values have this shape (durations by phase)."""


INT, NUMBER, TEXT, FLAG, NULL = "int", "number", "text", "flag", "null"

TRACEBACK_FRAME = Shape({"file": TEXT, "line": OneOf((INT, NULL)), "function": TEXT, "code": TEXT},
                        required=frozenset({"file", "line", "function"}))
_FACTS = {"type": TEXT, "module": TEXT, "message": TEXT, "mro": ListOf((TEXT,)), "frames": ListOf((TRACEBACK_FRAME,)),
          "name": TEXT, "errno": OneOf((INT, TEXT)), "code": OneOf((INT, TEXT)), "filename": OneOf((TEXT, INT)),
          "obj_type": TEXT, "text": TEXT}
CAUSE = Shape(_FACTS)  # an exception of the chain: the same facts, no chain of its own
EXCEPTION = Shape(_FACTS | {"chain": ListOf((CAUSE,))})
PARAMETER = Shape({"name": TEXT, "kind": TEXT, "default": FLAG}, required=frozenset({"name"}))
MODEL = Shape({"kind": TEXT, "type": TEXT, "name": OneOf((TEXT, NULL)), "parameters": ListOf((PARAMETER,)),
               "n_parameters": INT})

FRAMES: dict[str, Shape] = {
    "hello": Shape({"protocol": INT, "python": TEXT}),
    "phase": Shape({"phase": TEXT, "at": NUMBER, "ahead": FLAG}),
    "ready": Shape({"preloaded": ListOf((TEXT,)), "at": NUMBER}),
    "go": Shape({"at": NUMBER}),
    "model": MODEL,
    "data": Shape({"rows": INT, "columns": INT, "benchmark_columns": OneOf((INT, NULL))}),
    "error": Shape({"phase": OneOf((TEXT, NULL)), "kind": TEXT, "numerai_log": OneOf((TEXT, NULL)),
                    "exception": EXCEPTION, "model": MODEL}),
    "result": Shape({"returned_type": TEXT, "exact_dataframe": FLAG, "in_image_failed": OneOf((TEXT, NULL)),
                     "in_image_log": OneOf((TEXT, NULL)), "rows": INT, "index_levels": INT,
                     "index_names": ListOf((OneOf((TEXT, NULL)),)), "columns": ListOf((TEXT,)), "n_columns": INT,
                     "first_column_dtype": OneOf((TEXT, NULL)), "unwritable": EXCEPTION, "numerai_log": TEXT,
                     "output_too_large": INT}),
    "done": Shape({"durations": MapOf((NUMBER,)), "peak_rss_bytes": INT}),
}

_MISSING = object()


def shaped(kind: str, body: Any) -> Any:
    """The body of a frame of `kind`, with every value the host reads of the harness's type (see above);
    None when the body is not an object."""
    shape = FRAMES.get(kind)
    if shape is None:
        return _cleaned(body, 0)
    found = _conform(body, shape, 0)
    return None if found is _MISSING else found


def _conform(value: Any, shape: Any, depth: int) -> Any:
    """`value` if it has `shape` (cleaned), else _MISSING."""
    if isinstance(shape, str):
        return _scalar(value, shape)
    if isinstance(shape, OneOf):
        for option in shape:
            found = _conform(value, option, depth)
            if found is not _MISSING:
                return found
        return _MISSING
    if isinstance(shape, ListOf):
        if not isinstance(value, list):
            return _MISSING
        items = (_conform(item, shape[0], depth + 1) for item in value)
        return [item for item in items if item is not _MISSING]
    if isinstance(shape, MapOf):
        if not isinstance(value, dict):
            return _MISSING
        pairs = ((_text(key), _conform(item, shape[0], depth + 1)) for key, item in value.items())
        return {key: item for key, item in pairs if item is not _MISSING}
    if not isinstance(value, dict):
        return _MISSING
    out = {}
    for key, item in value.items():
        inner = shape.keys.get(key)
        found = _cleaned(item, depth + 1) if inner is None else _conform(item, inner, depth + 1)
        if found is not _MISSING:
            out[_text(key)] = found
    return out if shape.required <= out.keys() else _MISSING


def _scalar(value: Any, kind: str) -> Any:
    if kind == TEXT:
        return _text(value) if isinstance(value, str) else _MISSING
    if kind == INT:  # counts, sizes, codes: the harness's are machine integers
        ok = isinstance(value, int) and not isinstance(value, bool) and -LARGEST < value < LARGEST
        return value if ok else _MISSING
    if kind == NUMBER:  # times and durations: finite, and a float (a huge integer is not one)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and -LARGEST < value < LARGEST
        return value if ok and math.isfinite(value) else _MISSING
    if kind == FLAG:
        return value if isinstance(value, bool) else _MISSING
    return None if value is None else _MISSING


def _cleaned(value: Any, depth: int) -> Any:
    """A value the host does not read, kept with printable text, bounded in depth."""
    if isinstance(value, str):
        return _text(value)
    if depth >= MAX_DEPTH and isinstance(value, (list, dict)):
        return _MISSING
    if isinstance(value, list):
        return [item for item in (_cleaned(i, depth + 1) for i in value) if item is not _MISSING]
    if isinstance(value, dict):
        pairs = ((_text(key), _cleaned(item, depth + 1)) for key, item in value.items())
        return {key: item for key, item in pairs if item is not _MISSING}
    return value


def _text(value: str) -> str:
    """The text as UTF-8 can carry it: a lone surrogate (JSON's "\\ud800") becomes U+FFFD."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value
