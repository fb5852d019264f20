"""What the opcode walk tells about a pickle, gathered once: the code objects it rebuilds, the state
cloudpickle gives its functions and classes, the modules it names, the library model formats in its
payloads, the library versions written into its objects' state.

Everything else in the inspection (the Python, the callable, the fit to each image, the risks) reads
these facts; nothing here judges them.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from typing import Any

from ..images import numerai
from .pickle_ops import Call, Global, Walk
from .pyversions import CodeFinding, examine_code_args, imported_modules
from .report import PythonVersion
from .rules import (Rule, cloudpickle_releases, cloudpickle_rule, lightgbm_rule, numpy_rule, short_name,
                    sklearn_rule, xgboost_rule)
from .version_tables import STDLIB_ANY

# cloudpickle's (and dill's) helpers, by the name they are pickled under (module part ignored).
FUNCTION_MAKERS = {"_make_function", "_make_skel_func", "_create_function"}
CLASS_MAKERS = {"_make_skeleton_class", "_make_skeleton_enum", "_create_type"}
SETTERS = {"_function_setstate", "_class_setstate", "_fill_function", "_rehydrate_skeleton_class"}
BUILTIN_TYPE_LOOKUPS = {"_builtin_type", "_load_type"}
SUBIMPORTS = {"subimport", "dynamic_subimport", "_import_module"}


# ---------------------------------------------------------------- payload signatures

XGB_UBJSON_VERSION = re.compile(rb"\x07version\[(?:\#[iUIlL])?.{0,8}?([iU])(.)([iU])(.)([iU])(.)", re.DOTALL)
XGB_JSON_VERSION = re.compile(rb'"version"\s*:\s*\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]')
LGBM_FORMAT = re.compile(rb"^tree\nversion=(v\d+)\n")


@dataclass
class PayloadSniffer:
    """Library model formats recognised in string/bytes payloads as the walker passes them (its `feed` is
    the walker's payload hook)."""

    xgboost: list[str] = field(default_factory=list)
    lightgbm_formats: list[str] = field(default_factory=list)

    def feed(self, kind: str, head: bytes, tail: bytes, length: int) -> None:
        if kind == "str":
            match = LGBM_FORMAT.match(head)
            if match:
                self.lightgbm_formats.append(match.group(1).decode())
            return
        if head[:2] == b"{L" or head[:2] == b"{i" or head[:2] == b"{U" or head[:1] == b"{":
            for part in (tail, head) if tail else (head,):
                version = xgboost_version(part)
                if version:
                    self.xgboost.append(version)
                    return


def xgboost_version(data: bytes) -> str | None:
    """The version array of a saved XGBoost model (UBJSON or JSON), as "major.minor.patch"."""
    matches = list(XGB_UBJSON_VERSION.finditer(data))
    if matches:
        m = matches[-1]
        numbers = [int.from_bytes(m.group(i), "big", signed=m.group(i - 1) == b"i") for i in (2, 4, 6)]
        return ".".join(map(str, numbers))
    matches = list(XGB_JSON_VERSION.finditer(data))
    if matches:
        return ".".join(matches[-1].groups()[i].decode() for i in range(3))
    return None


# ---------------------------------------------------------------- names of symbolic values

def name_of(value: Any, depth: int = 0) -> str | None:
    """The dotted name a symbolic value stands for: a global, cloudpickle's _builtin_type('CodeType')
    (types.CodeType), subimport('pandas') (pandas), getattr(x, 'y') (x.y)."""
    if depth > 8:
        return None
    if isinstance(value, Global):
        return value.dotted
    if isinstance(value, Call) and isinstance(value.args, tuple):
        func = name_of(value.func, depth + 1)
        if func is None:
            return None
        short = func.rsplit(".", 1)[-1]
        if short in BUILTIN_TYPE_LOOKUPS and value.args and isinstance(value.args[0], str):
            return "types." + value.args[0]
        if short in SUBIMPORTS and value.args and isinstance(value.args[0], str):
            return value.args[0]
        if func in ("builtins.getattr", "__builtin__.getattr") and len(value.args) == 2 \
                and isinstance(value.args[1], str):
            base = name_of(value.args[0], depth + 1)
            return f"{base}.{value.args[1]}" if base else None
    return None


def is_cloudpickle_helper(name: str | None, helpers: set[str]) -> bool:
    return bool(name) and short_name(name) in helpers and name.split(".", 1)[0] in ("cloudpickle", "dill")


def key_of(mapping: Any, key: str) -> Any:
    """`mapping[key]` when `mapping` is a dict that has it, else None (a state may be anything)."""
    return mapping.get(key) if isinstance(mapping, dict) else None


def is_stdlib(package: str) -> bool:
    return (package in STDLIB_ANY or package in sys.builtin_module_names
            or package in ("builtins", "__builtin__", "copy_reg", "exceptions"))


# ---------------------------------------------------------------- the facts

@dataclass
class PickleFacts:
    """What the walk saw, indexed for the questions the inspection asks (Calls are keyed by identity)."""

    walk: Walk
    sniffer: PayloadSniffer
    code_findings: dict[int, CodeFinding]  # id(code Call) -> finding
    other_code_layouts: list[int]  # argument counts of code constructors this inspector cannot read
    function_state: dict[int, Any]  # id(function Call) -> cloudpickle slotstate dict
    class_state: dict[int, Any]  # id(class Call) -> class dict
    modules_named: dict[str, set[str]]  # top-level package -> the names the pickle uses in it

    def code_arguments(self) -> list[int]:
        """The argument counts the pickle calls the code constructor with (what decides loading)."""
        return sorted({f.n_args for f in self.code_findings.values()} | set(self.other_code_layouts))

    def function_parts(self, fn: Call) -> tuple[CodeFinding | None, Any]:
        """A function's code (as read) and its cloudpickle state."""
        code = fn.args[0] if isinstance(fn.args, tuple) and fn.args else None
        finding = self.code_findings.get(id(code)) if isinstance(code, Call) else None
        return finding, self.function_state.get(id(fn))


def is_function(value: Any) -> bool:
    return isinstance(value, Call) and (is_cloudpickle_helper(name_of(value.func), FUNCTION_MAKERS)
                                        or name_of(value.func) == "types.FunctionType")


def is_class(value: Any) -> bool:
    return isinstance(value, Call) and is_cloudpickle_helper(name_of(value.func), CLASS_MAKERS)


def add_use(modules: dict[str, set[str]], module: str, name: str) -> None:
    """Record that the pickle uses `name` from `module`, under its top-level package."""
    top = module.split(".", 1)[0]
    if not is_stdlib(top) and top != "__main__":
        top = numerai.import_root(module)
    modules.setdefault(top, set()).add(name)


def read_facts(walk: Walk, sniffer: PayloadSniffer) -> PickleFacts:
    """One pass over the calls the walk recorded, then the globals it named."""
    facts = PickleFacts(walk, sniffer, {}, [], {}, {}, {})
    for call in walk.calls:
        func = name_of(call.func)
        if func in ("types.CodeType", "code.CodeType"):
            finding = examine_code_args(call.args)
            if finding is not None:
                facts.code_findings[id(call)] = finding
            elif isinstance(call.args, tuple):
                facts.other_code_layouts.append(len(call.args))
        elif is_cloudpickle_helper(func, SETTERS) and isinstance(call.args, tuple) and len(call.args) >= 2:
            target, state = call.args[0], call.args[1]
            if short_name(func) == "_function_setstate":
                facts.function_state[id(target)] = state[1] if isinstance(state, tuple) and len(state) == 2 \
                    else state
            elif short_name(func) in ("_class_setstate", "_rehydrate_skeleton_class"):
                facts.class_state[id(target)] = state[0] if isinstance(state, tuple) and state else state
            elif short_name(func) == "_fill_function":  # cloudpickle < 1.5: (func, globals, defaults, dict, ...)
                state = call.args[1] if len(call.args) == 2 else None
                if isinstance(state, dict):
                    facts.function_state[id(target)] = state
        elif func and short_name(func) in SUBIMPORTS and func.startswith(("cloudpickle", "dill")):
            if call.args and isinstance(call.args[0], str):
                add_use(facts.modules_named, call.args[0], f"{call.args[0]} (module)")
    for (module, attr), _count in walk.globals.items():
        add_use(facts.modules_named, module, f"{module}.{attr}")
    return facts


def modules_needed(facts: PickleFacts, python: PythonVersion) -> dict[str, set[str]]:
    """The modules the pickle names, and those its code imports when it runs (needed in the image as much)."""
    needed = {package: set(names) for package, names in facts.modules_named.items()}
    version = python.version or (python.candidates[0] if facts.code_findings and python.candidates else None)
    if version is None:
        return needed
    for finding in facts.code_findings.values():
        for module in imported_modules(finding, version):
            add_use(needed, module, f"{module} (imported by {finding.name or 'its code'} when called)")
    return needed


# ---------------------------------------------------------------- library versions written in the pickle

@dataclass
class LibraryRecord:
    """A library version the pickle carries (or its names imply), and the rule that compares it with a pin."""

    library: str
    version: str
    where: str  # what recorded it
    inferred: bool  # True: deduced from names, not written by the library
    rule: Rule


def library_records(facts: PickleFacts) -> list[LibraryRecord]:
    walk = facts.walk
    out: list[LibraryRecord] = []
    sklearn: dict[str, list[str]] = {}
    for call in walk.calls:
        for state in call.states:
            version = key_of(state, "_sklearn_version")
            if version is None and isinstance(state, tuple) and state:
                version = key_of(state[0], "_sklearn_version")
            if isinstance(version, str):
                sklearn.setdefault(version, []).append(short_name(name_of(call.func)) or "an object")
    has_tree = any(m == "sklearn.tree._tree" for m, _ in walk.globals)
    for version, objects in sorted(sklearn.items()):
        where = "_sklearn_version in the state of " + ", ".join(sorted(set(objects))[:5])
        out.append(LibraryRecord("scikit-learn", version, where, False, sklearn_rule(has_tree)))
    for version in sorted(set(facts.sniffer.xgboost)):
        out.append(LibraryRecord("xgboost", version, "the version array of a saved XGBoost model", False,
                                 xgboost_rule))
    for fmt in sorted(set(facts.sniffer.lightgbm_formats)):
        out.append(LibraryRecord("lightgbm", f"model format {fmt}",
                                 "the 'version=' line of a LightGBM model string (the format, not the "
                                 "release: v4 is written by LightGBM 4.x, v3 by 3.x)", False,
                                 lambda _recorded, pin, fmt=fmt: lightgbm_rule(fmt, pin)))
    modules = {m for m, _ in walk.globals}
    if any(m == "numpy._core" or m.startswith("numpy._core.") for m in modules):
        out.append(LibraryRecord("numpy", ">=2.0", "names numpy._core (NumPy 2 renamed numpy.core)", True,
                                 numpy_rule))
    elif any(m == "numpy.core" or m.startswith("numpy.core.") for m in modules):
        out.append(LibraryRecord("numpy", "<2.0", "names numpy.core (NumPy 1.x's module name)", True, numpy_rule))
    cloud = sorted(f"{m}.{a}" for m, a in walk.globals if m.split(".", 1)[0] == "cloudpickle")
    if cloud:
        releases = cloudpickle_releases(cloud) or []
        label = ("3.x" if any(short_name(n) in ("_function_setstate", "_class_setstate")
                              and n.startswith("cloudpickle.cloudpickle.") for n in cloud)
                 else "<3.0" if any(n.startswith("cloudpickle.cloudpickle_fast.") for n in cloud) else "any")
        out.append(LibraryRecord("cloudpickle", label, "the names of the cloudpickle helpers it calls", True,
                                 cloudpickle_rule(cloud, releases)))
    return out
