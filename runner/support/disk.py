"""When this machine's disk refuses a write: full, over quota, or read-only.

Such an error is the machine's, never the model's and never a bug of ours: a command that meets one
ends Error/host_resources with a sentence naming where it was writing and how much room is left there,
instead of "failed unexpectedly ... please report it". Writes into the cache are made whole or not at
all (a temp name, then a rename), so a full disk leaves no half-written file behind for later runs.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

from .paths import cache_dir
from .units import human_bytes

DISK_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is exceeded",
               errno.EROFS: "the file system is read-only"}


def refused_write(exc: BaseException | None) -> OSError | None:
    """The OSError, in `exc` or the exceptions it arose from, that says the disk refused a write."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def disk_failure(exc: BaseException) -> str | None:
    """The sentence for an exception that means the disk refused a write (None for any other): what the
    disk said, where it was writing (else the places numerai-sandbox writes to), and the room left there."""
    found = refused_write(exc)
    if found is None:
        return None
    where = Path(os.fsdecode(found.filename)) if found.filename else None
    if where is not None:
        room = free_space(where)
        left = f"; {human_bytes(room[0])} free of {human_bytes(room[1])} on that disk" if room else ""
        what = f"The disk refused to write {where}: {DISK_ERRNOS[found.errno]}{left}."
    else:
        places = {"the cache (NUMERAI_SANDBOX_CACHE)": cache_dir(), "the temp dir": Path(tempfile.gettempdir())}
        rooms = [f"{label} {place}: {human_bytes(room[0])} free of {human_bytes(room[1])}"
                 for label, place in places.items() if (room := free_space(place)) is not None]
        what = f"The disk refused a write: {DISK_ERRNOS[found.errno]} ({'; '.join(rooms)})."
    return (f"{what} Free some space there (or point NUMERAI_SANDBOX_CACHE at a larger disk) and run the command "
            "again; what was being written was not kept, so nothing in the cache is half-written.")


def free_space(path: Path) -> tuple[int, int] | None:
    """(bytes free, bytes in all) of the file system holding `path` (or its nearest existing parent)."""
    for candidate in [path, *path.parents]:
        try:
            usage = shutil.disk_usage(candidate)
        except OSError:
            continue
        return usage.free, usage.total
    return None


def disk_error(path: Path | str, what: str = "") -> OSError:
    """An OSError saying the disk is full where `path` is (for a failure another program reported, e.g. pip)."""
    return OSError(errno.ENOSPC, f"No space left on device{': ' + what if what else ''}", os.fspath(path))
