"""Reading a pickle file in buffered chunks, skipping the inside of large payloads by seeking."""

from __future__ import annotations

import struct
from typing import BinaryIO

from .symbols import Malformed, Truncated

CHUNK = 1 << 20  # bytes read from the file at a time
MAX_LINE = 1 << 16  # longest text argument (GLOBAL, INT, ...) accepted

# Fixed-size opcode arguments, little-endian as pickle writes them (BINFLOAT is big-endian).
U2, I4, U4, U8, F8 = (struct.Struct(f).unpack for f in ("<H", "<i", "<I", "<Q", ">d"))


class Reader:
    """Buffered reading that can skip over large payloads by seeking."""

    def __init__(self, handle: BinaryIO, size: int):
        self.handle, self.size = handle, size
        self.buf = b""
        self.pos = 0
        self.base = 0  # file offset of buf[0]

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def fill(self, n: int) -> bool:
        if self.pos + n <= len(self.buf):
            return True
        rest = self.buf[self.pos:]
        self.base += self.pos
        self.pos = 0
        self.buf = rest + self.handle.read(max(CHUNK, n - len(rest)))
        return len(self.buf) >= n

    def byte(self) -> int:
        if self.pos >= len(self.buf) and not self.fill(1):
            raise Truncated()
        value = self.buf[self.pos]
        self.pos += 1
        return value

    def take(self, n: int) -> bytes:
        if not self.fill(n):
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
            if not self.fill(have + 1):
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
            if not self.fill(1):
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
