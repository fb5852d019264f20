"""The model's exceptions once it was called (and what a system error means in the sandbox).

In order: bytecode run by another Python means nothing it raised can be trusted; then running out of
memory, Numerai's call failing on the signature, the network the sandbox does not have, sys.exit,
imports, columns the live data lacks, a library failing on its own changed internals; anything else
is the model's own exception, its own frame named.
"""

from __future__ import annotations

import errno as errnos
import os
import re
from typing import Any

from ..inspection.columns import NUMERAI_BENCHMARK, NUMERAI_FEATURE, NUMERAI_TARGET
from ..sandbox.protocol import ExceptionFacts, ModelFacts
from ..support.units import human_bytes
from .context import Context
from .mismatch import import_error, library_verdict, version_verdict
from .reasons import Verdict
from .tracebacks import (LIBRARY_MODULES, first_line, is_harness, is_memory_error, is_network, library_in_frames,
                         library_of_frame, trim)

# Types whose missing attributes are the caller's mistake, not a library's changed internals.
PLAIN_TYPES = {"NoneType", "list", "dict", "str", "bytes", "int", "float", "bool", "tuple", "set", "DataFrame",
               "Series", "Index", "ndarray", "function", "module", "type"}


def classify_model_exception(exc: ExceptionFacts, ctx: Context, evidence: dict) -> Verdict:
    """The verdict for an exception the model's call raised."""
    kind, message, frames = exc.type, exc.said, exc.frames
    evidence = evidence | {"traceback": trim(exc)}
    made_by, differs = ctx.made_by()
    calling = kind == "TypeError" and frames and is_harness(frames[-1]) and "argument" in message
    if differs and not calling:  # bytecode run by the wrong interpreter: whatever it raised means nothing
        return version_verdict(ctx, made_by, f"{kind}: {first_line(message)}", evidence,
                               "cannot run the function's bytecode faithfully", "predicting")
    if is_memory_error(exc):
        return Verdict("out_of_memory", f"The model ran out of memory while predicting ({kind}: "
                       f"{first_line(message)}); the limit is {human_bytes(ctx.limits.memory_bytes)}.",
                       phase="predicting", evidence=evidence | {"limit_bytes": ctx.limits.memory_bytes,
                                                                "phase": "predicting"})
    if calling:
        hint = (" Numerai passes live_features (and live_benchmark_models) by position: parameters after `*` or "
                "only `**kwargs` cannot receive them." if "positional argument" in message else "")
        return Verdict("bad_signature", f"Numerai's call of the function failed: {first_line(message)}.{hint}",
                       phase="predicting", evidence=evidence)
    if kind == "SystemError":
        own_code = not frames or library_of_frame(frames[-1]) is None
        if differs is None and (own_code or "unknown opcode" in message):
            return version_verdict(ctx, made_by, f"{kind}: {first_line(message)}", evidence,
                                   "cannot run the function's bytecode", "predicting")
    if is_network(exc):
        return network_verdict(exc, "predicting", evidence)
    if kind == "SystemExit":
        code = "" if exc.code is None else exc.code
        return Verdict("model_exception", f"The model called sys.exit({code}) instead of "
                       "returning predictions.", phase="predicting", evidence=evidence)
    if kind in ("ModuleNotFoundError", "ImportError") and (exc.name or "No module named" in message):
        return import_error(exc, ctx, evidence, phase="predicting")
    columns = missing_columns(exc, ctx, evidence)
    if columns is not None:
        return columns
    library = library_in_frames(exc)
    if library and library_internals_changed(exc, ctx):
        return library_verdict(library, exc, ctx, evidence, phase="predicting",
                               doing="failed inside its own code on an object from the pickle")
    top = next(iter(trim(exc)), None)  # the model's own innermost frame (trim leaves the harness's out)
    at = f" at {top['function']} ({os.path.basename(top['file'])}:{top['line']})" if top else ""
    return Verdict("model_exception", f"The model raised {kind}: {first_line(message)}{at}."
                   f"{errno_hint(exc, ctx)}", phase="predicting", evidence=evidence | errno_evidence(exc, ctx))


def bad_signature(model: ModelFacts | None, exc: ExceptionFacts, phase: str | None, evidence: dict) -> Verdict:
    """The pickle holds something Numerai cannot call with 1 or 2 arguments (`model`: what it is)."""
    evidence = evidence | {"model": model.to_dict() if model is not None else {}}
    model = model or ModelFacts()
    params = model.parameters
    kind, type_name = model.kind or "object", model.type or "?"
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
        names = ", ".join(str(p.name) for p in params) or "no parameters"
        detail = f"{described} with {len(params)} parameter(s) ({names})"
    else:
        detail = f"{described} whose parameters cannot be read ({first_line(exc.message)})"
    return Verdict("bad_signature", f"The pickle holds {detail}; Numerai calls it with 1 or 2 arguments.",
                   phase=phase, evidence=evidence)


def network_verdict(exc: ExceptionFacts, phase: str, evidence: dict) -> Verdict:
    """The model reached for the network, which the sandbox (like Numerai) does not have."""
    when = " while the pickle was being loaded" if phase == "loading" else ""
    return Verdict("model_exception", f"The model tried to use the network{when} ({exc.type}: "
                   f"{first_line(exc.message)}); the sandbox, like Numerai, has no network: ship "
                   "everything inside the pickle.", phase=phase,
                   evidence=evidence | {"network": True, "traceback": trim(exc)},
                   advice="Ship everything the model needs (data, files, weights) inside the pickle: the sandbox, "
                          "like Numerai, has no network.")


# ---------------------------------------------------------------- columns the live data lacks

def numerai_shaped(name: str) -> bool:
    return bool(NUMERAI_FEATURE.fullmatch(name) or NUMERAI_TARGET.fullmatch(name)
                or NUMERAI_BENCHMARK.fullmatch(name))


def asked_columns(exc: ExceptionFacts) -> list[str] | None:
    """The column names a failed lookup asked for, as pandas, scikit-learn and XGBoost word it."""
    kind, message = exc.type, exc.said
    files = [f.file for f in exc.frames]
    if kind == "KeyError" and files and "/pandas/" in files[-1]:
        # "['a', 'b'] not in index", "None of [Index(['a'], dtype='object')] are in the [columns]", or 'a'
        return re.findall(r"'([^'\\]+)'", re.sub(r"dtype='[^']*'", "", message))
    if kind == "ValueError" and "yet now missing:" in message:  # scikit-learn's feature-name check
        return re.findall(r"^- (\S+)$", message.split("yet now missing:", 1)[1], re.M)
    if kind == "ValueError" and "feature_names mismatch" in message:  # XGBoost
        expected = re.search(r"expected (.+?) in input data", message)
        return [n.strip() for n in expected.group(1).split(",")] if expected else None
    if files and any("-packages/" in f for f in files[-1:]):  # another library naming Numerai-shaped columns
        return [n for n in re.findall(r"[A-Za-z0-9_]+", message) if numerai_shaped(n)] or None
    return None


def missing_columns(exc: ExceptionFacts, ctx: Context, evidence: dict) -> Verdict | None:
    """A lookup of columns the live data lacks: the data's fault (Error) only when synthetic data could
    not know a Numerai-shaped name; otherwise the model asks for what Numerai's data does not have."""
    data = ctx.data
    asked = asked_columns(exc)
    if data is None or not asked:
        return None
    have = data.columns | data.benchmark_columns
    missing = list(dict.fromkeys(n for n in asked if n not in have))
    if not missing:
        return None
    in_frame = any(p in f.file for f in exc.frames for p in ("pandas/core/frame.py", "pandas/core/indexing.py"))
    shaped = [n for n in missing if numerai_shaped(n)]
    if not shaped and not in_frame and exc.type == "KeyError":
        return None  # a lookup in the model's own Series or mapping, not in the live data
    names = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    evidence = evidence | {"missing_columns": missing, "data": data.description, "data_source": data.source,
                           "names_checked": data.names_checked}
    if data.source == "synthetic" and not data.names_checked and shaped:
        return Verdict("unverifiable_columns", f"The model asks for {len(missing)} column(s) the synthetic live "
                       f"data does not have: {names}. They look like Numerai's, but the pickle does not name "
                       "them (built at run time?), so synthetic data could not carry them, and only Numerai's "
                       "real data can tell whether they exist.", phase="predicting", evidence=evidence)
    odd = [n for n in missing if not numerai_shaped(n)]
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


def library_internals_changed(exc: ExceptionFacts, ctx: Context) -> bool:
    """A library failed on its own object: an attribute its code expects is missing from an object of
    its own (e.g. scikit-learn 1.3's trees lack `monotonic_cst`, read by 1.4+), or the pickle records
    another version of a library than the image has."""
    kind = exc.type
    if kind not in ("AttributeError", "TypeError", "KeyError", "ValueError", "IndexError"):
        return False
    if ctx.library_differences():
        return True
    if kind != "AttributeError":
        return False
    owner = exc.obj_type
    if owner:
        return owner.split(".")[0] in LIBRARY_MODULES - {"numpy", "pandas"}
    match = re.match(r"'([A-Za-z_][A-Za-z0-9_]*)' object has no attribute", exc.said)
    return bool(match) and match.group(1) not in PLAIN_TYPES


# ---------------------------------------------------------------- what a system error means in the sandbox

def errno_hint(exc: ExceptionFacts, ctx: Context) -> str:
    """What a system error means inside the sandbox."""
    number = exc.errno
    message = exc.said
    limits = ctx.limits
    if number == errnos.ENOSPC:
        return (f" Only /tmp is writable in the sandbox, and it holds at most {human_bytes(limits.tmp_bytes)} "
                "(in memory, counted against the memory limit).")
    if number in (errnos.EROFS, errnos.EACCES, errnos.EPERM) and exc.type != "ConnectionRefusedError":
        return (" The sandbox runs the model as an unprivileged user on a read-only file system: "
                "only /tmp is writable.")
    if number == errnos.EMFILE:
        return f" The sandbox allows {limits.open_files} open files."
    if number == errnos.EAGAIN and exc.type == "BlockingIOError" or "can't start new thread" in message:
        return (f" The sandbox allows {limits.pids} processes and threads in all; the model reached that "
                "limit.")
    filename = str(exc.filename if exc.filename is not None else "")
    if number == errnos.ENOENT and filename.startswith("/") \
            and not filename.startswith(("/input/", "/opt/", "/usr/", "/proc/", "/sys/", "/dev/")):
        return (" Files from your machine are not in the sandbox: it holds the pickle, the live data and an "
                "empty /tmp only; ship what the model needs inside the pickle.")
    return ""


def errno_evidence(exc: ExceptionFacts, ctx: Context) -> dict[str, Any]:
    number = exc.errno
    limits = ctx.limits
    if number == errnos.ENOSPC:
        return {"tmp_bytes": limits.tmp_bytes}
    if number == errnos.EMFILE:
        return {"open_files_limit": limits.open_files}
    if number == errnos.EAGAIN or "can't start new thread" in exc.said:
        return {"pids_limit": limits.pids}
    return {}
