"""The walker's handlers for opcodes that push plain values: strings, bytes, numbers, constants.

A mixin of `pickle_ops.Walker`: it reads the arguments through the walker's `u1`, `take`, `line` and
`payload`, and pushes on its symbolic stack.
"""

from __future__ import annotations

import codecs

from .stream_reader import F8, I4, U2, U4, U8
from .symbols import Blob, Malformed


class ValueOps:
    """Strings, bytes and numbers: pushed as they are (large payloads as a `Blob`)."""

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
        return self._push_payload(U4(self.take(4))[0], "str")

    def op_BINUNICODE8(self, offset: int) -> bool:
        return self._push_payload(U8(self.take(8))[0], "str")

    def op_SHORT_BINBYTES(self, offset: int) -> bool:
        return self._push_payload(self.u1(), "bytes")

    def op_BINBYTES(self, offset: int) -> bool:
        return self._push_payload(U4(self.take(4))[0], "bytes")

    def op_BINBYTES8(self, offset: int) -> bool:
        return self._push_payload(U8(self.take(8))[0], "bytes")

    def op_BYTEARRAY8(self, offset: int) -> bool:
        return self._push_payload(U8(self.take(8))[0], "bytearray")

    def _push_binstring(self, n: int) -> bool:
        value = self.payload(n, "bytes")  # Python 2 str: decoded as latin-1, like encoding="latin1"
        self.stack.append(value.decode("latin-1") if isinstance(value, bytes) else value)
        return False

    def op_SHORT_BINSTRING(self, offset: int) -> bool:
        return self._push_binstring(self.u1())

    def op_BINSTRING(self, offset: int) -> bool:
        return self._push_binstring(I4(self.take(4))[0])

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
        self.stack.append(U2(self.take(2))[0])
        return False

    def op_BININT(self, offset: int) -> bool:
        self.stack.append(I4(self.take(4))[0])
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
        return self._push_long(I4(self.take(4))[0])

    def op_BINFLOAT(self, offset: int) -> bool:
        self.stack.append(F8(self.take(8))[0])
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
