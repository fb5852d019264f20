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

import os
import pickletools
import time
from pathlib import Path
from typing import Any, Callable

from .opcode_containers import ContainerOps
from .opcode_values import ValueOps
from .stream_reader import F8, I4, U2, U4, U8, Reader
from .symbols import (FORGOTTEN, MARK, OUT_OF_BAND, PERSISTENT_ID, Blob, Call, Global, Limits, Malformed, Mark,
                      Opaque, OverBudget, PayloadHook, SDict, SList, Truncated, Walk, describe)

__all__ = ["Blob", "Call", "FORGOTTEN", "Global", "Limits", "MARK", "Malformed", "Mark", "OPCODES", "Opaque",
           "OUT_OF_BAND", "OverBudget", "PERSISTENT_ID", "PayloadHook", "SDict", "SList", "Truncated", "Walk",
           "Walker", "describe", "walk_file"]


def _opcode_table() -> dict[int, tuple[str, int]]:
    """byte -> (opcode name, protocol), from the standard library's own description of the format."""
    return {ord(info.code): (info.name, info.proto) for info in pickletools.opcodes}


OPCODES = _opcode_table()


class Walker(ValueOps, ContainerOps):
    """One pass over one pickle stream: a handler per opcode, dispatched by the opcode's byte."""

    def __init__(self, reader: Reader, walk: Walk, limits: Limits, on_payload: PayloadHook | None):
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
                    r.fill(9)
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
                        stack.append(I4(buf[pos + 1:pos + 5])[0])
                        pos += 5
                        continue
                    if code == 0x47:  # BINFLOAT
                        stack.append(F8(buf[pos + 1:pos + 9])[0])
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
        length = U8(self.take(8))[0]
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
        return self._memo_put(U4(self.take(4))[0], self.top())

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
        return self._memo_get(U4(self.take(4))[0])

    def op_GET(self, offset: int) -> bool:
        return self._memo_get(self.int_line())

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
        return self._push_extension(U2(self.take(2))[0])

    def op_EXT4(self, offset: int) -> bool:
        return self._push_extension(I4(self.take(4))[0])

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
        reader = Reader(handle, size)
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
