"""PyPI, read sparingly (online; used by `images fetch` and scripts/make_module_map.py only).

- which wheel pip would pick for CPython 3.X on manylinux, and its size, from the simple
  API's JSON file list (PEP 691) - no download;
- a wheel's file list and a few of its small files (METADATA, top_level.txt) through HTTP
  range requests: the zip's central directory sits at its end, so a 900 MB wheel costs a
  few hundred kilobytes to describe.
"""

from __future__ import annotations

import json
import struct
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass

SIMPLE_URL = "https://pypi.org/simple/{name}/"
GLIBC_MINOR = 36  # Debian bookworm; trixie's is newer, so these wheels load there too
TIMEOUT = 30


class PyPIError(Exception):
    """PyPI could not be read (offline, or an answer that makes no sense)."""


def linux_platforms(arch: str) -> list[str]:
    """The manylinux platform tags a glibc-2.36 Linux accepts, most specific first (as pip orders them)."""
    return ([f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR, 4, -1)]
            + [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}"])


def supported_tags(python: str, arch: str = "x86_64") -> list:
    """The wheel tags pip accepts for CPython `python` on manylinux `arch`, best first."""
    from packaging import tags

    version = tuple(int(p) for p in python.split("."))
    nodot = python.replace(".", "")
    platforms = linux_platforms(arch)
    return (list(tags.cpython_tags(version, abis=[f"cp{nodot}"], platforms=platforms))
            + list(tags.compatible_tags(version, f"cp{nodot}", platforms=platforms)))


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = TIMEOUT) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "numerai-sandbox", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except (OSError, urllib.error.URLError) as exc:
        raise PyPIError(f"cannot read {url} ({getattr(exc, 'reason', None) or exc})") from exc


def project_files(name: str, timeout: float = TIMEOUT) -> list[dict]:
    """Every file PyPI has for a project: filename, url, size, hashes, yanked, core-metadata."""
    body = http_get(SIMPLE_URL.format(name=name), {"Accept": "application/vnd.pypi.simple.v1+json"}, timeout)
    try:
        return list(json.loads(body)["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise PyPIError(f"PyPI's answer for {name} is not the simple API's JSON") from exc


def best_wheel(files: list[dict], version: str, python: str, arch: str = "x86_64") -> dict | None:
    """The file pip would download for `version` on CPython `python`/manylinux `arch`, or None (no wheel)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    try:
        wanted = Version(version)
    except InvalidVersion:
        return None
    rank = {tag: i for i, tag in enumerate(supported_tags(python, arch))}
    best, best_rank = None, len(rank)
    for entry in files:
        if not entry.get("filename", "").endswith(".whl") or entry.get("yanked"):
            continue
        try:
            _name, found, _build, wheel_tags = parse_wheel_filename(entry["filename"])
        except (InvalidWheelFilename, InvalidVersion):
            continue
        if found != wanted:
            continue
        score = min((rank[t] for t in wheel_tags if t in rank), default=len(rank))
        if score < best_rank:
            best, best_rank = entry, score
    return best


def any_wheel(files: list[dict], version: str) -> dict | None:
    """Some wheel of `version` (for its metadata when none fits the target, e.g. a source-only Python)."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename
    from packaging.version import InvalidVersion, Version

    for entry in files:
        try:
            if entry.get("filename", "").endswith(".whl") and \
                    parse_wheel_filename(entry["filename"])[1] == Version(version):
                return entry
        except (InvalidWheelFilename, InvalidVersion):
            continue
    return None


# ---------------------------------------------------------------- a remote wheel, read in ranges

@dataclass(frozen=True)
class Member:
    name: str
    method: int  # 0 stored, 8 deflated
    compressed_size: int
    header_offset: int


class RemoteZip:
    """A zip file on a server that honours Range requests, read a few kilobytes at a time."""

    TAIL = 1 << 14  # the end record, and the whole central directory of most wheels

    def __init__(self, url: str, size: int):
        self.url, self.size = url, size
        self.bytes_read = 0

    def read(self, offset: int, length: int) -> bytes:
        end = min(self.size, offset + length) - 1
        data = http_get(self.url, {"Range": f"bytes={offset}-{end}"})
        if len(data) != end - offset + 1:  # a server that ignored the range sent the whole file
            data = data[offset:end + 1] if len(data) == self.size else data
        self.bytes_read += len(data)
        return data

    def members(self) -> list[Member]:
        tail_start = max(0, self.size - self.TAIL)
        tail = self.read(tail_start, self.size - tail_start)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0:
            raise PyPIError(f"{self.url}: no zip end record")
        entries, cd_size, cd_offset = struct.unpack("<10xHII", tail[at:at + 20])[0:3]
        if 0xFFFFFFFF in (cd_size, cd_offset) or entries == 0xFFFF:  # zip64: its own end record says
            locator = tail.rfind(b"PK\x06\x07", 0, at)
            (record_offset,) = struct.unpack("<8xQ", tail[locator:locator + 16])
            record = tail[record_offset - tail_start:] if record_offset >= tail_start \
                else self.read(record_offset, 56)
            entries, cd_size, cd_offset = struct.unpack("<32xQQQ", record[:56])
        directory = tail[cd_offset - tail_start:cd_offset - tail_start + cd_size] if cd_offset >= tail_start \
            else self.read(cd_offset, cd_size)
        return list(_central_directory(directory, entries))

    def open(self, member: Member) -> bytes:
        header = self.read(member.header_offset, 30)
        name_length, extra_length = struct.unpack("<26xHH", header)
        data = self.read(member.header_offset + 30 + name_length + extra_length, member.compressed_size)
        if member.method == 0:
            return data
        if member.method == 8:
            return zlib.decompress(data, -15)
        raise PyPIError(f"{self.url}: {member.name} uses zip compression method {member.method}")


def _central_directory(data: bytes, entries: int):
    at = 0
    for _ in range(entries):
        if data[at:at + 4] != b"PK\x01\x02":
            raise PyPIError("damaged zip central directory")
        method, = struct.unpack("<H", data[at + 10:at + 12])
        compressed, _size = struct.unpack("<II", data[at + 20:at + 28])
        name_length, extra_length, comment_length = struct.unpack("<HHH", data[at + 28:at + 34])
        offset, = struct.unpack("<I", data[at + 42:at + 46])
        name = data[at + 46:at + 46 + name_length].decode("utf-8", "replace")
        extra = data[at + 46 + name_length:at + 46 + name_length + extra_length]
        if 0xFFFFFFFF in (compressed, offset):
            compressed, offset = _zip64_extra(extra, compressed, _size, offset)
        yield Member(name, method, compressed, offset)
        at += 46 + name_length + extra_length + comment_length


def _zip64_extra(extra: bytes, compressed: int, size: int, offset: int) -> tuple[int, int]:
    """Sizes and offset that did not fit 32 bits, from the zip64 extra field (in its fixed order)."""
    at = 0
    while at + 4 <= len(extra):
        kind, length = struct.unpack("<HH", extra[at:at + 4])
        if kind == 1:
            values = list(struct.unpack(f"<{length // 8}Q", extra[at + 4:at + 4 + length // 8 * 8]))
            if size == 0xFFFFFFFF:
                values.pop(0)
            if compressed == 0xFFFFFFFF:
                compressed = values.pop(0)
            if offset == 0xFFFFFFFF:
                offset = values.pop(0)
            break
        at += 4 + length
    return compressed, offset


# ---------------------------------------------------------------- what a wheel makes importable

_MODULE_SUFFIXES = (".py", ".pyc", ".so", ".pyd")


def _stem(filename: str) -> str | None:
    """The module a file at some level is ("six.py" -> six, "_x.cpython-311-x86_64-linux-gnu.so" -> _x)."""
    if not filename.endswith(_MODULE_SUFFIXES):
        return None
    stem = filename.split(".", 1)[0]
    return stem if stem.isidentifier() else None


def import_names(paths: list[str], top_level: list[str] = (), depth: int = 4) -> list[str]:
    """The names a wheel makes importable, from its file list (what RECORD lists) and top_level.txt.

    A regular package or module is named by its top-level name; inside a namespace package (a
    folder without __init__.py, like google/ or nvidia/), by the first level that is a package or
    module ("google.protobuf", "google.cloud.storage"), since many distributions share the namespace.
    """
    tree: dict = {}
    for path in paths:
        parts = [p for p in path.split("/") if p]
        if parts and parts[0].endswith(".data"):
            if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                continue
            parts = parts[2:]
        elif not parts or parts[0].endswith(".dist-info"):
            continue
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if not path.endswith("/"):
            node.setdefault(None, set()).add(parts[-1])
        else:
            node.setdefault(parts[-1], {})

    def walk(node: dict, prefix: str, level: int) -> list[str]:
        stems = {_stem(f) for f in node.get(None, ())} - {None}
        if prefix and "__init__" in stems:
            return [prefix]
        found = [f"{prefix}.{s}" if prefix else s for s in sorted(stems)]
        if level < depth:
            for name, child in sorted((k, v) for k, v in node.items() if k is not None):
                if name.isidentifier() and name != "__pycache__":
                    found += walk(child, f"{prefix}.{name}" if prefix else name, level + 1)
        return found

    names = walk(tree, "", 0)
    for entry in top_level:
        name = entry.strip().replace("/", ".")
        if name and name.split(".")[0].isidentifier() and not any(
                n == name or n.startswith(name + ".") or name.startswith(n + ".") for n in names):
            names.append(name)
    return sorted(set(names))
