"""Why the pickle did not load (pandas.read_pickle raised): its bytes, its Python, its libraries, its modules.

Judged on the root cause (pandas retries a failed load with its compatibility unpickler, whose own
error hides the real one), in order: out of memory; a message that alone says another Python wrote
it; bytes that are not a pickle; the network; imports; a library failing to rebuild its object; an
attribute a module lacks; code another Python compiled; else code inside the pickle raised.
"""

from __future__ import annotations

import re

from ..inspection.filetype import sniff
from ..sandbox.protocol import ExceptionFacts
from ..support.units import human_bytes
from .context import Context
from .exceptions import errno_evidence, errno_hint, network_verdict
from .mismatch import import_error, library_verdict, pick_image, version_verdict
from .reasons import Verdict
from .tracebacks import (first_line, in_unpickler, is_memory_error, is_network, library_in_frames, library_in_message,
                         module_in_message, mro_names, root_cause, trim)

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
# Exceptions an unpickler raises on bytes that are not a pickle.
PARSE_ERRORS = {"UnpicklingError", "EOFError", "ValueError", "KeyError", "IndexError", "error",
                "UnicodeDecodeError", "OverflowError"}


def classify_load_error(exc: ExceptionFacts, ctx: Context, evidence: dict) -> Verdict:
    """The verdict for an exception raised while the pickle was being loaded."""
    root = root_cause(exc)
    message, kind = root.said, root.type
    if root is not exc:
        evidence = evidence | {"exception": root.summary(), "pandas_retry": exc.summary()}
    if is_memory_error(root):
        return Verdict("out_of_memory", f"Loading the pickle ran out of memory ({first_line(message)}); the "
                       f"limit is {human_bytes(ctx.limits.memory_bytes)}.", phase="loading",
                       evidence=evidence | {"limit_bytes": ctx.limits.memory_bytes, "phase": "loading"})
    mismatch_text = next((text for text in MISMATCH_TEXTS if text in message), None)
    if mismatch_text is not None:
        made_by, differs = ctx.made_by()
        what = MISMATCH_TEXTS[mismatch_text].format(python=ctx.python)
        made = f" It was made by Python {made_by}. {pick_image(made_by)}" if differs else ""
        return Verdict("python_version_mismatch", f"The pickle {what}: {kind}: {first_line(message)}.{made}",
                       phase="loading", evidence=evidence | {"image_python": ctx.python, "pickle_python": made_by,
                                                             "mismatch_text": mismatch_text})
    if not_a_pickle(root, ctx):
        looks = sniff(ctx.model_path)
        return Verdict("invalid_pickle", f"{ctx.model_path.name} is not a loadable pickle: it {looks} "
                       f"({kind}: {first_line(message)}).", phase="loading",
                       evidence=evidence | {"file_looks_like": looks})
    if is_network(root):
        return network_verdict(root, "loading", evidence)
    if kind in ("ModuleNotFoundError", "ImportError"):
        return import_error(root, ctx, evidence)
    library = library_in_frames(root) or (library_in_message(message) if kind == "AttributeError" else None)
    if library:
        return library_verdict(library, root, ctx, evidence)
    if kind == "AttributeError" and module_in_message(message):
        return missing_attribute(root, evidence)
    made_by, differs = ctx.made_by()
    code_related = bool(VERSION_MISMATCH_TEXT.search(message)) or any(
        "cloudpickle/" in f.file for f in root.frames[-1:])
    if differs or code_related or (differs is None and kind in ("TypeError", "SystemError")):
        return version_verdict(ctx, made_by, f"{kind}: {first_line(message)}", evidence,
                               "cannot rebuild the pickle", "loading")
    return Verdict("model_exception", f"Code inside the pickle raised while it was being loaded: {kind}: "
                   f"{first_line(message)}.{errno_hint(root, ctx)}", phase="loading",
                   evidence=evidence | {"traceback": trim(root)} | errno_evidence(root, ctx))


def not_a_pickle(exc: ExceptionFacts, ctx: Context) -> bool:
    """The unpickler failed on the file's bytes themselves (not on what they asked it to import or call)."""
    if "pickle.UnpicklingError" in mro_names(exc) or exc.type == "EOFError":
        return True
    if not in_unpickler(exc) or exc.type not in PARSE_ERRORS:
        return False
    try:
        with open(ctx.model_path, "rb") as handle:
            return handle.read(1) != b"\x80"  # every pickle of protocol 2 or later starts so
    except OSError:
        return False


def missing_attribute(exc: ExceptionFacts, evidence: dict) -> Verdict:
    """The pickle names something a module of the image does not have (or __main__, Numerai's script)."""
    message = exc.said
    module = module_in_message(message) or "?"
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
