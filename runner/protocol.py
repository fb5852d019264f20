"""Host side of the harness's report channel: frames parsed incrementally, with caps.

The harness writes `NSBX1 <kind> <length>\\n<payload>` frames on the container's
stdout. The model shares the process and could write garbage there too, so the
parser never trusts a length beyond its caps and stops at the first malformed
header: what came before stays usable, the rest is reported as a broken channel.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .frame_shapes import shaped

MAGIC = b"NSBX1 "
MAX_HEADER = 128
MAX_JSON_FRAME = 4 * 1024 * 1024
KINDS = {"hello", "phase", "model", "data", "error", "result", "predictions", "done", "ready", "go"}
# The harness's own lines in the model's log (harness.log writes them): kept in the log, never shown as the model's.
HARNESS_LOG_PREFIX = "numerai-sandbox harness: "


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

    # ------------------------------------------------------------ what the frames say

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

    def phase_times(self, started_at: float, ended_at: float) -> list[dict[str, Any]]:
        """Each harness phase with its start and end, in seconds since the container started.

        Starts come from the phase frames' clock readings (`at`, the kernel's clock the host
        shares), clamped into the container's life; a phase ends where the harness measured
        its duration, else where the next one starts, else when the container ended.
        """
        life = max(ended_at - started_at, 0.0)
        starts: list[tuple[str, float]] = []
        for frame in self.frames:
            if frame.kind != "phase":
                continue
            try:
                body = frame.json()
                name, at = body["phase"], float(body["at"])
            except (ValueError, UnicodeDecodeError, KeyError, TypeError):
                continue
            if isinstance(name, str) and name not in {n for n, _ in starts} and math.isfinite(at):
                starts.append((name[:40], min(max(at - started_at, 0.0), life)))
        done = self.last("done")
        durations = done.get("durations") if isinstance(done, dict) else None
        durations = durations if isinstance(durations, dict) else {}
        out = []
        for i, (name, start) in enumerate(starts):
            following = starts[i + 1][1] if i + 1 < len(starts) else life
            measured = durations.get(name)
            end = following
            if isinstance(measured, (int, float)) and math.isfinite(measured):
                end = min(start + max(measured, 0.0), following)
            out.append({"phase": name, "start": round(start, 3), "end": round(end, 3)})
        return out

    @property
    def phase(self) -> str | None:
        body = self.last("phase")
        return body.get("phase") if isinstance(body, dict) else None

    @property
    def done(self) -> bool:
        return any(f.kind == "done" for f in self.frames)
