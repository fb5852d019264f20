"""What a file that is not a loadable pickle looks like, from its first bytes (nothing is parsed or run).

Users upload the wrong file more often than one would think: a CSV of predictions, a
zip, a download that returned an HTML error page, a Git LFS pointer. Naming it is the fix.
"""

from __future__ import annotations

import re
from pathlib import Path

_MAGIC = [
    (b"PK\x03\x04", "is a zip archive (a .zip, a torch.save file, or a numpy .npz?); unzip it or upload "
                    "the pickle inside"),
    (b"\x1f\x8b", "is gzip-compressed (decompress it first)"),
    (b"PAR1", "is a parquet file (data, not a model)"),
    (b"\x7fELF", "is a compiled program (ELF)"),
    (b"\x89HDF", "is an HDF5 file (a Keras .h5?)"),
    (b"BZh", "is bzip2-compressed (decompress it first)"),
    (b"\xfd7zXZ", "is xz-compressed (decompress it first)"),
    (b"(\xb5/\xfd", "is zstd-compressed (decompress it first)"),
    (b"7z\xbc\xaf", "is a 7-Zip archive"),
    (b"Rar!", "is a RAR archive"),
    (b"\x93NUMPY", "is a numpy .npy file (an array, not a model)"),
    (b"ARROW1", "is an Arrow/Feather file (data, not a model)"),
    (b"%PDF", "is a PDF document"),
    (b"\x89PNG", "is a PNG image"),
    (b"\xff\xd8\xff", "is a JPEG image"),
    (b"\x00asm", "is a WebAssembly module"),
    (b"SQLite format 3", "is an SQLite database"),
    (b"tree\n", "is a LightGBM model text file (save a predict function with cloudpickle instead)"),
]


def sniff(path: Path) -> str:
    """A short description of what a file that is not a loadable pickle looks like."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(2048)
        size = path.stat().st_size
    except OSError:
        return "cannot be read"
    if size == 0:
        return "is empty (0 bytes)"
    for magic, text in _MAGIC:
        if head.startswith(magic):
            return text
    if head[:1] == b"x" and len(head) > 1 and head[1] in (0x01, 0x5E, 0x9C, 0xDA) \
            and (head[0] * 256 + head[1]) % 31 == 0:
        return "is zlib-compressed (a compressed joblib file? load it with joblib and re-save with cloudpickle)"
    if head[:1] == b"\x80" and len(head) > 1:
        if head[1] > 5:
            return f"starts like a pickle but names protocol {head[1]}, which no Python writes ({size:,} bytes)"
        return f"starts like a pickle (protocol {head[1]}) but is cut short or damaged ({size:,} bytes)"
    stripped = head.lstrip()
    lowered = stripped.lower()
    if lowered.startswith(b"version https://git-lfs"):
        return "is a Git LFS pointer, not the file itself (run `git lfs pull` and use the real file)"
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered[:200] or b"<body" in lowered[:400]:
        return "is an HTML page (a download that returned an error or login page?)"
    if lowered.startswith(b"<?xml"):
        return "is an XML document"
    if lowered.startswith((b"{", b"[")):
        return "is JSON text (a model's JSON dump is not a pickle)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        if size >= 4 and sum(b < 9 or 13 < b < 32 for b in head[:256]) > 8:
            return f"is binary data that is not a pickle ({size:,} bytes)"
        text = head.decode("latin-1")
    lines = text.splitlines()
    first = lines[0] if lines else ""
    compact = "".join(text.split())
    if len(compact) >= 16 and re.fullmatch(r"[A-Za-z0-9+/=_-]+", compact[:1024]):
        if compact.startswith("gASV") or compact.startswith("gAS") or compact.startswith("gAJ"):
            return "is base64 text of a pickle (decode it: base64.b64decode, and save the bytes)"
        return "is base64 or hex text, not a pickle (decode it first)"
    if first.count(",") >= 1 or first.count("\t") >= 1:
        return f"is CSV text (first line: {first[:60]!r}): predictions or data, not a model"
    return f"is text, not a pickle (first line: {first[:60]!r})"
