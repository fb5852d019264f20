"""Arrow arrays to and from numpy and Python strings, without pyarrow's pandas probe.

pyarrow imports pandas (~100 MB, 0.2 s) the first time anything is converted into Arrow from
Python or numpy (`pa.array`, `pa.scalar`, `take` with a numpy index) or out of it with `to_numpy`,
merely to ask whether the object is a pandas one. The host's run path reads, validates and writes
predictions with Arrow and numpy only, so it crosses that border here, through the arrays' buffers:
the same memory, no copy where none is needed, and no pandas.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

_ARROW_TYPES = {np.dtype(np.int32): "int32", np.dtype(np.int64): "int64", np.dtype(np.float32): "float32",
                np.dtype(np.float64): "float64", np.dtype(np.uint8): "uint8"}


def single(array) -> "pa.Array":
    """One contiguous array: a chunked array's only chunk as it is (combine_chunks would copy it)."""
    import pyarrow as pa

    if not isinstance(array, pa.ChunkedArray):
        return array
    return array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()


def _valid(array: "pa.Array") -> np.ndarray | None:
    """The validity bitmap as booleans (None when every value is present)."""
    if array.null_count == 0:
        return None
    return _bits(array.buffers()[0], array.offset, len(array))


def _bits(buffer, offset: int, length: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(buffer, dtype=np.uint8), bitorder="little")
    return bits[offset:offset + length].astype(bool)


def _values(array: "pa.Array", dtype) -> np.ndarray:
    """The data buffer of a primitive array, as numpy (a read-only view)."""
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=array.offset + len(array))[array.offset:]


def floats(array) -> np.ndarray:
    """Numbers, booleans or an all-null column as float64, NaN where a value is missing (a read-only view of
    the column's memory when it already is float64 without nulls)."""
    import pyarrow as pa

    array = single(array).cast(pa.float64())
    if len(array) == 0:
        return np.zeros(0)
    if pa.types.is_null(array.type) or array.null_count == len(array):
        return np.full(len(array), np.nan)
    values, valid = _values(array, np.float64), _valid(array)
    return np.where(valid, values, np.nan) if valid is not None else values


def bools(array) -> np.ndarray:
    """A boolean array as numpy, a missing value as False."""
    array = single(array)
    if len(array) == 0:
        return np.zeros(0, dtype=bool)
    values, valid = _bits(array.buffers()[1], array.offset, len(array)), _valid(array)
    return values & valid if valid is not None else values


def ints(array) -> np.ndarray:
    """An integer array (positions, counts) as numpy: int32 stays int32 (a view), the rest int64. Where a value
    is missing the number is undefined: mask those with the validity."""
    import pyarrow as pa

    array = single(array)
    if array.type != pa.int32():
        array = array.cast(pa.int64())
    dtype = np.int32 if array.type == pa.int32() else np.int64
    return _values(array, dtype) if len(array) else np.zeros(0, dtype=dtype)


def from_numpy(values: np.ndarray) -> "pa.Array":
    """A numpy array of numbers (or booleans) as an Arrow array, without nulls."""
    import pyarrow as pa

    if values.dtype == np.bool_:
        packed = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(packed)])
    values = np.ascontiguousarray(values)
    kind = _ARROW_TYPES.get(values.dtype)
    if kind is None:
        values, kind = values.astype(np.float64 if values.dtype.kind == "f" else np.int64), \
            "float64" if values.dtype.kind == "f" else "int64"
    return pa.Array.from_buffers(pa.type_for_alias(kind), len(values), [None, pa.py_buffer(values)])


def indices(positions) -> "pa.Array":
    """Row positions (a numpy array or a list) as an Arrow index for `take`."""
    return from_numpy(np.asarray(positions, dtype=np.int64))


def strings(values: Sequence[str]) -> "pa.Array":
    """Python strings as an Arrow string array."""
    import pyarrow as pa

    encoded = [str(v).encode("utf-8", "replace") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return pa.Array.from_buffers(pa.string(), len(encoded), [None, pa.py_buffer(offsets),
                                                              pa.py_buffer(b"".join(encoded))])


def repeated(text: str, length: int) -> "pa.Array":
    """One string, `length` times."""
    import pyarrow as pa

    data = text.encode("utf-8")
    offsets = (np.arange(length + 1, dtype=np.int64) * len(data)).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), length, [None, pa.py_buffer(offsets), pa.py_buffer(data * length)])


def scalar(text: str) -> "pa.Scalar":
    """A string scalar (a separator, a fill value) for compute functions."""
    return strings([text])[0]

