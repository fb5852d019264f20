"""How the command-line process uses memory: freed memory goes back to the system at once.

The host's peak at a million predictions is meant to be what validation holds at once (the live ids,
the CSV, its table, a hash of part of the ids), not what allocators keep after it is freed.
"""

from __future__ import annotations

import os
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt() parameter
MMAP_THRESHOLD = 1 << 20  # blocks from 1 MiB up are mapped on their own, so freeing one returns it


def return_memory_promptly() -> None:
    """Have this process give freed memory back to the system at once (the CLI does; the Python API leaves
    its caller's process alone). Call it before pyarrow is imported.

    Left alone, pyarrow's default pool (mimalloc) keeps what the parquet and CSV readers freed (~60 MB
    at a million rows), and glibc raises its mmap threshold after the first large free, so later large
    blocks stay on its heap. pyarrow's system pool and a fixed mmap threshold return every large block
    when it is freed, for ~0.1 s more validation at a million rows (fresh pages). A pool named in
    ARROW_DEFAULT_MEMORY_POOL is respected."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
        except (OSError, AttributeError):  # not glibc
            pass
