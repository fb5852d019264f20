"""The live-data columns a pickle names, read from its raw bytes without unpickling anything.

A model trained the way Numerai's notebooks train it selects its columns by name at
predict time (`live_features[features]`, `booster.feature_name()`, `feature_names_in_`,
XGBoost's `feature_names`, CatBoost's feature names), so those names are in the file:
as pickled strings, inside a LightGBM model string (`feature_names=...`), in XGBoost's
UBJSON/JSON or CatBoost's binary model, or as UTF-32 text in a numpy unicode array.
Large payloads are where most of them live, so this pass reads every byte: a fast
search for each name's prefix, then the exact extent of the string from the length
that precedes it where a format has one (pickle, UBJSON, flatbuffers), else from
word boundaries.

Only names shaped like Numerai's are columns to invent in synthetic data: every
feature name since v4 is `feature_` plus three lowercase words; targets are
`target` or `target_<name>_<horizon>`; benchmark models are `v<version>_<name>`.
Anything else that merely starts with `feature_` (LightGBM's `feature_fraction`,
`feature_that_does_not_exist`) is reported as `other`, never invented.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 1 << 20  # small: the scan must add little memory to an inspection (P6)
OVERLAP = 1024  # longer than any name: a name cut by a chunk boundary is seen whole in the next chunk
MAX_NAME = 255

NUMERAI_FEATURE = re.compile(r"feature_[a-z]+_[a-z]+_[a-z]+")
NUMERAI_TARGET = re.compile(r"target(_[a-z0-9]+)*_(20|60)|target")
NUMERAI_BENCHMARK = re.compile(r"v\d{1,3}_[a-z0-9]+(_[a-z0-9]+)*")

_TAIL = re.compile(rb"[a-z0-9_]*")  # the rest of a name after its prefix, where no length says
_WORD = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
_UTF32_PREFIX = "feature_".encode("utf-32-le")
_BENCHMARK_START = re.compile(rb"(?<![A-Za-z0-9_])v[0-9]{1,3}_")


@dataclass
class ColumnNames:
    """Names found in the pickle, each in order of first appearance."""

    features: list[str] = field(default_factory=list)  # Numerai-shaped feature names
    targets: list[str] = field(default_factory=list)
    benchmarks: list[str] = field(default_factory=list)  # benchmark-model columns (2-argument models)
    other: list[str] = field(default_factory=list)  # start like a feature but are not Numerai-shaped
    seconds: float = 0.0
    complete: bool = True  # False: the scan stopped at its time budget

    def to_dict(self) -> dict:
        return {"features": self.features, "targets": self.targets, "benchmarks": self.benchmarks,
                "other": self.other[:50], "seconds": round(self.seconds, 3), "complete": self.complete}


class _Collector:
    def __init__(self):
        self.seen: set[str] = set()
        self.found = ColumnNames()

    def add(self, name: str) -> None:
        if name in self.seen or not name:
            return
        self.seen.add(name)
        found = self.found
        if NUMERAI_FEATURE.fullmatch(name):
            found.features.append(name)
        elif name.startswith("feature_"):
            found.other.append(name)
        elif NUMERAI_TARGET.fullmatch(name):
            found.targets.append(name)
        elif NUMERAI_BENCHMARK.fullmatch(name):
            found.benchmarks.append(name)


def _declared_length(data: bytes, start: int) -> int | None:
    """The length a serialisation format wrote just before the string that starts at `start`."""
    if start >= 2 and data[start - 2] in (0x8C, 0x55, 0x69):  # pickle SHORT_BINUNICODE, UBJSON 'U'/'i' + u8
        return data[start - 1]
    if start >= 3 and data[start - 3] == 0x49:  # UBJSON 'I' + big-endian int16
        return int.from_bytes(data[start - 2:start], "big")
    if start >= 5 and data[start - 5] == 0x58:  # pickle BINUNICODE 'X' + little-endian u32
        return int.from_bytes(data[start - 4:start], "little")
    if start >= 5 and data[start - 5] == 0x6C:  # UBJSON 'l' + big-endian int32
        return int.from_bytes(data[start - 4:start], "big")
    if start >= 9 and data[start - 9] == 0x4C:  # UBJSON 'L' + big-endian int64 (XGBoost's strings)
        return int.from_bytes(data[start - 8:start], "big")
    if start >= 4:  # flatbuffers (CatBoost): u32 length, then the bytes, then a NUL
        length = int.from_bytes(data[start - 4:start], "little")
        if 0 < length <= MAX_NAME and start + length < len(data) and data[start + length] == 0:
            return length
    return None


def _name_at(data: bytes, start: int) -> str | None:
    """The whole name whose prefix starts at `start`, or None when it is part of a longer word."""
    run = _TAIL.match(data, start).end()
    length = _declared_length(data, start)
    if length is not None and 0 < length <= MAX_NAME and start + length <= run:
        end = start + length  # the format says where the string ends (the next byte may be a letter)
    elif start and data[start - 1] in _WORD:
        return None  # e.g. split_feature_..., multi_target_...
    else:
        end = run
    if end - start > MAX_NAME:
        return None
    return data[start:end].decode("ascii", "replace")


def _utf32_names_at(data: bytes, start: int) -> list[str]:
    """Names in a numpy unicode array: fixed-width UTF-32, NUL-padded, or back to back when a name
    fills its width exactly (so a run of letters is split where the next `feature_` begins)."""
    chars = []
    for pos in range(start, min(len(data) - 3, start + 4 * MAX_NAME * 4), 4):
        code = int.from_bytes(data[pos:pos + 4], "little")
        if code > 127 or code not in _WORD:
            break
        chars.append(chr(code))
    return [part for part in re.split(r"(?=feature_)", "".join(chars)) if part]


def scan_columns(path: Path, benchmarks: bool = True, budget_seconds: float = 10.0) -> ColumnNames:
    """Every Numerai-shaped column name in the file. Reads it once, in chunks; never raises for a bad file."""
    collector = _Collector()
    started = time.monotonic()
    try:
        with open(path, "rb") as handle:
            carry = b""
            while True:
                block = handle.read(CHUNK)
                data = carry + block
                if not data:
                    break
                last = not block
                # A match is handled in the chunk where it starts, unless it starts in the overlap kept
                # for the next chunk (which then sees it whole).
                limit = len(data) if last else max(len(data) - OVERLAP, 0)
                _scan(data, limit, collector, benchmarks)
                if last:
                    break
                carry = data[limit:]
                if time.monotonic() - started > budget_seconds:
                    collector.found.complete = False
                    break
    except OSError:
        collector.found.complete = False
    collector.found.seconds = time.monotonic() - started
    return collector.found


def _scan(data: bytes, limit: int, collector: _Collector, benchmarks: bool) -> None:
    """The names that start before `limit`, added in the order they stand in the file."""
    hits: list[tuple[int, str]] = []
    for prefix in (b"feature_", b"target"):
        end = min(len(data), limit + len(prefix) - 1)  # a prefix that starts before the limit counts
        position = data.find(prefix, 0, end)
        while position != -1:
            name = _name_at(data, position)
            if name:
                hits.append((position, name))
            position = data.find(prefix, position + len(prefix), end)
    end = min(len(data), limit + len(_UTF32_PREFIX) - 1)
    position = data.find(_UTF32_PREFIX, 0, end)
    while position != -1:
        hits += [(position, name) for name in _utf32_names_at(data, position)]
        position = data.find(_UTF32_PREFIX, position + len(_UTF32_PREFIX), end)
    if benchmarks:
        for match in _BENCHMARK_START.finditer(data):
            if match.start() >= limit:
                break
            name = _name_at(data, match.start())
            if name:
                hits.append((match.start(), name))
    for _, name in sorted(hits, key=lambda hit: hit[0]):
        collector.add(name)
