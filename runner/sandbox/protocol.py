"""Host side of the harness's report channel: frames parsed incrementally with caps, then once into types.

The harness (runner/sandbox/harness.py, beside this module) writes `NSBX1 <kind> <length>\\n<payload>`
frames on the container's stdout; its words (frame kinds, phases, error kinds, exit codes) are defined
there, once, and read from there. The model shares the process and could write garbage too, so
`FrameParser` never trusts a length beyond its caps and stops at the first malformed header: what came
before stays usable, the rest is reported as a broken channel.

Once the container ended, `read_frames` turns what arrived into `Frames`: small frozen dataclasses
(the model, the data, the error with its exception, the result, the durations), each field checked
for its type on the way in, so the verdict code reads attributes, never `.get()` on a model-made dict.
What the frames say is evidence from the model's process: it explains a failure, never makes one a
success (the engine's facts, in runner/sandbox/backend.Outcome, cannot be forged).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .frame_shapes import shaped
from .harness import (ERROR_KINDS, EXIT_CHANNEL_LOST, EXIT_HARNESS_ERROR, FRAME_KINDS, LOG_PREFIX, PHASES,
                      PROTOCOL)

__all__ = ["DOING", "ERROR_KINDS", "EXIT_CHANNEL_LOST", "EXIT_HARNESS_ERROR", "LOG_PREFIX", "PHASES", "WORK_PHASES",
           "Done", "ErrorReport", "ExceptionFacts", "Frame", "FrameParser", "Frames", "ModelFacts", "Returned",
           "TraceFrame", "read_frames"]

MAGIC = f"{PROTOCOL} ".encode()
MAX_HEADER = 128
MAX_JSON_FRAME = 4 * 1024 * 1024
KINDS = frozenset(FRAME_KINDS)
# The harness's phases that do the run's work (not starting Python, not checking or writing the result), in
# its order: the terminal names each as it starts, and a native crash in one may be a library mismatch.
WORK_PHASES = ("loading", "reading_data", "reading_benchmarks", "predicting")
# What the model's process was doing in each phase, in words ("... while loading the pickle"). None: no
# phase reported yet; "inspecting" is the host's own, before any container.
DOING = {
    None: "starting the container",
    "inspecting": "reading the pickle (nothing was run)",
    "starting": "starting Python and importing pandas",
    "loading": "loading the pickle",
    "reading_data": "reading the live data",
    "reading_benchmarks": "reading the benchmark models",
    "predicting": "predicting",
    "checking": "checking the predictions",
    "writing": "writing the predictions",
}
assert set(DOING) - {None, "inspecting"} == set(PHASES)


def doing(phase: str | None) -> str:
    """The phase in words; a phase this table does not know, by its name."""
    return DOING.get(phase, phase or "?")


@dataclass
class Frame:
    kind: str
    payload: bytes | bytearray  # a predictions frame keeps the bytearray it was received into (no copy)

    def json(self) -> Any:
        """The body, every value the host reads of the harness's type (frame_shapes); ValueError when it is
        not JSON (too deeply nested included)."""
        try:
            return shaped(self.kind, json.loads(self.payload.decode("utf-8")))
        except RecursionError as exc:
            raise ValueError(f"a {self.kind} frame nested too deeply") from exc


@dataclass
class FrameParser:
    max_predictions: int
    frames: list[Frame] = field(default_factory=list)
    broken: str | None = None  # why the channel stopped making sense
    oversized: int | None = None  # declared size of a predictions frame beyond the cap
    _buffer: bytearray = field(default_factory=bytearray)  # bytes not yet placed: a header, the chunk at hand
    _pending: tuple[str, int] | None = None
    _body: bytearray | None = None  # the pending frame's payload, allocated once at its declared length
    _filled: int = 0

    def feed(self, chunk: bytes) -> list[Frame]:
        """Consume bytes; return the frames completed by them.

        A payload is copied once, into a bytearray of its declared length (a million predictions are
        ~40 MB: growing a buffer and slicing it would hold them two or three times at once)."""
        if self.broken or self.oversized:
            return []
        self._buffer += chunk
        done: list[Frame] = []
        while True:
            if self._pending is None:
                newline = self._buffer.find(b"\n", 0, MAX_HEADER)
                if newline < 0:
                    if len(self._buffer) >= MAX_HEADER or (self._buffer and not MAGIC.startswith(
                            bytes(self._buffer[:len(MAGIC)]))):
                        self.broken = f"unexpected bytes on the report channel: {bytes(self._buffer[:40])!r}"
                    break
                header = bytes(self._buffer[:newline])
                del self._buffer[:newline + 1]
                parsed = self._parse_header(header)
                if parsed is None:
                    break
                self._pending = parsed
                self._body, self._filled = bytearray(parsed[1]), 0  # large: zero pages, resident as filled
            kind, length = self._pending
            take = min(length - self._filled, len(self._buffer))
            with memoryview(self._buffer) as view:
                self._body[self._filled:self._filled + take] = view[:take]
            del self._buffer[:take]
            self._filled += take
            if self._filled < length:
                break
            frame = Frame(kind, self._body if kind == "predictions" else bytes(self._body))
            self._pending, self._body = None, None
            self.frames.append(frame)
            done.append(frame)
        return done

    def _parse_header(self, header: bytes) -> tuple[str, int] | None:
        parts = header.split(b" ")
        if len(parts) != 3 or parts[0] + b" " != MAGIC or not parts[2].isdigit():
            self.broken = f"malformed frame header {header[:60]!r}"
            return None
        kind, length = parts[1].decode("ascii", "replace"), int(parts[2])
        if kind not in KINDS:
            self.broken = f"unknown frame kind {kind!r}"
            return None
        if kind == "predictions" and length > self.max_predictions:
            self.oversized = length
            return None
        if kind != "predictions" and length > MAX_JSON_FRAME:
            self.broken = f"{kind} frame of {length} bytes exceeds {MAX_JSON_FRAME}"
            return None
        return kind, length

    def last(self, kind: str) -> Any:
        """The JSON body of the last frame of this kind, or None (a bad body counts as none)."""
        for frame in reversed(self.frames):
            if frame.kind == kind:
                try:
                    return frame.json() if kind != "predictions" else frame.payload
                except (ValueError, UnicodeDecodeError):
                    return None
        return None

    def take(self, kind: str) -> bytes | bytearray | None:
        """The payload of the last frame of this kind, handed over: the parser drops its frames of that
        kind, so a large payload (the predictions) is held once, by the caller, who can let it go."""
        found = next((f.payload for f in reversed(self.frames) if f.kind == kind), None)
        self.frames = [f for f in self.frames if f.kind != kind]
        return found

    @property
    def phase(self) -> str | None:
        """The phase the harness reported last (while it runs: what the live display shows)."""
        body = self.last("phase")
        return text(body.get("phase")) if isinstance(body, dict) else None


# ---------------------------------------------------------------- the frames as types

def text(value: Any) -> str | None:
    """A string the harness sent, or None for anything else."""
    return value if isinstance(value, str) else None


def whole(value: Any) -> int | None:
    """A whole number the harness sent (not a bool), or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class TraceFrame:
    """One frame of a traceback, as the harness extracted it."""

    file: str = ""
    line: int | None = None
    function: str = ""
    code: str = ""

    @classmethod
    def parse(cls, body: Any) -> "TraceFrame":
        body = _dict(body)
        return cls(text(body.get("file")) or "", whole(body.get("line")), text(body.get("function")) or "",
                   text(body.get("code")) or "")

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "function": self.function, "code": self.code}


SUMMARY_FIELDS = ("type", "module", "message", "name", "errno", "filename", "obj_type")


@dataclass(frozen=True)
class ExceptionFacts:
    """An exception of the model's process, as data: its class (and classes), message, frames, the
    attributes that name a cause, the exceptions it arose from (oldest first) and its traceback's text."""

    type: str | None = None
    module: str | None = None
    message: str | None = None
    mro: tuple[str, ...] = ()
    frames: tuple[TraceFrame, ...] = ()
    name: str | None = None  # ImportError's module, AttributeError's attribute
    errno: int | None = None
    code: int | str | None = None  # SystemExit's
    filename: str | int | None = None
    obj_type: str | None = None  # AttributeError: the class of the object that lacks the attribute
    text: str | None = None  # the formatted traceback
    chain: tuple["ExceptionFacts", ...] = ()

    @classmethod
    def parse(cls, body: Any) -> "ExceptionFacts":
        body = _dict(body)
        code, filename = body.get("code"), body.get("filename")
        return cls(type=text(body.get("type")), module=text(body.get("module")), message=text(body.get("message")),
                   mro=tuple(m for m in body.get("mro") or () if isinstance(m, str)),
                   frames=tuple(TraceFrame.parse(f) for f in body.get("frames") or () if isinstance(f, dict)),
                   name=text(body.get("name")), errno=whole(body.get("errno")),
                   code=code if isinstance(code, str) or whole(code) is not None else None,
                   filename=filename if isinstance(filename, str) or whole(filename) is not None else None,
                   obj_type=text(body.get("obj_type")), text=text(body.get("text")),
                   chain=tuple(cls.parse(c) for c in body.get("chain") or () if isinstance(c, dict)))

    @property
    def said(self) -> str:
        """The message, "" when there is none."""
        return self.message or ""

    def summary(self) -> dict[str, Any]:
        """What the report's evidence keeps of it."""
        return {k: getattr(self, k) for k in SUMMARY_FIELDS if getattr(self, k) is not None}


@dataclass(frozen=True)
class Parameter:
    name: str | None
    kind: str | None
    default: bool


@dataclass(frozen=True)
class ModelFacts:
    """What the unpickled object turned out to be, without calling it: its kind, type, parameters."""

    kind: str | None = None  # function, lambda, method, class, builtin, partial, callable instance, not callable
    type: str | None = None
    name: str | None = None
    parameters: tuple[Parameter, ...] | None = None  # None: inspect.signature failed (or never ran)
    n_parameters: int | None = None

    @classmethod
    def parse(cls, body: Any) -> "ModelFacts":
        body = _dict(body)
        params = body.get("parameters")
        parameters = tuple(Parameter(text(p.get("name")), text(p.get("kind")), bool(p.get("default")))
                           for p in params if isinstance(p, dict)) if isinstance(params, list) else None
        return cls(text(body.get("kind")), text(body.get("type")), text(body.get("name")), parameters,
                   whole(body.get("n_parameters")))

    @property
    def parameter_names(self) -> list[str | None]:
        return [p.name for p in self.parameters or ()]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "type": self.type, "name": self.name}
        if self.parameters is not None:
            out["parameters"] = [{"name": p.name, "kind": p.kind, "default": p.default} for p in self.parameters]
        if self.n_parameters is not None:
            out["n_parameters"] = self.n_parameters
        return out


@dataclass(frozen=True)
class ErrorReport:
    """The harness's report of the run's end before any result: where, which kind of failure, the line
    numerai-predict would log for it, and the exception (empty when there was none)."""

    kind: str | None  # one of ERROR_KINDS
    phase: str | None
    numerai_log: str | None
    exception: ExceptionFacts
    model: ModelFacts | None = None  # bad_signature: what the object is

    @classmethod
    def parse(cls, body: dict[str, Any]) -> "ErrorReport":
        return cls(text(body.get("kind")), text(body.get("phase")), text(body.get("numerai_log")),
                   ExceptionFacts.parse(body.get("exception")),
                   ModelFacts.parse(body["model"]) if isinstance(body.get("model"), dict) else None)

    @property
    def has_exception(self) -> bool:
        return self.exception != ExceptionFacts()


@dataclass(frozen=True)
class Returned:
    """What the function returned, as the host needs it to re-check the CSV (the harness's result frame)."""

    returned_type: str | None = None
    exact_dataframe: bool = False
    in_image_failed: str | None = None  # numerai-predict's first failing in-image check
    in_image_log: str | None = None  # and its log line
    rows: int | None = None
    index_levels: int | None = None
    index_names: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    n_columns: int | None = None
    first_column_dtype: str | None = None
    unwritable: ExceptionFacts | None = None  # to_csv raised this
    numerai_log: str | None = None  # the line for an unwritable DataFrame
    output_too_large: int | None = None  # the CSV's size, when over the cap

    @classmethod
    def parse(cls, body: Any) -> "Returned":
        body = _dict(body)
        return cls(text(body.get("returned_type")), bool(body.get("exact_dataframe")),
                   text(body.get("in_image_failed")), text(body.get("in_image_log")), whole(body.get("rows")),
                   whole(body.get("index_levels")),
                   tuple(str(n) for n in body.get("index_names") or () if isinstance(n, str)),
                   tuple(str(c) for c in body.get("columns") or () if isinstance(c, str)),
                   whole(body.get("n_columns")), text(body.get("first_column_dtype")),
                   ExceptionFacts.parse(body["unwritable"]) if isinstance(body.get("unwritable"), dict) else None,
                   text(body.get("numerai_log")), whole(body.get("output_too_large")))


@dataclass(frozen=True)
class Done:
    """The harness's last word: seconds per phase (its own clock) and its peak RSS."""

    durations: dict[str, float] = field(default_factory=dict)
    peak_rss_bytes: int | None = None

    @classmethod
    def parse(cls, body: Any) -> "Done":
        body = _dict(body)
        durations = {k: float(v) for k, v in _dict(body.get("durations")).items()
                     if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)}
        return cls(durations, whole(body.get("peak_rss_bytes")))


@dataclass
class Frames:
    """Everything the report channel said, parsed once after the container ended."""

    harness_started: bool = False  # a hello (or, pre-started, a go) frame came
    phase: str | None = None  # the last phase reported
    phase_marks: tuple[tuple[str, float], ...] = ()  # (phase, the harness's clock reading), in order
    model: ModelFacts | None = None
    rows: int | None = None  # the live data's rows, as the harness read them
    error: ErrorReport | None = None
    result: Returned | None = None
    done: Done | None = None  # None: the harness never said its last word
    broken: str | None = None  # why the channel stopped making sense
    oversized: int | None = None  # a predictions frame declared beyond the cap
    predictions: bytes | bytearray | None = field(default=None, repr=False)

    @property
    def finished(self) -> bool:
        return self.done is not None

    def take_predictions(self) -> bytes | bytearray | None:
        """The predictions' CSV, handed over (held once, by the caller)."""
        payload, self.predictions = self.predictions, None
        return payload

    def phase_times(self, started_at: float, ended_at: float) -> list[dict[str, Any]]:
        """Each harness phase with its start and end, in seconds since the container started.

        Starts come from the phase frames' clock readings (`at`, the kernel's clock the host
        shares), clamped into the container's life; a phase ends where the harness measured
        its duration, else where the next one starts, else when the container ended.
        """
        life = max(ended_at - started_at, 0.0)
        starts: list[tuple[str, float]] = []
        for name, at in self.phase_marks:
            if name not in {n for n, _ in starts} and math.isfinite(at):
                starts.append((name[:40], min(max(at - started_at, 0.0), life)))
        durations = self.done.durations if self.done else {}
        out = []
        for i, (name, start) in enumerate(starts):
            following = starts[i + 1][1] if i + 1 < len(starts) else life
            measured = durations.get(name)
            end = following
            if measured is not None and math.isfinite(measured):
                end = min(start + max(measured, 0.0), following)
            out.append({"phase": name, "start": round(start, 3), "end": round(end, 3)})
        return out


def read_frames(parser: FrameParser) -> Frames:
    """The parser's frames as types (the predictions handed over: the parser keeps none)."""
    marks = []
    for frame in parser.frames:
        if frame.kind != "phase":
            continue
        try:
            body = frame.json()
            name, at = body["phase"], float(body["at"])
        except (ValueError, UnicodeDecodeError, KeyError, TypeError):
            continue
        if isinstance(name, str):
            marks.append((name, at))
    error, result, model, data = (parser.last(kind) for kind in ("error", "result", "model", "data"))
    done = any(f.kind == "done" for f in parser.frames)
    return Frames(
        harness_started=parser.last("hello") is not None or parser.last("go") is not None,
        phase=parser.phase, phase_marks=tuple(marks),
        model=ModelFacts.parse(model) if isinstance(model, dict) else None,
        rows=whole(data.get("rows")) if isinstance(data, dict) else None,
        error=ErrorReport.parse(error) if isinstance(error, dict) else None,
        result=Returned.parse(result) if isinstance(result, dict) else None,
        done=Done.parse(parser.last("done")) if done else None,
        broken=parser.broken, oversized=parser.oversized, predictions=parser.take("predictions"))
