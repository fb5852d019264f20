"""Reading a pickle's opcode stream without running any of it.

Unpickling is running code: every GLOBAL names something to import and every
REDUCE calls it. This module never imports or calls anything from the pickle.
It walks the opcodes and keeps a *symbolic* stack and memo: a GLOBAL becomes a
`Global` naming what would have been imported, a REDUCE becomes a `Call` holding
the callable and its arguments, a BUILD records its state on its target. That is
enough to see which modules a pickle needs, how cloudpickle rebuilds functions
and code objects, and what libraries wrote into their own state.

Memory stays bounded whatever the file holds: payloads (BINBYTES8, BINUNICODE,
BYTEARRAY8, ...) larger than `full_limit` are not read: only a head and a tail
are kept and the rest is skipped by seeking, and containers, memo and recorded
calls have caps; what was dropped is counted, never silently lost. A stream that
builds more objects (lists, dicts, tuples, calls, globals) than `max_objects`, or
holds more values or MARKs at once than `max_stack` and `max_marks`, is not followed further: the walk stops
there and says so (a model pickle holds far fewer; a hostile one would otherwise
make the host hold a symbolic object for every few bytes of the file). The time is
linear in the file's size, at worst about a microsecond per byte.
"""

from __future__ import annotations

import codecs
import os
import pickletools
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

CHUNK = 1 << 20  # bytes read from the file at a time
MAX_LINE = 1 << 16  # longest text argument (GLOBAL, INT, ...) accepted


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


class _Reader:
    """Buffered reading that can skip over large payloads by seeking."""

    def __init__(self, handle: BinaryIO, size: int):
        self.handle, self.size = handle, size
        self.buf = b""
        self.pos = 0
        self.base = 0  # file offset of buf[0]

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def _fill(self, n: int) -> bool:
        if self.pos + n <= len(self.buf):
            return True
        rest = self.buf[self.pos:]
        self.base += self.pos
        self.pos = 0
        self.buf = rest + self.handle.read(max(CHUNK, n - len(rest)))
        return len(self.buf) >= n

    def byte(self) -> int:
        if self.pos >= len(self.buf) and not self._fill(1):
            raise Truncated()
        value = self.buf[self.pos]
        self.pos += 1
        return value

    def take(self, n: int) -> bytes:
        if not self._fill(n):
            raise Truncated()
        data = self.buf[self.pos:self.pos + n]
        self.pos += n
        return data

    def line(self) -> bytes:
        while True:
            end = self.buf.find(b"\n", self.pos)
            if end - self.pos > MAX_LINE:
                raise Malformed(f"a text argument longer than {MAX_LINE} bytes")
            if end >= 0:
                data = self.buf[self.pos:end]
                self.pos = end + 1
                return data
            have = len(self.buf) - self.pos
            if have > MAX_LINE:
                raise Malformed(f"a text argument longer than {MAX_LINE} bytes")
            if not self._fill(have + 1):
                raise Truncated()

    def long_line(self, keep: int) -> tuple[bytes, int]:
        """A text argument of any length — protocol 0's STRING and UNICODE (numpy writes an array's data
        there, escaped: megabytes) — as its first `keep` bytes and its length; the rest is passed over."""
        head = bytearray()
        length = 0
        while True:
            end = self.buf.find(b"\n", self.pos)
            stop = end if end >= 0 else len(self.buf)
            if len(head) < keep:
                head += self.buf[self.pos:min(stop, self.pos + keep - len(head))]
            length += stop - self.pos
            self.pos = stop
            if end >= 0:
                self.pos = end + 1
                return bytes(head), length
            if not self._fill(1):
                raise Truncated()

    def skip(self, n: int) -> None:
        if self.offset + n > self.size:
            raise Truncated()
        if self.pos + n <= len(self.buf):
            self.pos += n
            return
        target = self.offset + n
        self.handle.seek(target)
        self.base, self.pos, self.buf = target, 0, b""


def _opcode_table() -> dict[int, tuple[str, int]]:
    """byte -> (opcode name, protocol), from the standard library's own description of the format."""
    return {ord(info.code): (info.name, info.proto) for info in pickletools.opcodes}


OPCODES = _opcode_table()
_U2, _I4, _U4, _U8, _F8 = (struct.Struct(f).unpack for f in ("<H", "<i", "<I", "<Q", ">d"))


class Walker:
    """One pass over one pickle stream: a handler per opcode, dispatched by the opcode's byte."""

    def __init__(self, reader: _Reader, walk: Walk, limits: Limits, on_payload: PayloadHook | None):
        self.r, self.walk, self.limits, self.on_payload = reader, walk, limits, on_payload
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.floor = 0  # stack index of the innermost MARK: items below it are not poppable
        self.memo: dict[int, Any] = {}
        self.kept = 0
        self.made = 0  # symbolic objects made (containers, tuples, calls, globals, opaque values)
        self.max_objects = min(limits.objects_cap, max(limits.max_objects, walk.size // limits.bytes_per_object))
        self.handlers: list[Callable[[int], bool] | None] = [None] * 256
        self.protocols = [0] * 256
        for code, (name, proto) in OPCODES.items():
            self.handlers[code] = getattr(self, "op_" + name)
            self.protocols[code] = proto

    # ------------------------------------------------------------ the loop

    def run(self) -> None:
        """Dispatch every opcode to its handler; the most frequent ones are handled inline (hot loop)."""
        walk, r, handlers, protocols = self.walk, self.r, self.handlers, self.protocols
        stack, memo, memo_cap = self.stack, self.memo, self.limits.memo_cap
        deadline = time.monotonic() + self.limits.max_seconds
        count, highest = 0, 0
        buf, pos = r.buf, r.pos
        try:
            while True:
                if pos + 9 > len(buf):  # keep the next opcode and a fixed-size argument buffered
                    r.pos = pos
                    r._fill(9)
                    buf, pos = r.buf, r.pos
                    if pos >= len(buf):
                        raise Truncated()
                code = buf[pos]
                count += 1
                if not count & 0xFFFF:
                    if time.monotonic() > deadline:
                        walk.problems.append(f"stopped walking after {self.limits.max_seconds:g} s at offset "
                                             f"{r.base + pos:,} of {walk.size:,}: the rest was not inspected")
                        return
                    r.pos = pos  # where the walk stops, should it stop here
                    self._check_budget()
                if protocols[code] > highest:
                    highest = protocols[code]
                if pos + 9 <= len(buf):  # inline fast paths need their argument in the buffer
                    if code == 0x94:  # MEMOIZE
                        if len(stack) <= self.floor:
                            raise Malformed("stack underflow")
                        if len(memo) < memo_cap:
                            memo[len(memo) + walk.memo_dropped] = stack[-1]
                        else:
                            walk.memo_dropped += 1
                        pos += 1
                        continue
                    if code == 0x68 and buf[pos + 1] in memo:  # BINGET of a kept entry
                        stack.append(memo[buf[pos + 1]])
                        pos += 2
                        continue
                    if code == 0x8C and buf[pos + 1] < 64 and pos + 2 + buf[pos + 1] <= len(buf):  # short text
                        n = buf[pos + 1]
                        stack.append(buf[pos + 2:pos + 2 + n].decode("utf-8", "surrogatepass"))
                        self.kept += n
                        pos += 2 + n
                        continue
                    if code == 0x4B:  # BININT1
                        stack.append(buf[pos + 1])
                        pos += 2
                        continue
                    if code == 0x4A:  # BININT
                        stack.append(_I4(buf[pos + 1:pos + 5])[0])
                        pos += 5
                        continue
                    if code == 0x47:  # BINFLOAT
                        stack.append(_F8(buf[pos + 1:pos + 9])[0])
                        pos += 9
                        continue
                    if code == 0x4E:  # NONE
                        stack.append(None)
                        pos += 1
                        continue
                    if code == 0x5D or code == 0x7D:  # EMPTY_LIST, EMPTY_DICT
                        stack.append(SList() if code == 0x5D else SDict())
                        self.made += 1
                        pos += 1
                        continue
                    if code == 0x28:  # MARK
                        self.floor = len(stack)
                        self.marks.append(self.floor)
                        pos += 1
                        continue
                    if code == 0x61 and len(stack) > self.floor + 1 and type(stack[-2]) is SList \
                            and len(stack[-2]) < self.limits.container_cap:  # APPEND to a list with room
                        stack[-2].append(stack.pop())
                        pos += 1
                        continue
                    if code == 0x85 and len(stack) > self.floor:  # TUPLE1
                        stack[-1] = (stack[-1],)
                        self.made += 1
                        pos += 1
                        continue
                offset = r.base + pos
                handler = handlers[code]
                if handler is None:
                    walk.error_offset = offset
                    raise Malformed(f"byte 0x{code:02x} at offset {offset} is not a pickle opcode")
                r.pos = pos + 1
                try:
                    done = handler(offset)
                except Malformed:
                    walk.error_offset = offset
                    raise
                buf, pos = r.buf, r.pos
                if done:
                    walk.end_offset = r.base + pos
                    return
        finally:
            r.pos = pos if r.buf is buf else r.pos
            walk.opcodes, walk.max_opcode_protocol = count, highest

    # ------------------------------------------------------------ stack helpers

    def _check_budget(self) -> None:
        limits = self.limits
        if self.made > self.max_objects:
            raise OverBudget(f"the stream builds more than {self.max_objects:,} objects (lists, dicts, tuples, "
                             f"calls, globals) in {self.walk.size:,} bytes, far more than a model pickle does")
        if len(self.marks) > limits.max_marks:
            raise OverBudget(f"the stream opens more than {limits.max_marks:,} MARKs at once (Python's pickler nests "
                             "about 1,000 deep at most)")
        if len(self.stack) > limits.max_stack:
            raise OverBudget(f"the stream holds more than {limits.max_stack:,} values at once, far more than a "
                             "model pickle does")

    def pop(self) -> Any:
        if len(self.stack) <= self.floor:
            raise Malformed("stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if len(self.stack) <= self.floor:
            raise Malformed("stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise Malformed("no MARK to pop to")
        start = self.marks.pop()
        self.floor = self.marks[-1] if self.marks else 0
        items = self.stack[start:]
        del self.stack[start:]
        return items

    # ------------------------------------------------------------ arguments

    def u1(self) -> int:
        r = self.r
        if r.pos < len(r.buf):
            r.pos += 1
            return r.buf[r.pos - 1]
        return r.byte()

    def take(self, n: int) -> bytes:
        r = self.r
        if r.pos + n <= len(r.buf):
            r.pos += n
            return r.buf[r.pos - n:r.pos]
        return r.take(n)

    def payload(self, n: int, kind: str) -> Any:
        """A length-prefixed payload: kept whole when small, else a Blob with head and tail."""
        lim = self.limits
        if n < 0:
            raise Malformed("negative length")
        if n <= lim.full_limit and self.kept + n <= lim.budget:
            data = self.take(n)
            self.kept += n
            if n >= 64 and self.on_payload is not None:
                self.on_payload(kind, data, b"", n)
            if kind == "str":
                return data.decode("utf-8", "surrogatepass")
            return bytearray(data) if kind == "bytearray" else data
        start = self.r.offset
        head_n = min(n, lim.head)
        head = self.r.take(head_n)
        tail_n = min(lim.tail, n - head_n)
        self.r.skip(n - head_n - tail_n)
        tail = self.r.take(tail_n) if tail_n else b""
        self.walk.payloads_skipped += 1
        self.walk.bytes_skipped += n - head_n - tail_n
        if self.on_payload is not None:
            self.on_payload(kind, head, tail, n)
        return Blob(kind, n, head, tail, start)

    def line(self) -> bytes:
        return self.r.line()

    def text_line(self) -> str:
        return self.r.line().decode("utf-8", "replace")

    def int_line(self) -> int:
        return self._parse_int(self.r.line())

    # ------------------------------------------------------------ framing, protocol, end

    def op_PROTO(self, offset: int) -> bool:
        self.walk.protocol = self.u1()
        if self.walk.protocol > 5:
            self.walk.problems.append(f"protocol {self.walk.protocol} is newer than any Python knows (5)")
        return False

    def op_FRAME(self, offset: int) -> bool:
        length = _U8(self.take(8))[0]
        if self.r.offset + length > self.walk.size:
            raise Truncated()
        return False

    def op_STOP(self, offset: int) -> bool:
        self.walk.result = self.pop()
        self.walk.complete = True
        return True

    # ------------------------------------------------------------ memo

    def _memo_put(self, index: int, value: Any) -> bool:
        if index in self.memo or len(self.memo) < self.limits.memo_cap:
            self.memo[index] = value
        else:
            self.walk.memo_dropped += 1
        return False

    def op_MEMOIZE(self, offset: int) -> bool:  # hot: inlined
        stack, memo = self.stack, self.memo
        if len(stack) <= self.floor:
            raise Malformed("stack underflow")
        if len(memo) < self.limits.memo_cap:
            memo[len(memo) + self.walk.memo_dropped] = stack[-1]
        else:
            self.walk.memo_dropped += 1
        return False

    def op_BINPUT(self, offset: int) -> bool:
        return self._memo_put(self.u1(), self.top())

    def op_LONG_BINPUT(self, offset: int) -> bool:
        return self._memo_put(_U4(self.take(4))[0], self.top())

    def op_PUT(self, offset: int) -> bool:
        return self._memo_put(self.int_line(), self.top())

    def _memo_get(self, index: int) -> bool:
        value = self.memo.get(index, _MISSING)
        if value is _MISSING:
            if not self.walk.memo_dropped:
                raise Malformed(f"memo key {index} was never stored")
            value = FORGOTTEN
        self.stack.append(value)
        return False

    def op_BINGET(self, offset: int) -> bool:  # hot: inlined
        r = self.r
        if r.pos < len(r.buf):
            index = r.buf[r.pos]
            r.pos += 1
        else:
            index = r.byte()
        value = self.memo.get(index, _MISSING)
        if value is _MISSING:
            return self._memo_get(index)
        self.stack.append(value)
        return False

    def op_LONG_BINGET(self, offset: int) -> bool:
        return self._memo_get(_U4(self.take(4))[0])

    def op_GET(self, offset: int) -> bool:
        return self._memo_get(self.int_line())

    # ------------------------------------------------------------ strings and bytes

    def _push_payload(self, n: int, kind: str) -> bool:
        self.stack.append(self.payload(n, kind))
        return False

    def op_SHORT_BINUNICODE(self, offset: int) -> bool:  # hot: inlined when the bytes are buffered
        r = self.r
        pos, buf = r.pos, r.buf
        if pos < len(buf) and pos + 1 + buf[pos] <= len(buf) and buf[pos] < 64:
            n = buf[pos]
            r.pos = pos + 1 + n
            self.kept += n
            self.stack.append(buf[pos + 1:pos + 1 + n].decode("utf-8", "surrogatepass"))
            return False
        return self._push_payload(self.u1(), "str")

    def op_BINUNICODE(self, offset: int) -> bool:
        return self._push_payload(_U4(self.take(4))[0], "str")

    def op_BINUNICODE8(self, offset: int) -> bool:
        return self._push_payload(_U8(self.take(8))[0], "str")

    def op_SHORT_BINBYTES(self, offset: int) -> bool:
        return self._push_payload(self.u1(), "bytes")

    def op_BINBYTES(self, offset: int) -> bool:
        return self._push_payload(_U4(self.take(4))[0], "bytes")

    def op_BINBYTES8(self, offset: int) -> bool:
        return self._push_payload(_U8(self.take(8))[0], "bytes")

    def op_BYTEARRAY8(self, offset: int) -> bool:
        return self._push_payload(_U8(self.take(8))[0], "bytearray")

    def _push_binstring(self, n: int) -> bool:
        value = self.payload(n, "bytes")  # Python 2 str: decoded as latin-1, like encoding="latin1"
        self.stack.append(value.decode("latin-1") if isinstance(value, bytes) else value)
        return False

    def op_SHORT_BINSTRING(self, offset: int) -> bool:
        return self._push_binstring(self.u1())

    def op_BINSTRING(self, offset: int) -> bool:
        return self._push_binstring(_I4(self.take(4))[0])

    def _text_argument(self, kind: str, offset: int) -> bytes | Blob:
        """STRING's and UNICODE's line: whole when small, else a Blob of its head (the rest is not held)."""
        lim = self.limits
        raw, length = self.r.long_line(lim.full_limit + 1)
        if length <= lim.full_limit and self.kept + length <= lim.budget:
            self.kept += length
            return raw
        head = raw[:lim.head]
        self.walk.payloads_skipped += 1
        self.walk.bytes_skipped += length - len(head)
        if self.on_payload is not None:
            self.on_payload(kind, head, b"", length)
        return Blob(kind, length, head, b"", offset + 1)

    def op_STRING(self, offset: int) -> bool:
        raw = self._text_argument("bytes", offset)
        if isinstance(raw, Blob):
            self.stack.append(raw)
            return False
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[:1] in (b"'", b'"'):
            raw = raw[1:-1]
        self.stack.append(codecs.escape_decode(raw)[0].decode("latin-1"))
        return False

    def op_UNICODE(self, offset: int) -> bool:
        raw = self._text_argument("str", offset)
        self.stack.append(raw if isinstance(raw, Blob) else raw.decode("raw-unicode-escape"))
        return False

    # ------------------------------------------------------------ numbers and constants

    def op_BININT1(self, offset: int) -> bool:
        r = self.r
        if r.pos < len(r.buf):
            r.pos += 1
            self.stack.append(r.buf[r.pos - 1])
        else:
            self.stack.append(r.byte())
        return False

    def op_BININT2(self, offset: int) -> bool:
        self.stack.append(_U2(self.take(2))[0])
        return False

    def op_BININT(self, offset: int) -> bool:
        self.stack.append(_I4(self.take(4))[0])
        return False

    def op_INT(self, offset: int) -> bool:
        text = self.line()
        if text in (b"00", b"01"):  # protocol 0's spelling of False and True
            self.stack.append(text == b"01")
            return False
        self.stack.append(self._parse_int(text))
        return False

    def op_LONG(self, offset: int) -> bool:
        self.stack.append(self._parse_int(self.line().rstrip(b"L")))
        return False

    @staticmethod
    def _parse_int(text: bytes) -> int:
        if len(text) > 4300:
            raise Malformed("an integer literal too long to read")
        try:
            return int(text)
        except ValueError:
            raise Malformed(f"{text[:40]!r} is not an integer") from None

    def _push_long(self, n: int) -> bool:
        value = self.payload(n, "long")
        self.stack.append(int.from_bytes(value, "little", signed=True) if isinstance(value, bytes) else value)
        return False

    def op_LONG1(self, offset: int) -> bool:
        return self._push_long(self.u1())

    def op_LONG4(self, offset: int) -> bool:
        return self._push_long(_I4(self.take(4))[0])

    def op_BINFLOAT(self, offset: int) -> bool:
        self.stack.append(_F8(self.take(8))[0])
        return False

    def op_FLOAT(self, offset: int) -> bool:
        try:
            self.stack.append(float(self.line()))
        except ValueError:
            raise Malformed("FLOAT argument is not a number") from None
        return False

    def op_NONE(self, offset: int) -> bool:
        self.stack.append(None)
        return False

    def op_NEWTRUE(self, offset: int) -> bool:
        self.stack.append(True)
        return False

    def op_NEWFALSE(self, offset: int) -> bool:
        self.stack.append(False)
        return False

    # ------------------------------------------------------------ containers

    def op_MARK(self, offset: int) -> bool:
        self.floor = len(self.stack)
        self.marks.append(self.floor)
        return False

    def op_EMPTY_TUPLE(self, offset: int) -> bool:
        self.stack.append(())
        return False

    def op_TUPLE(self, offset: int) -> bool:
        self.stack.append(tuple(self.pop_mark()))
        self.made += 1
        return False

    def op_TUPLE1(self, offset: int) -> bool:
        self.stack.append((self.pop(),))
        self.made += 1
        return False

    def op_TUPLE2(self, offset: int) -> bool:
        stack = self.stack
        if len(stack) < self.floor + 2:
            raise Malformed("stack underflow")
        stack[-2:] = [(stack[-2], stack[-1])]
        self.made += 1
        return False

    def op_TUPLE3(self, offset: int) -> bool:
        c = self.pop()
        b = self.pop()
        self.stack.append((self.pop(), b, c))
        self.made += 1
        return False

    def op_EMPTY_LIST(self, offset: int) -> bool:
        self.stack.append(SList())
        self.made += 1
        return False

    def op_LIST(self, offset: int) -> bool:
        self.stack.append(self._capped_list(self.pop_mark(), "list"))
        return False

    def op_APPEND(self, offset: int) -> bool:
        item = self.pop()
        self._extend(self.top(), [item])
        return False

    def op_APPENDS(self, offset: int) -> bool:
        items = self.pop_mark()
        self._extend(self.top(), items)
        return False

    def op_EMPTY_DICT(self, offset: int) -> bool:
        self.stack.append(SDict())
        self.made += 1
        return False

    def op_DICT(self, offset: int) -> bool:
        items = self.pop_mark()
        d = SDict()
        self.made += 1
        self._setitems(d, items)
        self.stack.append(d)
        return False

    def op_SETITEM(self, offset: int) -> bool:
        value = self.pop()
        key = self.pop()
        self._setitems(self.top(), [key, value])
        return False

    def op_SETITEMS(self, offset: int) -> bool:
        items = self.pop_mark()
        self._setitems(self.top(), items)
        return False

    def op_EMPTY_SET(self, offset: int) -> bool:
        self.stack.append(SList(kind="set"))
        self.made += 1
        return False

    def op_ADDITEMS(self, offset: int) -> bool:
        items = self.pop_mark()
        self._extend(self.top(), items)
        return False

    def op_FROZENSET(self, offset: int) -> bool:
        self.stack.append(self._capped_list(self.pop_mark(), "frozenset"))
        return False

    # ------------------------------------------------------------ stack manipulation

    def op_POP(self, offset: int) -> bool:
        if len(self.stack) > self.floor:
            self.stack.pop()
        else:
            self.pop_mark()
        return False

    def op_POP_MARK(self, offset: int) -> bool:
        self.pop_mark()
        return False

    def op_DUP(self, offset: int) -> bool:
        self.stack.append(self.top())
        return False

    # ------------------------------------------------------------ what would import or run code

    def op_GLOBAL(self, offset: int) -> bool:
        module = self.text_line()
        attr = self.text_line()
        self.stack.append(self._global(module, attr, offset))
        return False

    def op_STACK_GLOBAL(self, offset: int) -> bool:
        attr = self.pop()
        module = self.pop()
        if not isinstance(module, str) or not isinstance(attr, str):
            raise Malformed("STACK_GLOBAL on something other than two strings")
        self.stack.append(self._global(module, attr, offset))
        return False

    def op_REDUCE(self, offset: int) -> bool:
        args = self.pop()
        func = self.pop()
        self.stack.append(self._call(func, args, "reduce", offset))
        return False

    def op_NEWOBJ(self, offset: int) -> bool:
        args = self.pop()
        cls = self.pop()
        self.stack.append(self._call(cls, args, "newobj", offset))
        return False

    def op_NEWOBJ_EX(self, offset: int) -> bool:
        kwargs = self.pop()
        args = self.pop()
        cls = self.pop()
        self.stack.append(self._call(cls, args, "newobj", offset, kwargs))
        return False

    def op_OBJ(self, offset: int) -> bool:
        items = self.pop_mark()
        if not items:
            raise Malformed("OBJ without a class")
        self.stack.append(self._call(items[0], tuple(items[1:]), "obj", offset))
        return False

    def op_INST(self, offset: int) -> bool:
        module = self.text_line()
        attr = self.text_line()
        args = tuple(self.pop_mark())
        self.stack.append(self._call(self._global(module, attr, offset), args, "inst", offset))
        return False

    def op_BUILD(self, offset: int) -> bool:
        state = self.pop()
        target = self.top()
        if isinstance(target, Call) and len(target.states) < 8:
            target.states.append(state)
        return False

    def op_PERSID(self, offset: int) -> bool:
        self.line()
        self.walk.persistent_ids += 1
        self.stack.append(PERSISTENT_ID)
        return False

    def op_BINPERSID(self, offset: int) -> bool:
        self.pop()
        self.walk.persistent_ids += 1
        self.stack.append(PERSISTENT_ID)
        return False

    def _push_extension(self, code: int) -> bool:
        self.walk.extension_codes += 1
        self.made += 1
        self.stack.append(Opaque(f"copyreg extension code {code}"))
        return False

    def op_EXT1(self, offset: int) -> bool:
        return self._push_extension(self.u1())

    def op_EXT2(self, offset: int) -> bool:
        return self._push_extension(_U2(self.take(2))[0])

    def op_EXT4(self, offset: int) -> bool:
        return self._push_extension(_I4(self.take(4))[0])

    def op_NEXT_BUFFER(self, offset: int) -> bool:
        self.walk.out_of_band_buffers += 1
        self.stack.append(OUT_OF_BAND)
        return False

    def op_READONLY_BUFFER(self, offset: int) -> bool:
        self.top()
        return False

    # ------------------------------------------------------------ helpers

    def _global(self, module: str, attr: str, offset: int) -> Global:
        self.made += 1
        self.walk.globals[(module, attr)] += 1
        return Global(module, attr, offset)

    def _call(self, func: Any, args: Any, kind: str, offset: int, kwargs: Any = None) -> Call:
        call = Call(func, args, kind, offset, kwargs)
        self.made += 1
        walk = self.walk
        if len(walk.calls) < self.limits.call_cap:
            walk.calls.append(call)
        else:
            walk.calls_dropped += 1
        return call

    def _capped_list(self, items: list[Any], kind: str) -> SList:
        out = SList(kind=kind)
        self.made += 1
        self._extend(out, items)
        return out

    def _extend(self, target: Any, items: list[Any]) -> None:
        if isinstance(target, SList):
            room = self.limits.container_cap - len(target)
            if room < len(items):
                target.dropped += len(items) - max(room, 0)
                self.walk.dropped_items += len(items) - max(room, 0)
                items = items[:max(room, 0)]
            target.extend(items)
        elif isinstance(target, Call):
            target.extra_items += len(items)
        elif isinstance(target, (Global, Opaque)):
            pass
        else:
            raise Malformed(f"APPEND/ADDITEMS on a {type(target).__name__}")

    def _setitems(self, target: Any, items: list[Any]) -> None:
        if len(items) % 2:
            raise Malformed("SETITEMS with an odd number of items")
        if isinstance(target, SDict):
            for i in range(0, len(items), 2):
                if len(target) >= self.limits.container_cap:
                    target.dropped += 1
                    self.walk.dropped_items += 1
                    continue
                key = items[i]
                try:
                    target[key] = items[i + 1]
                except TypeError:  # a key unhashable here (a list, a dict): keep it under a stand-in
                    target[("<unhashable key>", id(key))] = items[i + 1]
        elif isinstance(target, Call):
            target.extra_items += len(items) // 2
        elif isinstance(target, (Global, Opaque)):
            pass
        else:
            raise Malformed(f"SETITEM on a {type(target).__name__}")


_MISSING = object()


def walk_file(path: Path, limits: Limits | None = None, on_payload: PayloadHook | None = None) -> Walk:
    """Walk the first pickle in `path`. Never raises for a bad file: problems are recorded in the Walk."""
    limits = limits or Limits()
    started = time.monotonic()
    try:
        size = os.path.getsize(path)
        handle = open(path, "rb", buffering=0)
    except OSError as exc:
        walk = Walk(size=0)
        walk.problems.append(f"cannot read the file: {exc}")
        return walk
    walk = Walk(size=size)
    with handle:
        reader = _Reader(handle, size)
        walker = Walker(reader, walk, limits, on_payload)
        try:
            walker.run()
        except Truncated:
            walk.error_offset = reader.offset
            walk.problems.append(f"truncated: the file ends at byte {size:,} in the middle of the pickle "
                                 "(no STOP opcode)")
        except Malformed as exc:
            where = walk.error_offset if walk.error_offset is not None else reader.offset
            walk.problems.append(f"malformed at offset {where}: {exc}")
        except OverBudget as exc:
            walk.problems.append(f"stopped walking at offset {reader.offset:,} of {size:,}: {exc}; the rest was "
                                 "not inspected")
        except (RecursionError, MemoryError, OverflowError, ValueError, UnicodeDecodeError) as exc:
            walk.error_offset = reader.offset
            walk.problems.append(f"malformed at offset {reader.offset}: {type(exc).__name__}: {exc}")
    walk.seconds = time.monotonic() - started
    return walk


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
