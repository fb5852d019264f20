"""Reading the model's exceptions: their classes, the frame that raised, the library it belongs to.

Shared by the loading and calling halves of diagnosis (runner/verdict/loading.py, exceptions.py): an
exception here is runner.sandbox.protocol.ExceptionFacts, the harness's account of it, already typed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..sandbox.protocol import ExceptionFacts, TraceFrame

LIBRARY_MODULES = {"sklearn", "lightgbm", "xgboost", "catboost", "numpy", "pandas", "scipy", "pyarrow",
                   "polars", "joblib", "cloudpickle", "torch", "tensorflow", "keras"}
NETWORK_TYPES = {"socket.gaierror", "socket.herror", "socket.timeout", "builtins.ConnectionError",
                 "urllib.error.URLError", "requests.exceptions.ConnectionError",
                 "urllib3.exceptions.NewConnectionError", "http.client.RemoteDisconnected"}
NETWORK_ERRNOS = {101, 113, -2, -3, -5, 99}  # ENETUNREACH, EHOSTUNREACH, EAI_NONAME, EAI_AGAIN, ...
# Where pandas.read_pickle and the unpickler live: an error raised here is about the file's bytes.
PICKLE_PLUMBING = ("pandas/io/pickle.py", "pandas/compat/pickle_compat.py", "cloudpickle/", "/pickle.py")
PANDAS_RETRY = "pandas/compat/pickle_compat.py"
HARNESS_FILE = "numerai-sandbox/harness.py"  # where the image keeps the harness (/opt/numerai-sandbox/)
# Where the process sandbox runs it from: this package's own copy (runner/sandbox/harness.py).
HARNESS_FILES = (HARNESS_FILE, str(Path(__file__).resolve().parent.parent / "sandbox" / "harness.py"))


def first_line(text: str | None, limit: int = 240) -> str:
    """The first line of a message, cut at `limit` characters."""
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."


def mro_names(exc: ExceptionFacts) -> set[str]:
    """The exception's classes, with C accelerator modules named as their Python modules."""
    names = exc.mro or (f"{exc.module}.{exc.type}",)
    return {n[1:] if n.startswith(("_pickle.", "_socket.")) else n for n in names}


def is_memory_error(exc: ExceptionFacts) -> bool:
    return "builtins.MemoryError" in mro_names(exc)


def root_cause(exc: ExceptionFacts) -> ExceptionFacts:
    """The exception to judge a load failure by: pandas.read_pickle retries a failed pickle.load with
    its compatibility unpickler, whose own error (often a confusing one) hides the real one."""
    if exc.chain and any(PANDAS_RETRY in f.file for f in exc.frames):
        return exc.chain[0]
    return exc


def is_harness(frame: TraceFrame) -> bool:
    return frame.file.endswith(HARNESS_FILES)


def is_library(frame: TraceFrame) -> bool:
    return "-packages/" in frame.file or bool(re.search(r"/lib/python3\.\d+/", frame.file))


def package_of(frame: TraceFrame) -> str:
    match = re.search(r"-packages/([A-Za-z0-9_]+)", frame.file)
    return match.group(1) if match else "the standard library"


def trim(exc: ExceptionFacts) -> list[dict[str, Any]]:
    """The traceback with the user's own frames first (innermost first), then library frames,
    each library frame marked with the package it belongs to."""
    frames = [f for f in exc.frames if not is_harness(f)]
    own = [f.to_dict() for f in reversed(frames) if not is_library(f)]
    rest = [dict(f.to_dict(), library=package_of(f)) for f in reversed(frames) if is_library(f)]
    return own + rest


def library_of_frame(frame: TraceFrame) -> str | None:
    """The known library a frame belongs to: by its path, or by a Cython frame's dotted name."""
    match = re.search(r"(?:site|dist)-packages/([A-Za-z0-9_]+)/", frame.file)
    if match:
        return match.group(1) if match.group(1) in LIBRARY_MODULES else None
    if frame.file.endswith((".pyx", ".pxd", ".pxi")):
        top = frame.function.split(".")[0]
        return top if top in LIBRARY_MODULES else None
    return None


def library_in_frames(exc: ExceptionFacts) -> str | None:
    """The known library whose code raised: the innermost frame, unless it is the unpickler itself."""
    frames = exc.frames
    if frames and any(p in frames[-1].file for p in PICKLE_PLUMBING):
        return None
    if frames:
        found = library_of_frame(frames[-1])
        if found:
            return found
    module = (exc.module or "").split(".")[0]  # e.g. lightgbm.basic.LightGBMError
    return module if module in LIBRARY_MODULES and module not in ("builtins", "pickle") else None


def module_in_message(message: str) -> str | None:
    """The module an attribute lookup failed on: "Can't get attribute 'x' on <module 'm' ...>" or
    "module 'm' has no attribute 'x'"."""
    match = re.search(r"on <module '([^']+)'", message) or re.search(r"module '([^']+)' has no attribute", message)
    return match.group(1) if match else None


def library_in_message(message: str) -> str | None:
    module = module_in_message(message)
    if module and module.split(".")[0] in LIBRARY_MODULES:
        return module.split(".")[0]
    match = re.search(r"from '([A-Za-z0-9_]+)", message)
    if match and match.group(1) in LIBRARY_MODULES:
        return match.group(1)
    return None


def in_unpickler(exc: ExceptionFacts) -> bool:
    """Raised by the unpickler itself (or with no frame to tell)."""
    return not exc.frames or any(p in exc.frames[-1].file for p in PICKLE_PLUMBING)


def is_network(exc: ExceptionFacts) -> bool:
    message = exc.said
    return bool(mro_names(exc) & NETWORK_TYPES or exc.errno in NETWORK_ERRNOS
                or "Network is unreachable" in message or "Temporary failure in name resolution" in message)
