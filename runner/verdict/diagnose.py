"""From facts to a verdict: whose fault, which reason code, what to tell the user.

Facts come from three places that are judged differently. The engine's facts (exit
code, OOM flag, our own timeout kill) cannot be forged by the model. The harness's
facts (phase, exception, traceback) come from the model's process: they are used to
explain a failure, never to turn a failure into a success. The pickle file itself,
read without unpickling it (runner/inspection.py, runner/filetype.py), says what it
looks like, which Python made it and which library versions wrote into it.

Every message says what happened and, where the reason's own action is not enough,
what to do about this particular case; the evidence holds what the message names.
"""

from __future__ import annotations

import errno as errnos
import os
import re
import signal as signals
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..sandbox.backend import Limits, Outcome
from ..inspection.columns import NUMERAI_BENCHMARK, NUMERAI_FEATURE, NUMERAI_TARGET
from ..inspection.filetype import sniff
from ..images.numerai import import_root, wheel_bytes
from ..images.pins import SUBSTITUTES, PinSet, distribution_for_module, installed_distribution
from ..sandbox.protocol import FrameParser
from ..inspection.pyversions import KNOWN_PYTHONS, span
from .reasons import OUTPUT_RULES, REASONS, Blame
from . import numerai_log
from ..support.units import human_bytes
if TYPE_CHECKING:
    from .validate import Validation

PHASES = {
    None: "starting the container",
    "inspecting": "reading the pickle (nothing was run)",
    "starting": "starting Python and importing pandas",
    "loading": "loading the pickle",
    "reading_data": "reading the live data",
    "reading_benchmarks": "reading the benchmark models",
    "predicting": "predicting",
    "checking": "checking the predictions",
    "writing": "writing the predictions",
}
# The harness's phases that do the run's work (not starting Python, not checking or writing the result), in
# its order: the terminal names each as it starts, and a native crash in one may be a library mismatch.
WORK_PHASES = ("loading", "reading_data", "reading_benchmarks", "predicting")
LIBRARY_MODULES = {"sklearn", "lightgbm", "xgboost", "catboost", "numpy", "pandas", "scipy", "pyarrow",
                   "polars", "joblib", "cloudpickle", "torch", "tensorflow", "keras"}
NETWORK_TYPES = {"socket.gaierror", "socket.herror", "socket.timeout", "builtins.ConnectionError",
                 "urllib.error.URLError", "requests.exceptions.ConnectionError",
                 "urllib3.exceptions.NewConnectionError", "http.client.RemoteDisconnected"}
NETWORK_ERRNOS = {101, 113, -2, -3, -5, 99}  # ENETUNREACH, EHOSTUNREACH, EAI_NONAME, EAI_AGAIN, ...
VERSION_MISMATCH_TEXT = re.compile(r"code\(\) argument|code expected|CodeType|bad marshal data|unknown opcode|"
                                   r"_make_function|_function_setstate|co_|positional arguments? but",
                                   re.IGNORECASE)
# Load errors whose text alone says another Python made the pickle, whatever the exception's type (what each
# means, in our words). numerai-predict (predict.py at 19d1769) does not read the text: it logs "Pickle
# incompatible with 3.X" for a TypeError only, and dies with the traceback of a ValueError; the report's
# numerai_log carries the line it really logs.
MISMATCH_TEXTS = {
    "unsupported pickle protocol": "uses a newer pickle protocol than Python {python} reads (a newer Python "
                                   "wrote it)",
    "code expected at most": "holds function code with more fields than Python {python}'s code objects have "
                             "(a newer Python compiled it)",
    "bad marshal data": "holds marshalled code that Python {python} cannot read (another Python version wrote it)",
}
# Where pandas.read_pickle and the unpickler live: an error raised here is about the file's bytes.
PICKLE_PLUMBING = ("pandas/io/pickle.py", "pandas/compat/pickle_compat.py", "cloudpickle/", "/pickle.py")
PANDAS_RETRY = "pandas/compat/pickle_compat.py"
# Exceptions an unpickler raises on bytes that are not a pickle.
PARSE_ERRORS = {"UnpicklingError", "EOFError", "ValueError", "KeyError", "IndexError", "error",
                "UnicodeDecodeError", "OverflowError"}
# Types whose missing attributes are the caller's mistake, not a library's changed internals.
PLAIN_TYPES = {"NoneType", "list", "dict", "str", "bytes", "int", "float", "bool", "tuple", "set", "DataFrame",
               "Series", "Index", "ndarray", "function", "module", "type"}
EXIT_CHANNEL_LOST = 86  # the harness's exit code when its report channel was taken from it
NATIVE_SIGNALS = {signals.SIGSEGV: "a segmentation fault", signals.SIGILL: "an illegal instruction",
                  signals.SIGBUS: "a bus error", signals.SIGABRT: "an abort", signals.SIGFPE: "a floating-point trap"}


@dataclass
class Verdict:
    reason: str | None  # None: Success
    message: str
    subcode: str | None = None
    phase: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    advice: str | None = None  # what to do in this case, when the reason's own action does not fit it
    numerai_log: str | None = None  # the line Numerai's log would show for it (Failed verdicts; numerai_log.py)

    @property
    def blame(self) -> Blame | None:
        return REASONS[self.reason].blame if self.reason else None

    @property
    def action(self) -> str | None:
        if self.advice:
            return self.advice
        if self.subcode and self.subcode in OUTPUT_RULES:
            return OUTPUT_RULES[self.subcode].action
        return REASONS[self.reason].action if self.reason else None


@dataclass(frozen=True)
class DataFacts:
    """The live data as the host prepared it: what a missing column is judged against."""

    columns: frozenset[str]  # live_features' columns
    benchmark_columns: frozenset[str]
    source: str  # "synthetic", "round", "local", "numerapi"
    description: str
    names_checked: bool  # the names are Numerai's own (real data or its features.json)


@dataclass
class Context:
    """What the host knows about the run, independent of the model."""

    python: str  # the image's Python, "3.11"
    packages: dict[str, str]  # the image's distributions
    limits: Limits
    model_path: Path
    other_pythons: dict[str, dict[str, str]] = field(default_factory=dict)  # Numerai's pins per Python
    pickle_candidates: list[str] | None = None  # Pythons the pickle's code allows (None: it holds no code)
    recorded_versions: dict[str, str] = field(default_factory=dict)  # written into the pickle by libraries
    full_pins: dict[str, str] | None = None  # Numerai's full pin list for this Python (vendored)
    profile: str = "standard"  # the profile the run asked for: auto, standard or full
    data: DataFacts | None = None  # the live data the model was given

    def made_by(self) -> tuple[str | None, bool | None]:
        """(the Python that made the pickle as words, whether it differs from the image's).

        ("3.12", True) known and different; ("3.11", False) the image's; (None, None) unknown
        (no code objects, or bytecode that several Pythons including the image's share)."""
        candidates = self.pickle_candidates
        if candidates is None:
            return None, None
        if not candidates:  # code objects that no Python we know compiles (a newer one, or damaged)
            if self.python not in KNOWN_PYTHONS:
                return None, None
            return f"a Python other than {KNOWN_PYTHONS[0]}-{KNOWN_PYTHONS[-1]} (a newer one?)", True
        if self.python in candidates:
            return (self.python, False) if candidates == [self.python] else (None, None)
        return span(candidates), True

    def library_differences(self) -> dict[str, tuple[str, str | None]]:
        """{distribution: (version recorded in the pickle, the image's version)} where they differ."""
        out = {}
        for name, recorded in self.recorded_versions.items():
            found = installed_distribution(name, self.packages)
            have = found[1] if found else None
            if have is None or not _same_version(recorded, have):
                out[name] = (recorded, have)
        return out


def _same_version(recorded: str, have: str) -> bool:
    if recorded.endswith(".x"):  # only the major version is known
        return have.split(".")[0] == recorded.split(".")[0]
    return recorded == have


def _duration(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


# ---------------------------------------------------------------- after the container ended

def from_engine(outcome: Outcome, parser: FrameParser, ctx: Context) -> Verdict | None:
    """A verdict for a run that ended before its predictions could be validated, else None; a Failed one
    carries the line Numerai's log would show for it."""
    verdict = _from_engine(outcome, parser, ctx)
    if verdict is not None and verdict.blame is Blame.MODEL:
        verdict.numerai_log = numerai_log.after_run(outcome, parser, ctx.python)
    return verdict


def doubt_of_prestarted(outcome: Outcome, parser: FrameParser) -> dict[str, Any] | None:
    """What a pre-started sandbox's run ended with that a cold run must confirm, or None.

    A pre-started sandbox read the live data before the pickle arrived; on Numerai the data is read after
    the pickle loads. Running out of memory (the kernel's kill, or a MemoryError) and a crash while loading
    may come from that difference alone, so such a verdict is not reported until a cold run in Numerai's
    order has ended the same way."""
    if not outcome.prestarted:
        return None
    phase = parser.phase
    error = parser.last("error")
    exc = error.get("exception") if isinstance(error, dict) and isinstance(error.get("exception"), dict) else None
    memory_error = exc is not None and "builtins.MemoryError" in _mro(_root_cause(exc))
    if outcome.oom_killed or memory_error:
        return {"reason": "out_of_memory", "phase": phase, "peak_memory_bytes": outcome.peak_memory_bytes,
                "what": f"out of memory while {PHASES.get(phase, phase or '?')}"}
    if outcome.signal is not None and not outcome.timed_out and phase == "loading":
        return {"reason": "crashed", "phase": phase, "signal": _signal_name(outcome.signal),
                "what": f"a crash ({_signal_name(outcome.signal)}) while loading the pickle"}
    return None


def _from_engine(outcome: Outcome, parser: FrameParser, ctx: Context) -> Verdict | None:
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
        limit = ctx.limits.memory_bytes
        sampled = (f" Memory is sampled while the model runs: the highest sample was {human_bytes(peak)}, so the "
                   "allocation that crossed the limit came after the last sample." if peak and peak < limit else "")
        return Verdict("out_of_memory", f"The model reached the {human_bytes(limit)} memory limit while {where} "
                       f"and the kernel killed it.{sampled}", phase=phase,
                       evidence={"limit_bytes": limit, "peak_bytes": peak, "peak_is_sampled": True, "phase": phase})
    if outcome.aborted or parser.oversized:
        size = parser.oversized
        return Verdict("invalid_output", f"The predictions are {human_bytes(size)}, over the "
                       f"{human_bytes(ctx.limits.max_output_bytes)} output cap.", subcode="output_too_large",
                       phase=phase, evidence={"bytes": size})
    error = parser.last("error")
    if isinstance(error, dict):
        return _from_error(error, ctx)
    result = parser.last("result")
    if parser.done and isinstance(result, dict):
        return _unsent_predictions(result, ctx)  # None: the model returned, validation decides
    return _ended_without_result(outcome, parser, ctx, where)


def _unsent_predictions(result: dict[str, Any], ctx: Context) -> Verdict | None:
    """A DataFrame came back but its CSV could not be made or was too big to send."""
    if isinstance(result.get("unwritable"), dict):
        exc = result["unwritable"]
        return Verdict("invalid_output", f"The returned DataFrame could not be written as CSV: "
                       f"{exc.get('type')}: {_first_line(exc.get('message'))}.", subcode="unwritable",
                       phase="writing", evidence={"rule": "unwritable", "exception": _summary(exc)})
    if isinstance(result.get("output_too_large"), int):
        size = result["output_too_large"]
        return Verdict("invalid_output", f"The predictions are {human_bytes(size)} as CSV, over the "
                       f"{human_bytes(ctx.limits.max_output_bytes)} output cap.", subcode="output_too_large",
                       phase="writing", evidence={"rule": "output_too_large", "bytes": size})
    return None


def _ended_without_result(outcome: Outcome, parser: FrameParser, ctx: Context, where: str) -> Verdict:
    phase = parser.phase
    sig = outcome.signal
    evidence = {"exit_code": outcome.exit_code, "phase": phase}
    if outcome.engine_error:
        return Verdict("internal_error", f"The container could not run: {outcome.engine_error}",
                       evidence=evidence)
    if parser.last("hello") is None and parser.last("go") is None and outcome.exit_code in (125, 126, 127):
        return Verdict("internal_error", f"The image's harness could not start (exit {outcome.exit_code}).",
                       evidence=evidence)
    if sig is not None:
        return _killed_by_signal(sig, phase, where, ctx, evidence)
    if outcome.exit_code == EXIT_CHANNEL_LOST and not parser.broken:
        return Verdict("no_output", f"The model's process ended while {where} without producing predictions: "
                       "the model closed or replaced the sandbox's report channel (a file descriptor the "
                       "harness holds), so nothing it did could be reported.", phase=phase,
                       evidence=evidence | {"channel": "closed by the model"})
    why = ("its report channel was corrupted (the model wrote to a file descriptor it does not own)"
           if parser.broken else f"it exited with code {outcome.exit_code} before returning (os._exit, "
           "sys.exit from a thread, or exec of another program)")
    return Verdict("no_output", f"The model's process ended while {where} without producing predictions: "
                   f"{why}.", phase=phase,
                   evidence=evidence | ({"channel": parser.broken} if parser.broken else {}))


def _killed_by_signal(sig: int, phase: str | None, where: str, ctx: Context, evidence: dict) -> Verdict:
    name = _signal_name(sig)
    evidence["signal"] = name
    what = f" ({NATIVE_SIGNALS[sig]})" if sig in NATIVE_SIGNALS else ""
    hint = ""
    if sig in NATIVE_SIGNALS and phase in WORK_PHASES:
        made_by, differs = ctx.made_by()
        if differs:
            return Verdict("python_version_mismatch",
                           f"The model crashed with {name}{what} while {where}: the pickle was made by Python "
                           f"{made_by}, and this image runs Python {ctx.python}, which cannot run that Python's "
                           f"bytecode. {_pick_image(made_by)}", phase=phase,
                           evidence=evidence | {"image_python": ctx.python, "pickle_python": made_by})
        libraries = ctx.library_differences()
        if libraries:
            evidence["library_versions"] = {n: {"pickle": p, "image": i} for n, (p, i) in libraries.items()}
            hint = (f" The pickle was made with {_versions_text(libraries)}: a native library of another "
                    "version is the likely cause; train and pickle with the image's versions.")
        else:
            hint = (f" A native crash while {where} usually means native code (a compiled library, or ctypes) "
                    f"was given something it cannot handle, or the pickle was made with another Python or "
                    f"native library version than the image's (Python {ctx.python}).")
    elif sig == signals.SIGKILL:
        hint = " Something in the container killed it (not the memory limit, not the time limit)."
    return Verdict("crashed", f"The model's process was killed by {name}{what} while {where}.{hint}",
                   phase=phase, evidence=evidence)


def _versions_text(libraries: dict[str, tuple[str, str | None]]) -> str:
    return ", ".join(f"{name} {pickle_version} (the image has {have or 'none'})"
                     for name, (pickle_version, have) in sorted(libraries.items()))


def _pick_image(made_by: str | None) -> str:
    if made_by and re.fullmatch(r"3\.\d+", made_by):
        return (f"Run it with --python {made_by} (choose \"Python {made_by}\" on Numerai), or re-pickle "
                "it with the Python of the image you will choose.")
    return "Re-pickle it with the Python of the image you will choose on Numerai."


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
        return _bad_signature(error.get("model") or {}, exc, phase, evidence)
    if kind == "data_error":
        return Verdict("data_unavailable", f"The image could not read the live data: {exc.get('type')}: "
                       f"{exc.get('message', '')}", phase=phase, evidence=evidence)
    if kind == "harness_error":
        return Verdict("internal_error", f"numerai-sandbox's harness failed while {PHASES.get(phase, phase)}: "
                       f"{exc.get('type')}: {_first_line(exc.get('message'))} (a model that patches the "
                       "harness's modules or streams can cause this too).", phase=phase, evidence=evidence)
    return classify_model_exception(exc, ctx, evidence)


def _bad_signature(model: dict[str, Any], exc: dict[str, Any], phase: str | None, evidence: dict) -> Verdict:
    params = model.get("parameters")
    kind, type_name = model.get("kind", "object"), model.get("type", "?")
    evidence = evidence | {"model": model}
    if kind == "not callable":
        top = type_name.split(".")[0]
        if type_name == "builtins.bytes":
            what = ("bytes, not a function (a pickle of a pickle? cloudpickle.dump(predict, f) writes the "
                    "function; do not pickle the result of cloudpickle.dumps again)")
        elif top in LIBRARY_MODULES and top not in ("numpy", "pandas", "cloudpickle"):
            what = (f"a {type_name} object (a fitted model?), not a function: wrap it, e.g. "
                    "`def predict(live_features): return pd.DataFrame({'prediction': model.predict(...)}, "
                    "index=live_features.index)`, and pickle that function")
        else:
            what = f"a {type_name} object, which cannot be called"
        return Verdict("bad_signature", f"The pickle holds {what}; Numerai calls it with 1 or 2 arguments.",
                       phase=phase, evidence=evidence)
    described = f"a {kind} ({type_name})"
    if params is not None:
        names = ", ".join(p["name"] for p in params) or "no parameters"
        detail = f"{described} with {len(params)} parameter(s) ({names})"
    else:
        detail = f"{described} whose parameters cannot be read ({_first_line(exc.get('message'))})"
    return Verdict("bad_signature", f"The pickle holds {detail}; Numerai calls it with 1 or 2 arguments.",
                   phase=phase, evidence=evidence)


def _summary(exc: dict[str, Any]) -> dict[str, Any]:
    return {k: exc.get(k) for k in ("type", "module", "message", "name", "errno", "filename", "obj_type")
            if exc.get(k) is not None}


# ---------------------------------------------------------------- exceptions

def _mro(exc: dict[str, Any]) -> set[str]:
    """The exception's classes, with C accelerator modules named as their Python modules."""
    names = exc.get("mro") or [f"{exc.get('module')}.{exc.get('type')}"]
    return {n[1:] if n.startswith(("_pickle.", "_socket.")) else n for n in names}


def _root_cause(exc: dict[str, Any]) -> dict[str, Any]:
    """The exception to judge a load failure by: pandas.read_pickle retries a failed pickle.load with
    its compatibility unpickler, whose own error (often a confusing one) hides the real one."""
    chain = exc.get("chain") or []
    if chain and any(PANDAS_RETRY in f.get("file", "") for f in exc.get("frames") or []):
        return chain[0]
    return exc


def _library_of_frame(frame: dict[str, Any]) -> str | None:
    """The known library a frame belongs to: by its path, or by a Cython frame's dotted name."""
    match = re.search(r"(?:site|dist)-packages/([A-Za-z0-9_]+)/", frame.get("file", ""))
    if match:
        return match.group(1) if match.group(1) in LIBRARY_MODULES else None
    if frame.get("file", "").endswith((".pyx", ".pxd", ".pxi")):
        top = frame.get("function", "").split(".")[0]
        return top if top in LIBRARY_MODULES else None
    return None


def _library_in_frames(exc: dict[str, Any]) -> str | None:
    """The known library whose code raised: the innermost frame, unless it is the unpickler itself."""
    frames = exc.get("frames") or []
    if frames and any(p in frames[-1].get("file", "") for p in PICKLE_PLUMBING):
        return None
    if frames:
        found = _library_of_frame(frames[-1])
        if found:
            return found
    module = (exc.get("module") or "").split(".")[0]  # e.g. lightgbm.basic.LightGBMError
    return module if module in LIBRARY_MODULES and module not in ("builtins", "pickle") else None


def _library_in_message(message: str) -> str | None:
    module = _module_in_message(message)
    if module and module.split(".")[0] in LIBRARY_MODULES:
        return module.split(".")[0]
    match = re.search(r"from '([A-Za-z0-9_]+)", message)
    if match and match.group(1) in LIBRARY_MODULES:
        return match.group(1)
    return None


def _module_in_message(message: str) -> str | None:
    """The module an attribute lookup failed on: "Can't get attribute 'x' on <module 'm' ...>" or
    "module 'm' has no attribute 'x'"."""
    match = re.search(r"on <module '([^']+)'", message) or re.search(r"module '([^']+)' has no attribute", message)
    return match.group(1) if match else None


def _distribution(module: str, ctx: Context) -> tuple[str, str | None]:
    """(the distribution that provides `module`, named as in the report's library_versions; its version)."""
    found = installed_distribution(module, ctx.packages)
    if found is None:
        return distribution_for_module(module), None
    return SUBSTITUTES.get(found[0], found[0]), found[1]


def _library_verdict(library: str, exc: dict[str, Any], ctx: Context, evidence: dict, phase: str = "loading",
                     doing: str = "could not rebuild an object from the pickle") -> Verdict:
    dist, version = _distribution(library, ctx)
    recorded = ctx.library_differences().get(dist)
    made = (f"The pickle was made with {dist} {recorded[0]}." if recorded
            else f"The pickle was most likely made with another version of {dist}.")
    return Verdict("library_mismatch",
                   f"{dist} {doing} ({exc.get('type')}: {_first_line(exc.get('message'))}); the image has "
                   f"{dist} {version or '(not installed)'}. {made}", phase=phase,
                   evidence=evidence | {"library": dist, "module": library, "image_version": version,
                                        "pickle_version": recorded[0] if recorded else None})


def _first_line(text: str | None, limit: int = 240) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."


def _is_network(exc: dict[str, Any]) -> bool:
    message = exc.get("message") or ""
    return bool(_mro(exc) & NETWORK_TYPES or exc.get("errno") in NETWORK_ERRNOS
                or "Network is unreachable" in message or "Temporary failure in name resolution" in message)


def _network_verdict(exc: dict[str, Any], phase: str, evidence: dict) -> Verdict:
    when = " while the pickle was being loaded" if phase == "loading" else ""
    return Verdict("model_exception", f"The model tried to use the network{when} ({exc.get('type')}: "
                   f"{_first_line(exc.get('message'))}); the sandbox, like Numerai, has no network: ship "
                   "everything inside the pickle.", phase=phase,
                   evidence=evidence | {"network": True, "traceback": trim(exc)},
                   advice="Ship everything the model needs (data, files, weights) inside the pickle: the sandbox, "
                          "like Numerai, has no network.")


def classify_load_error(exc: dict[str, Any], ctx: Context, evidence: dict) -> Verdict:
    root = _root_cause(exc)
    mro = _mro(root)
    message = root.get("message") or ""
    kind = root.get("type")
    if root is not exc:
        evidence = evidence | {"exception": _summary(root), "pandas_retry": _summary(exc)}
    if "builtins.MemoryError" in mro:
        return Verdict("out_of_memory", f"Loading the pickle ran out of memory ({_first_line(message)}); the "
                       f"limit is {human_bytes(ctx.limits.memory_bytes)}.", phase="loading",
                       evidence=evidence | {"limit_bytes": ctx.limits.memory_bytes, "phase": "loading"})
    mismatch_text = next((text for text in MISMATCH_TEXTS if text in message), None)
    if mismatch_text is not None:
        made_by, differs = ctx.made_by()
        what = MISMATCH_TEXTS[mismatch_text].format(python=ctx.python)
        made = f" It was made by Python {made_by}. {_pick_image(made_by)}" if differs else ""
        return Verdict("python_version_mismatch", f"The pickle {what}: {kind}: {_first_line(message)}.{made}",
                       phase="loading", evidence=evidence | {"image_python": ctx.python, "pickle_python": made_by,
                                                             "mismatch_text": mismatch_text})
    if _not_a_pickle(root, ctx):
        looks = sniff(ctx.model_path)
        return Verdict("invalid_pickle", f"{ctx.model_path.name} is not a loadable pickle: it {looks} "
                       f"({kind}: {_first_line(message)}).", phase="loading",
                       evidence=evidence | {"file_looks_like": looks})
    if _is_network(root):
        return _network_verdict(root, "loading", evidence)
    if kind in ("ModuleNotFoundError", "ImportError"):
        return _import_error(root, ctx, evidence)
    library = _library_in_frames(root) or (_library_in_message(message) if kind == "AttributeError" else None)
    if library:
        return _library_verdict(library, root, ctx, evidence)
    if kind == "AttributeError" and _module_in_message(message):
        return _missing_attribute(root, ctx, evidence)
    made_by, differs = ctx.made_by()
    code_related = bool(VERSION_MISMATCH_TEXT.search(message)) or any(
        "cloudpickle/" in f.get("file", "") for f in (root.get("frames") or [])[-1:])
    if differs or code_related or (differs is None and kind in ("TypeError", "SystemError")):
        return _version_verdict(ctx, made_by, f"{kind}: {_first_line(message)}", evidence,
                                "cannot rebuild the pickle", "loading")
    return Verdict("model_exception", f"Code inside the pickle raised while it was being loaded: {kind}: "
                   f"{_first_line(message)}.{_errno_hint(root, ctx)}", phase="loading",
                   evidence=evidence | {"traceback": trim(root)} | _errno_evidence(root, ctx))


def _version_verdict(ctx: Context, made_by: str | None, error: str, evidence: dict, what: str,
                     phase: str) -> Verdict:
    if made_by:
        text = (f"The pickle was made by Python {made_by}; this image runs Python {ctx.python}, which "
                f"{what} ({error}). {_pick_image(made_by)}")
    else:
        text = (f"Python {ctx.python} {what} ({error}): the pickle's code was most likely compiled by "
                "another Python version.")
    return Verdict("python_version_mismatch", text, phase=phase,
                   evidence=evidence | {"image_python": ctx.python, "pickle_python": made_by})


def _not_a_pickle(exc: dict[str, Any], ctx: Context) -> bool:
    """The unpickler failed on the file's bytes themselves (not on what they asked it to import or call)."""
    if "pickle.UnpicklingError" in _mro(exc) or exc.get("type") == "EOFError":
        return True
    frames = exc.get("frames") or []
    in_unpickler = not frames or any(p in frames[-1].get("file", "") for p in PICKLE_PLUMBING)
    if not in_unpickler or exc.get("type") not in PARSE_ERRORS:
        return False
    try:
        with open(ctx.model_path, "rb") as handle:
            return handle.read(1) != b"\x80"  # every pickle of protocol 2 or later starts so
    except OSError:
        return False


def _missing_attribute(exc: dict[str, Any], ctx: Context, evidence: dict) -> Verdict:
    message = exc.get("message") or ""
    module = _module_in_message(message) or "?"
    name = re.search(r"attribute '([^']+)'", message)
    target = f"{module}.{name.group(1)}" if name else module
    if module == "__main__":
        return Verdict("missing_module", f"The pickle refers to `{target}` by name instead of holding its code: "
                       "plain pickle and joblib save functions of the script that ran them by reference only. "
                       "Pickle it with cloudpickle (cloudpickle.dump(predict, f)), which keeps them by value.",
                       phase="loading", evidence=evidence | {"module": "__main__", "attribute": target})
    top = module.split(".")[0]
    return Verdict("missing_module", f"The pickle needs `{target}`, which `{module}` in the image does not "
                   f"have. If `{top}` is your own code, pickle it by value: cloudpickle.register_pickle_by_value("
                   f"{top}) before cloudpickle.dump.", phase="loading",
                   evidence=evidence | {"module": module, "attribute": target})


def _import_error(exc: dict[str, Any], ctx: Context, evidence: dict, phase: str = "loading") -> Verdict:
    message = exc.get("message") or ""
    module = exc.get("name") or (re.search(r"No module named '([^']+)'", message) or [None, "?"])[1]
    top = module.split(".")[0]
    installed = installed_distribution(module, ctx.packages)
    if installed and import_root(module) != module:
        dist, version = _distribution(top, ctx)
        recorded = ctx.library_differences().get(dist)
        made = (f"the pickle was made with {dist} {recorded[0]}" if recorded
                else f"it was made with another version of {dist}")
        return Verdict("library_mismatch",
                       f"The pickle needs {module}, which {dist} {version} in the image does not have: {made}.",
                       phase=phase,
                       evidence=evidence | {"module": module, "library": dist, "image_version": version,
                                            "pickle_version": recorded[0] if recorded else None})
    if installed:  # cannot import name X from an installed library
        return _library_verdict(top, exc, ctx, evidence, phase=phase)
    doing = "Unpickling imports" if phase == "loading" else "The model imports"
    theirs = installed_distribution(module, ctx.full_pins) if ctx.full_pins is not None else None
    if theirs is not None:  # Numerai's image has it: the model is fine, our image is short of it
        return _sandbox_lacks(module, theirs, ctx, evidence, phase, doing)
    if top == "dill":
        return Verdict("missing_module", "Unpickling imports `dill`: the pickle was made with dill, which "
                       "Numerai's images do not have. Pickle the function with cloudpickle instead "
                       "(cloudpickle.dump(predict, f)).", phase=phase,
                       evidence=evidence | {"module": module, "available_in": [], "in_full_profile": False})
    elsewhere = [py for py, pins in sorted(ctx.other_pythons.items())
                 if py != ctx.python and installed_distribution(module, pins) is not None]
    known_library = top in LIBRARY_MODULES
    hints = []
    if ctx.full_pins is not None:
        hints.append(f"Numerai's image for Python {ctx.python} does not have it either: the upload fails there too.")
    if not known_library:
        hints.append(f"If `{top}` is your own module (e.g. `from {top} import ...` in your notebook), pickle it "
                     f"by value: cloudpickle.register_pickle_by_value({top}) before cloudpickle.dump.")
    if elsewhere:
        hints.append(f"Numerai's image for Python {', '.join(elsewhere)} has it and this one does not: pickle with "
                     "that Python and choose its image.")
    return Verdict("missing_module", f"{doing} `{module}`, which the image does not have. "
                   + " ".join(hints), phase=phase,
                   evidence=evidence | {"module": module, "available_in": elsewhere,
                                        "in_full_profile": False if ctx.full_pins is not None else None})


def _sandbox_lacks(module: str, theirs: tuple[str, str], ctx: Context, evidence: dict, phase: str,
                   doing: str) -> Verdict:
    """A module Numerai's image provides is missing here: not the model's fault (Error), and how to get it."""
    dist, version = theirs
    profile = ctx.profile
    fetch_full = f"`numerai-sandbox images fetch --python {ctx.python} --profile full` once"
    if profile == "standard":
        why = "the standard profile leaves it out."
        fix = ("Run with the default --profile auto, which adds what the pickle needs from Numerai's image; if "
               f"the import is hidden from it, use --profile full ({fetch_full}).")
    else:
        why = ("the pickle does not show this import (importlib, or a lazy import inside a library), so the auto "
               "profile could not know to add it." if profile == "auto" else f"the {profile} image leaves it out.")
        fix = (f"Run with --profile full ({fetch_full}), or put `{dist}=={version}` (and what it requires) in a "
               f"file and pass it with --extra-requirements (fetch it once with `numerai-sandbox images fetch "
               f"--python {ctx.python} --extra-requirements FILE`).")
    return Verdict("sandbox_lacks_module",
                   f"{doing} `{module}`, which Numerai's Python {ctx.python} image has ({dist} {version}) and this "
                   f"image does not: {why} Numerai would run it. {fix}", phase=phase,
                   evidence=evidence | {"module": module, "distribution": dist, "numerai_version": version,
                                        "profile": ctx.profile, "in_full_profile": True})


def packages_not_fetched(pins: PinSet, missing: list[str], command: str) -> Verdict:
    """The auto profile's wheels are not cached (run never downloads): not the model's fault."""
    wanted = ", ".join(f"{module} ({dist} {pins.added[dist]})" for dist, module in pins.wanted.items())
    size, _unknown = wheel_bytes(pins.python, pins.added)
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    return Verdict("packages_not_fetched",
                   f"The pickle needs {wanted or 'packages'}, which Numerai's Python {pins.python} image has and the "
                   f"standard image lacks. The auto profile adds {len(pins.added)} distribution"
                   f"{'s' if len(pins.added) != 1 else ''} at Numerai's pins "
                   f"({human_bytes(size) if size else 'size unknown'} of wheels), but these wheels are not in the "
                   f"local cache: {shown}. Run `{command}` once while online, then run again.",
                   evidence={"python": pins.python, "wanted": pins.wanted, "added": pins.added, "missing": missing,
                             "fetch_command": command})


def classify_model_exception(exc: dict[str, Any], ctx: Context, evidence: dict) -> Verdict:
    mro = _mro(exc)
    kind = exc.get("type")
    message = exc.get("message") or ""
    frames = exc.get("frames") or []
    evidence = evidence | {"traceback": trim(exc)}
    made_by, differs = ctx.made_by()
    calling = kind == "TypeError" and frames and _is_harness(frames[-1]) and "argument" in message
    if differs and not calling:  # bytecode run by the wrong interpreter: whatever it raised means nothing
        return _version_verdict(ctx, made_by, f"{kind}: {_first_line(message)}", evidence,
                                "cannot run the function's bytecode faithfully", "predicting")
    if "builtins.MemoryError" in mro:
        return Verdict("out_of_memory", f"The model ran out of memory while predicting ({kind}: "
                       f"{_first_line(message)}); the limit is {human_bytes(ctx.limits.memory_bytes)}.",
                       phase="predicting", evidence=evidence | {"limit_bytes": ctx.limits.memory_bytes,
                                                                "phase": "predicting"})
    if calling:
        hint = (" Numerai passes live_features (and live_benchmark_models) by position: parameters after `*` or "
                "only `**kwargs` cannot receive them." if "positional argument" in message else "")
        return Verdict("bad_signature", f"Numerai's call of the function failed: {_first_line(message)}.{hint}",
                       phase="predicting", evidence=evidence)
    if kind == "SystemError":
        own_code = not frames or _library_of_frame(frames[-1]) is None
        if differs is None and (own_code or "unknown opcode" in message):
            return _version_verdict(ctx, made_by, f"{kind}: {_first_line(message)}", evidence,
                                    "cannot run the function's bytecode", "predicting")
    if _is_network(exc):
        return _network_verdict(exc, "predicting", evidence)
    if kind == "SystemExit":
        return Verdict("model_exception", f"The model called sys.exit({exc.get('code', '')}) instead of "
                       "returning predictions.", phase="predicting", evidence=evidence)
    if kind in ("ModuleNotFoundError", "ImportError") and (exc.get("name") or "No module named" in message):
        return _import_error(exc, ctx, evidence, phase="predicting")
    columns = _missing_columns(exc, ctx, evidence)
    if columns is not None:
        return columns
    library = _library_in_frames(exc)
    if library and _library_internals_changed(exc, ctx):
        return _library_verdict(library, exc, ctx, evidence, phase="predicting",
                                doing="failed inside its own code on an object from the pickle")
    top = next((f for f in trim(exc) if not _is_harness(f)), None)
    at = f" at {top['function']} ({os.path.basename(top['file'])}:{top['line']})" if top else ""
    return Verdict("model_exception", f"The model raised {kind}: {_first_line(message)}{at}."
                   f"{_errno_hint(exc, ctx)}", phase="predicting", evidence=evidence | _errno_evidence(exc, ctx))


def _asked_columns(exc: dict[str, Any]) -> list[str] | None:
    """The column names a failed lookup asked for, as pandas, scikit-learn and XGBoost word it."""
    kind, message = exc.get("type"), exc.get("message") or ""
    files = [f.get("file", "") for f in exc.get("frames") or []]
    if kind == "KeyError" and files and "/pandas/" in files[-1]:
        # "['a', 'b'] not in index", "None of [Index(['a'], dtype='object')] are in the [columns]", or 'a'
        return re.findall(r"'([^'\\]+)'", re.sub(r"dtype='[^']*'", "", message))
    if kind == "ValueError" and "yet now missing:" in message:  # scikit-learn's feature-name check
        return re.findall(r"^- (\S+)$", message.split("yet now missing:", 1)[1], re.M)
    if kind == "ValueError" and "feature_names mismatch" in message:  # XGBoost
        expected = re.search(r"expected (.+?) in input data", message)
        return [n.strip() for n in expected.group(1).split(",")] if expected else None
    if files and any("-packages/" in f for f in files[-1:]):  # another library naming Numerai-shaped columns
        return [n for n in re.findall(r"[A-Za-z0-9_]+", message) if _numerai_shaped(n)] or None
    return None


def _numerai_shaped(name: str) -> bool:
    return bool(NUMERAI_FEATURE.fullmatch(name) or NUMERAI_TARGET.fullmatch(name)
                or NUMERAI_BENCHMARK.fullmatch(name))


def _missing_columns(exc: dict[str, Any], ctx: Context, evidence: dict) -> Verdict | None:
    """A lookup of columns the live data lacks: the data's fault (Error) only when synthetic data could
    not know a Numerai-shaped name; otherwise the model asks for what Numerai's data does not have."""
    data = ctx.data
    asked = _asked_columns(exc)
    if data is None or not asked:
        return None
    have = data.columns | data.benchmark_columns
    missing = list(dict.fromkeys(n for n in asked if n not in have))
    if not missing:
        return None
    in_frame = any(p in f.get("file", "") for f in exc.get("frames") or []
                   for p in ("pandas/core/frame.py", "pandas/core/indexing.py"))
    shaped = [n for n in missing if _numerai_shaped(n)]
    if not shaped and not in_frame and exc.get("type") == "KeyError":
        return None  # a lookup in the model's own Series or mapping, not in the live data
    names = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    evidence = evidence | {"missing_columns": missing, "data": data.description, "data_source": data.source,
                           "names_checked": data.names_checked}
    if data.source == "synthetic" and not data.names_checked and shaped:
        return Verdict("unverifiable_columns", f"The model asks for {len(missing)} column(s) the synthetic live "
                       f"data does not have: {names}. They look like Numerai's, but the pickle does not name "
                       "them (built at run time?), so synthetic data could not carry them, and only Numerai's "
                       "real data can tell whether they exist.", phase="predicting", evidence=evidence)
    odd = [n for n in missing if not _numerai_shaped(n)]
    hint = (f" {', '.join(odd[:3])} {'is' if len(odd) == 1 else 'are'} not shaped like Numerai's column names "
            "(features are `feature_` and three lowercase words)." if odd else "")
    source = {"synthetic": "the synthetic live data" + (", which has Numerai's real feature names,"
                                                        if data.names_checked else ""),
              "round": f"Numerai's live data ({data.description})",
              "numerapi": f"Numerai's live data ({data.description})",
              "local": f"your live data ({data.description})"}.get(data.source, data.description)
    return Verdict("missing_columns", f"The model asks for {len(missing)} column(s) that {source} does not "
                   f"have: {names}: a renamed or retired feature, or a typo.{hint}", phase="predicting",
                   evidence=evidence)


def _library_internals_changed(exc: dict[str, Any], ctx: Context) -> bool:
    """A library failed on its own object: an attribute its code expects is missing from an object of
    its own (e.g. scikit-learn 1.3's trees lack `monotonic_cst`, read by 1.4+), or the pickle records
    another version of a library than the image has."""
    kind = exc.get("type")
    if kind not in ("AttributeError", "TypeError", "KeyError", "ValueError", "IndexError"):
        return False
    if ctx.library_differences():
        return True
    if kind != "AttributeError":
        return False
    owner = exc.get("obj_type")
    if owner:
        return owner.split(".")[0] in LIBRARY_MODULES - {"numpy", "pandas"}
    match = re.match(r"'([A-Za-z_][A-Za-z0-9_]*)' object has no attribute", exc.get("message") or "")
    return bool(match) and match.group(1) not in PLAIN_TYPES


def _errno_hint(exc: dict[str, Any], ctx: Context) -> str:
    """What a system error means inside the sandbox."""
    number = exc.get("errno")
    message = exc.get("message") or ""
    limits = ctx.limits
    if number == errnos.ENOSPC:
        return (f" Only /tmp is writable in the sandbox, and it holds at most {human_bytes(limits.tmp_bytes)} "
                "(in memory, counted against the memory limit).")
    if number in (errnos.EROFS, errnos.EACCES, errnos.EPERM) and exc.get("type") != "ConnectionRefusedError":
        return (" The sandbox runs the model as an unprivileged user on a read-only file system: "
                "only /tmp is writable.")
    if number == errnos.EMFILE:
        return f" The sandbox allows {limits.open_files} open files."
    if number == errnos.EAGAIN and exc.get("type") == "BlockingIOError" or "can't start new thread" in message:
        return (f" The sandbox allows {limits.pids} processes and threads in all; the model reached that "
                "limit.")
    if number == errnos.ENOENT and str(exc.get("filename", "")).startswith("/") \
            and not str(exc.get("filename")).startswith(("/input/", "/opt/", "/usr/", "/proc/", "/sys/", "/dev/")):
        return (" Files from your machine are not in the sandbox: it holds the pickle, the live data and an "
                "empty /tmp only; ship what the model needs inside the pickle.")
    return ""


def _errno_evidence(exc: dict[str, Any], ctx: Context) -> dict[str, Any]:
    number = exc.get("errno")
    limits = ctx.limits
    if number == errnos.ENOSPC:
        return {"tmp_bytes": limits.tmp_bytes}
    if number == errnos.EMFILE:
        return {"open_files_limit": limits.open_files}
    if number == errnos.EAGAIN or "can't start new thread" in (exc.get("message") or ""):
        return {"pids_limit": limits.pids}
    return {}


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


# ---------------------------------------------------------------- after validation

def from_validation(validation: Validation, facts: dict[str, Any] | None = None) -> Verdict:
    """The verdict of the predictions; `facts` (the harness's result frame) give predict.py's own line."""
    failed = validation.failed
    if failed is None:
        return Verdict(None, "The predictions pass numerai-predict's checks and numerai-tools' upload rules.")
    rule = OUTPUT_RULES[failed.rule]
    detail = failed.detail or rule.meaning
    examples = f" (e.g. {', '.join(failed.examples[:3])})" if failed.examples else ""
    return Verdict("invalid_output", f"{rule.meaning} {detail[:1].upper()}{detail[1:]}{examples}.".replace("..", "."),
                   subcode=failed.rule, evidence={"rule": failed.rule, "source": rule.source},
                   numerai_log=numerai_log.after_validation(failed.rule, facts or {}, failed.detail))
