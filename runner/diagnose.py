"""From facts to a verdict: whose fault, which reason code, what to tell the user.

Facts come from two places that are judged differently. The engine's facts (exit
code, OOM flag, our own timeout kill) cannot be forged by the model. The harness's
facts (phase, exception, traceback) come from the model's process: they are used to
explain a failure, never to turn a failure into a success.
"""

from __future__ import annotations

import os
import re
import signal as signals
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .engine import Limits, Outcome
from .pins import installed_distribution
from .protocol import FrameParser
from .reasons import OUTPUT_RULES, REASONS, Blame
from .validate import Validation

PHASES = {
    None: "starting the container",
    "inspecting": "reading the pickle (nothing was run)",
    "starting": "starting Python and importing pandas",
    "loading": "loading the pickle",
    "reading_data": "reading the live data",
    "predicting": "predicting",
    "checking": "checking the predictions",
    "writing": "writing the predictions",
}
LIBRARY_MODULES = {"sklearn", "lightgbm", "xgboost", "catboost", "numpy", "pandas", "scipy", "pyarrow",
                   "polars", "joblib", "cloudpickle", "torch", "tensorflow", "keras"}
NETWORK_TYPES = {"socket.gaierror", "socket.herror", "socket.timeout", "builtins.ConnectionError",
                 "urllib.error.URLError", "requests.exceptions.ConnectionError",
                 "urllib3.exceptions.NewConnectionError", "http.client.RemoteDisconnected"}
NETWORK_ERRNOS = {101, 113, -2, -3, -5, 99}  # ENETUNREACH, EHOSTUNREACH, EAI_NONAME, EAI_AGAIN, ...
VERSION_MISMATCH_TEXT = re.compile(r"code\(\) argument|code expected|CodeType|bad marshal data|unknown opcode|"
                                   r"_make_function|_function_setstate|co_|positional arguments? but",
                                   re.IGNORECASE)


@dataclass
class Verdict:
    reason: str | None  # None: Success
    message: str
    subcode: str | None = None
    phase: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def blame(self) -> Blame | None:
        return REASONS[self.reason].blame if self.reason else None

    @property
    def action(self) -> str | None:
        if self.subcode and self.subcode in OUTPUT_RULES:
            return OUTPUT_RULES[self.subcode].action
        return REASONS[self.reason].action if self.reason else None


@dataclass
class Context:
    """What the host knows about the run, independent of the model."""

    python: str  # the image's Python, "3.11"
    packages: dict[str, str]  # the image's distributions
    limits: Limits
    model_path: Path
    other_pythons: dict[str, dict[str, str]] = field(default_factory=dict)  # standard pins per Python
    pickle_python: str | None = None  # what static inspection says made the pickle, if known


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.0f} MiB"


def _duration(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


# ---------------------------------------------------------------- after the container ended

def from_engine(outcome: Outcome, parser: FrameParser, ctx: Context) -> Verdict | None:
    """A verdict for a run that ended before its predictions could be validated, else None."""
    phase = parser.phase
    where = PHASES.get(phase, phase or "?")
    peak = outcome.peak_memory_bytes
    if outcome.timed_out:
        evidence = {"limit_seconds": ctx.limits.timeout_seconds, "phase": phase}
        if parser.done:
            return Verdict("timeout", f"The model returned, but its process did not exit (a thread or "
                           f"subprocess it started kept it alive) and was killed at the "
                           f"{_duration(ctx.limits.timeout_seconds)} limit.", phase=phase,
                           evidence=evidence | {"returned": True})
        return Verdict("timeout", f"The model ran past the {_duration(ctx.limits.timeout_seconds)} limit "
                       f"while {where} and was killed.", phase=phase, evidence=evidence)
    if outcome.oom_killed:
        return Verdict("out_of_memory", f"The model needed more than the {_gib(ctx.limits.memory_bytes)} memory "
                       f"limit while {where} and was killed (peak seen {_gib(peak)}).", phase=phase,
                       evidence={"limit_bytes": ctx.limits.memory_bytes, "peak_bytes": peak, "phase": phase})
    if outcome.aborted or parser.oversized:
        size = parser.oversized
        return Verdict("invalid_output", f"The predictions are {_gib(size)}, over the "
                       f"{_gib(ctx.limits.max_output_bytes)} output cap.", subcode="output_too_large",
                       phase=phase, evidence={"bytes": size})
    error = parser.last("error")
    if isinstance(error, dict):
        return _from_error(error, ctx)
    if parser.done and parser.last("result") is not None:
        return None  # the model returned: validation decides
    return _ended_without_result(outcome, parser, ctx, where)


def _ended_without_result(outcome: Outcome, parser: FrameParser, ctx: Context, where: str) -> Verdict:
    phase = parser.phase
    sig = outcome.signal
    evidence = {"exit_code": outcome.exit_code, "phase": phase}
    if outcome.engine_error:
        return Verdict("internal_error", f"The container could not run: {outcome.engine_error}",
                       evidence=evidence)
    if parser.last("hello") is None and outcome.exit_code in (125, 126, 127):
        return Verdict("internal_error", f"The image's harness could not start (exit {outcome.exit_code}).",
                       evidence=evidence)
    if sig is not None:
        name = _signal_name(sig)
        evidence["signal"] = name
        hint = ""
        if phase in ("loading", "predicting") and sig in (signals.SIGSEGV, signals.SIGILL, signals.SIGBUS,
                                                           signals.SIGABRT, signals.SIGFPE):
            hint = (f" A native crash while {where} usually means the pickle was made with another "
                    f"Python or native library version than the image's (Python {ctx.python}).")
            if ctx.pickle_python and ctx.pickle_python != ctx.python:
                return Verdict("python_version_mismatch",
                               f"The model crashed with {name} while {where}: the pickle was made by Python "
                               f"{ctx.pickle_python}, the image runs Python {ctx.python}.", phase=phase,
                               evidence=evidence | {"pickle_python": ctx.pickle_python})
        if sig == signals.SIGKILL:
            hint = " Something in the container killed it (not the memory limit, not the time limit)."
        return Verdict("crashed", f"The model's process was killed by {name} while {where}.{hint}",
                       phase=phase, evidence=evidence)
    why = ("its report channel was corrupted" if parser.broken else
           f"it exited with code {outcome.exit_code} before returning")
    return Verdict("no_output", f"The model's process ended while {where} without producing predictions: "
                   f"{why} (e.g. os._exit or sys.exit from a thread).", phase=phase,
                   evidence=evidence | ({"channel": parser.broken} if parser.broken else {}))


def _signal_name(number: int) -> str:
    try:
        return signals.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _from_error(error: dict[str, Any], ctx: Context) -> Verdict:
    kind = error.get("kind")
    exc = error.get("exception") or {}
    phase = error.get("phase")
    evidence = {"phase": phase, "numerai_log": error.get("numerai_log"), "exception": _summary(exc)}
    if kind == "load_error":
        return classify_load_error(exc, ctx, evidence)
    if kind == "bad_signature":
        model = error.get("model") or {}
        params = model.get("parameters")
        what = f"a {model.get('kind', 'object')} ({model.get('type', '?')})"
        if params is not None:
            names = ", ".join(p["name"] for p in params) or "no parameters"
            detail = f"{what} with {len(params)} parameter(s) ({names})"
        else:
            detail = f"{what} whose parameters cannot be read ({exc.get('message', '')})"
        return Verdict("bad_signature", f"The pickle holds {detail}; Numerai calls it with 1 or 2 arguments.",
                       phase=phase, evidence=evidence | {"model": model})
    if kind == "data_error":
        return Verdict("data_unavailable", f"The image could not read the live data: {exc.get('type')}: "
                       f"{exc.get('message', '')}", phase=phase, evidence=evidence)
    return classify_model_exception(exc, ctx, evidence)


def _summary(exc: dict[str, Any]) -> dict[str, Any]:
    return {k: exc.get(k) for k in ("type", "module", "message", "name", "errno") if exc.get(k) is not None}


# ---------------------------------------------------------------- exceptions

def _mro(exc: dict[str, Any]) -> set[str]:
    """The exception's classes, with C accelerator modules named as their Python modules."""
    names = exc.get("mro") or [f"{exc.get('module')}.{exc.get('type')}"]
    return {n[1:] if n.startswith(("_pickle.", "_socket.")) else n for n in names}


PICKLE_PLUMBING = ("pandas/io/pickle.py", "pandas/compat/pickle_compat.py", "cloudpickle/")


def _library_in_frames(exc: dict[str, Any]) -> str | None:
    """The known library whose code raised: the innermost frame, unless it is the unpickler itself."""
    frames = exc.get("frames") or []
    if not frames or any(p in frames[-1].get("file", "") for p in PICKLE_PLUMBING):
        return None
    match = re.search(r"(?:site|dist)-packages/([A-Za-z0-9_]+)/", frames[-1].get("file", ""))
    return match.group(1) if match and match.group(1) in LIBRARY_MODULES else None


def _library_in_message(message: str) -> str | None:
    match = re.search(r"module '([A-Za-z0-9_]+)[.']", message) or re.search(r"from '([A-Za-z0-9_]+)", message)
    if match and match.group(1) in LIBRARY_MODULES:
        return match.group(1)
    return None


def _library_verdict(library: str, exc: dict[str, Any], ctx: Context, evidence: dict) -> Verdict:
    found = installed_distribution(library, ctx.packages)
    version = f"{found[0]} {found[1]}" if found else f"{library} (not installed)"
    return Verdict("library_mismatch",
                   f"{library} could not rebuild an object from the pickle ({exc.get('type')}: "
                   f"{_first_line(exc.get('message'))}); the image has {version}. The pickle was most likely "
                   f"made with another version of {library}.", phase="loading",
                   evidence=evidence | {"library": library, "image_version": found[1] if found else None})


def _first_line(text: str | None, limit: int = 240) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."


def classify_load_error(exc: dict[str, Any], ctx: Context, evidence: dict) -> Verdict:
    mro = _mro(exc)
    message = exc.get("message") or ""
    kind = exc.get("type")
    if "builtins.MemoryError" in mro:
        return Verdict("out_of_memory", f"Loading the pickle ran out of memory ({_first_line(message)}).",
                       phase="loading", evidence=evidence | {"limit_bytes": ctx.limits.memory_bytes})
    if "pickle.UnpicklingError" in mro or kind in ("EOFError",) or "unpickling stack" in message:
        looks = sniff(ctx.model_path)
        return Verdict("invalid_pickle", f"{ctx.model_path.name} is not a loadable pickle: it {looks} "
                       f"({kind}: {_first_line(message)}).", phase="loading",
                       evidence=evidence | {"file_looks_like": looks})
    if kind == "ValueError" and "unsupported pickle protocol" in message:
        return Verdict("python_version_mismatch", f"The pickle uses a newer pickle protocol than Python "
                       f"{ctx.python} reads ({message}).", phase="loading", evidence=evidence)
    if kind in ("ModuleNotFoundError", "ImportError"):
        return _import_error(exc, ctx, evidence)
    library = _library_in_frames(exc) or (_library_in_message(message) if kind == "AttributeError" else None)
    if library:
        return _library_verdict(library, exc, ctx, evidence)
    if kind == "AttributeError" and "Can't get attribute" in message:
        module = re.search(r"on <module '([^']+)'", message)
        where = module.group(1) if module else "?"
        target = _first_line(message).removeprefix("Can't get attribute ")
        return Verdict("missing_module", f"The pickle refers to {target} "
                       f"by name instead of holding it: pickle functions from `{where}` by value with "
                       f"cloudpickle (cloudpickle.dump(predict, f)).", phase="loading",
                       evidence=evidence | {"module": where})
    if kind in ("TypeError", "SystemError") or VERSION_MISMATCH_TEXT.search(message):
        made_by = f" (it was made by Python {ctx.pickle_python})" if ctx.pickle_python else ""
        return Verdict("python_version_mismatch", f"The pickle cannot be rebuilt by Python {ctx.python}{made_by}: "
                       f"{kind}: {_first_line(message)}. Numerai reports this as "
                       f"\"Pickle incompatible with {ctx.python}\".", phase="loading",
                       evidence=evidence | {"image_python": ctx.python, "pickle_python": ctx.pickle_python})
    return Verdict("model_exception", f"Code inside the pickle raised while it was being loaded: {kind}: "
                   f"{_first_line(message)}.", phase="loading", evidence=evidence | {"traceback": trim(exc)})


def _import_error(exc: dict[str, Any], ctx: Context, evidence: dict) -> Verdict:
    message = exc.get("message") or ""
    module = exc.get("name") or (re.search(r"No module named '([^']+)'", message) or [None, "?"])[1]
    top = module.split(".")[0]
    installed = installed_distribution(top, ctx.packages)
    if installed and top != module:
        return Verdict("library_mismatch",
                       f"The pickle needs {module}, which {installed[0]} {installed[1]} in the image does not "
                       f"have: it was made with another version of {installed[0]}.", phase="loading",
                       evidence=evidence | {"module": module, "library": installed[0], "image_version": installed[1]})
    if installed:  # cannot import name X from an installed library
        return _library_verdict(top, exc, ctx, evidence)
    elsewhere = [py for py, pins in sorted(ctx.other_pythons.items())
                 if installed_distribution(top, pins) is not None]
    if elsewhere:
        hint = (f"The standard image for Python {', '.join(elsewhere)} has it; this one does not.")
    elif top in LIBRARY_MODULES or "." not in module and top.lower() == top and len(top) > 2:
        hint = (f"It is not in the standard profile; if Numerai's image has it, build the full profile "
                f"(`numerai-sandbox images fetch --python {ctx.python} --profile full`).")
    else:
        hint = ""
    local = ("If it is your own module, pickle it by value: cloudpickle.register_pickle_by_value("
             f"{top}) before cloudpickle.dump.")
    return Verdict("missing_module", f"Unpickling imports `{module}`, which the image does not have. {hint} "
                   f"{local}".replace("  ", " ").strip(), phase="loading",
                   evidence=evidence | {"module": module, "available_in": elsewhere})


def classify_model_exception(exc: dict[str, Any], ctx: Context, evidence: dict) -> Verdict:
    mro = _mro(exc)
    kind = exc.get("type")
    message = exc.get("message") or ""
    frames = exc.get("frames") or []
    evidence = evidence | {"traceback": trim(exc)}
    if "builtins.MemoryError" in mro:
        return Verdict("out_of_memory", f"The model ran out of memory while predicting ({kind}: "
                       f"{_first_line(message)}); the limit is {_gib(ctx.limits.memory_bytes)}.",
                       phase="predicting", evidence=evidence | {"limit_bytes": ctx.limits.memory_bytes})
    if kind == "TypeError" and frames and _is_harness(frames[-1]) and "argument" in message:
        return Verdict("bad_signature", f"Numerai's call of the function failed: {_first_line(message)}.",
                       phase="predicting", evidence=evidence)
    if mro & NETWORK_TYPES or exc.get("errno") in NETWORK_ERRNOS or "Network is unreachable" in message \
            or "Temporary failure in name resolution" in message:
        return Verdict("model_exception", f"The model tried to use the network ({kind}: {_first_line(message)}); "
                       "the sandbox, like Numerai, has no network: ship everything inside the pickle.",
                       phase="predicting", evidence=evidence | {"network": True})
    if kind == "SystemExit":
        return Verdict("model_exception", f"The model called sys.exit({exc.get('code', '')}) instead of "
                       "returning predictions.", phase="predicting", evidence=evidence)
    top = next((f for f in trim(exc) if not _is_harness(f)), None)
    at = f" at {top['function']} ({os.path.basename(top['file'])}:{top['line']})" if top else ""
    return Verdict("model_exception", f"The model raised {kind}: {_first_line(message)}{at}.",
                   phase="predicting", evidence=evidence)


def _is_harness(frame: dict[str, Any]) -> bool:
    return frame.get("file", "").endswith("numerai-sandbox/harness.py")


def _is_library(frame: dict[str, Any]) -> bool:
    path = frame.get("file", "")
    return "-packages/" in path or bool(re.search(r"/lib/python3\.\d+/", path))


def trim(exc: dict[str, Any]) -> list[dict[str, Any]]:
    """The traceback with the user's own frames first (innermost first), then library frames,
    each library frame marked with the package it belongs to."""
    frames = [f for f in (exc.get("frames") or []) if not _is_harness(f)]
    own = [f for f in reversed(frames) if not _is_library(f)]
    rest = [dict(f, library=_package_of(f)) for f in reversed(frames) if _is_library(f)]
    return own + rest


def _package_of(frame: dict[str, Any]) -> str:
    path = frame.get("file", "")
    match = re.search(r"-packages/([A-Za-z0-9_]+)", path)
    return match.group(1) if match else "the standard library"


# ---------------------------------------------------------------- what a file looks like

def sniff(path: Path) -> str:
    """A short description of what a non-pickle file looks like, from its first bytes."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(512)
        size = path.stat().st_size
    except OSError:
        return "cannot be read"
    if size == 0:
        return "is empty (0 bytes)"
    checks = [
        (b"PK\x03\x04", "is a zip archive (a .zip, a torch.save file, or a numpy .npz?)"),
        (b"\x1f\x8b", "is gzip-compressed (decompress it first)"),
        (b"PAR1", "is a parquet file"),
        (b"\x7fELF", "is a compiled program (ELF)"),
        (b"\x89HDF", "is an HDF5 file (a Keras .h5?)"),
        (b"BZh", "is bzip2-compressed"),
        (b"\xfd7zXZ", "is xz-compressed"),
        (b"\x93NUMPY", "is a numpy .npy file"),
    ]
    for magic, text in checks:
        if head.startswith(magic):
            return text
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered[:200]:
        return "is an HTML page (a download that returned an error page?)"
    if lowered.startswith((b"{", b"[")):
        return "is JSON text"
    if head[:1] == b"\x80" and len(head) > 1:
        return f"starts like a pickle (protocol {head[1]}) but is cut short or damaged ({size:,} bytes)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return f"is binary data that is not a pickle ({size:,} bytes)"
    first = text.splitlines()[0] if text.splitlines() else ""
    if first.count(",") >= 1:
        return f"is CSV text (first line: {first[:60]!r})"
    return f"is text, not a pickle (first line: {first[:60]!r})"


# ---------------------------------------------------------------- after validation

def from_validation(validation: Validation) -> Verdict:
    failed = validation.failed
    if failed is None:
        return Verdict(None, "The predictions pass numerai-predict's checks and numerai-tools' upload rules.")
    rule = OUTPUT_RULES[failed.rule]
    detail = failed.detail or rule.meaning
    examples = f" (e.g. {', '.join(failed.examples[:3])})" if failed.examples else ""
    return Verdict("invalid_output", f"{rule.meaning} {detail[:1].upper()}{detail[1:]}{examples}.".replace("..", "."),
                   subcode=failed.rule, evidence={"rule": failed.rule, "source": rule.source,
                                                  "numerai_tools": validation.numerai_tools_error})
