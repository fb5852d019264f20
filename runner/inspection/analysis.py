"""Know a pickle before running it: what made it, what it needs, what it is — without unpickling.

`inspect_pickle` walks the opcode stream (runner.pickle_ops: nothing is imported,
called or unpickled on the host) and reads from it:
- which Python made it, from the code objects cloudpickle rebuilds (runner.pyversions),
  or "unknown" with the reasons when the pickle holds no code;
- every module and global it names, and whether each image has them;
- library versions the libraries wrote into their own state (scikit-learn's
  `_sklearn_version`, XGBoost's model version, LightGBM's model format) against the
  images' pins, and the cloudpickle helpers it needs against the images' cloudpickle;
- the callable Numerai would call: kind, name, parameters;
- references that could do harm while loading or calling (warnings, not verdicts).

`choose_python` / `compatible_pythons` turn that into the image to run (`--python auto`)
or an early python_version_mismatch. Nothing here ever raises for a bad file: problems
are reported in `Inspection.problems`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..support.paths import file_sha256
from ..support.units import human_bytes
from .columns import ColumnNames, scan_columns
from .pickle_ops import Blob, Call, Global, Limits, Opaque, SDict, SList, Walk, describe, walk_file
from ..images import numerai
from ..images.pins import (DEFAULT_PYTHON, EXPERIMENTAL_PYTHONS, PinError, SUPPORTED_PYTHONS, installed_distribution,
                           normalize, numerai_pins, pin_set, standard_pins)
from .pyversions import (KNOWN_PYTHONS, CodeFinding, VersionVerdict, code_arity, examine_code_args, foreign_code,
                         imported_modules, judge, span, version_key)
from .version_tables import CLOUDPICKLE_NAMES, PICKLE_PROTOCOLS, STDLIB_ANY, STDLIB_MISSING

# standard: our standard image; full: Numerai's image (its complete pin list); auto: what `run` builds
PROFILES_REPORTED = ("standard", "full", "auto")
STATUS_MARKS = {"same": "=", "ok": "✓", "differs": "≠", "breaks": "✗", "missing": "-", "unknown": "?"}

# cloudpickle's (and dill's) helpers, by the name they are pickled under (module part ignored).
FUNCTION_MAKERS = {"_make_function", "_make_skel_func", "_create_function"}
CLASS_MAKERS = {"_make_skeleton_class", "_make_skeleton_enum", "_create_type"}
SETTERS = {"_function_setstate", "_class_setstate", "_fill_function", "_rehydrate_skeleton_class"}
BUILTIN_TYPE_LOOKUPS = {"_builtin_type", "_load_type"}
SUBIMPORTS = {"subimport", "dynamic_subimport", "_import_module"}
NEW_OBJECT = {"copyreg.__newobj__", "copyreg.__newobj_ex__", "copy_reg.__newobj__"}
RECONSTRUCTOR = {"copyreg._reconstructor", "copy_reg._reconstructor"}
NOT_CALLABLE_LIBRARIES = ("sklearn.", "lightgbm.", "xgboost.", "catboost.", "pandas.", "numpy.", "scipy.",
                          "builtins.", "collections.", "torch.", "polars.", "pyarrow.")

# What a reference would do. Exact dotted names first, then prefixes.
RISKY_NAMES = {
    "os.system": "runs a shell command", "posix.system": "runs a shell command",
    "nt.system": "runs a shell command", "os.popen": "runs a shell command",
    "builtins.eval": "evaluates Python source", "builtins.exec": "executes Python source",
    "builtins.compile": "compiles Python source", "builtins.__import__": "imports any module by name",
    "__builtin__.eval": "evaluates Python source", "__builtin__.__import__": "imports any module by name",
    "builtins.open": "opens (and may create or truncate) a file", "io.open": "opens (and may create) a file",
    "_io.open": "opens (and may create) a file", "codecs.open": "opens (and may create) a file",
    "os.open": "opens (and may create) a file", "posix.open": "opens (and may create) a file",
    "io.FileIO": "opens (and may create) a file", "_io.FileIO": "opens (and may create) a file",
    "pathlib.Path.write_text": "writes a file", "pathlib.Path.write_bytes": "writes a file",
    "builtins.setattr": "changes attributes of anything it can reach",
    "builtins.delattr": "deletes attributes of anything it can reach",
    "builtins.breakpoint": "starts a debugger", "builtins.input": "waits for input",
    "importlib.import_module": "imports any module by name", "importlib.__import__": "imports any module by name",
    "pickle.loads": "unpickles nested data", "pickle.load": "unpickles nested data",
    "_pickle.loads": "unpickles nested data", "marshal.loads": "loads raw code objects",
    "shutil.rmtree": "deletes a directory tree", "shutil.move": "moves files", "shutil.copyfile": "writes files",
    "os.remove": "deletes a file", "os.unlink": "deletes a file", "posix.remove": "deletes a file",
    "posix.unlink": "deletes a file", "os.rmdir": "deletes a directory", "os.rename": "renames files",
    "os.kill": "sends signals to processes", "os.fork": "forks the process", "os.putenv": "changes the environment",
    "os.chmod": "changes file permissions", "os.makedirs": "creates directories", "os.mkdir": "creates a directory",
    "code.interact": "starts an interactive interpreter", "pty.spawn": "starts a process",
    "webbrowser.open": "opens a browser", "sys.exit": "exits the process",
}
RISKY_PREFIXES = {
    "subprocess.": "starts processes", "os.exec": "replaces the process", "os.spawn": "starts processes",
    "posix.exec": "replaces the process", "posix.spawn": "starts processes", "nt.spawn": "starts processes",
    "socket.": "opens network connections", "_socket.": "opens network connections", "ssl.": "network (TLS)",
    "urllib.request.": "downloads", "http.client.": "network connections", "requests.": "network requests",
    "ftplib.": "network (FTP)", "smtplib.": "sends mail", "telnetlib.": "network (telnet)",
    "ctypes.": "calls native code directly", "_ctypes.": "calls native code directly", "cffi.": "calls native code",
    "runpy.": "runs other Python code", "multiprocessing.": "starts processes",
    "asyncio.subprocess.": "starts processes",
}
RISKY_MODULES = {"subprocess", "socket", "ctypes", "shutil", "urllib.request", "requests", "http.client",
                 "multiprocessing", "pty", "ftplib", "smtplib"}
RISKY_CODE_NAMES = {"system": "os.system", "popen": "os.popen", "Popen": "subprocess.Popen",
                    "check_output": "subprocess.check_output", "check_call": "subprocess.check_call",
                    "eval": "eval", "exec": "exec", "__import__": "__import__", "urlopen": "urllib urlopen",
                    "rmtree": "shutil.rmtree", "create_connection": "socket.create_connection"}


# ---------------------------------------------------------------- the report's parts

@dataclass
class PythonVersion:
    """Which Python made the pickle: `version` when certain, else the `candidates` the evidence allows."""

    version: str | None
    candidates: list[str]
    evidence: list[str]
    reasons_unknown: list[str]


@dataclass
class ModuleUse:
    """One top-level package the pickle needs, the names it uses in it, and which images have it."""

    package: str  # the top-level name, or inside a namespace package the package one wheel ships (google.protobuf)
    kind: str  # "stdlib", "third-party", "main" (the pickling script itself)
    names: list[str]
    images: dict[str, dict[str, dict[str, Any]]]  # python -> profile -> {present, distribution, version, note}


@dataclass
class RecordedVersion:
    """A library version written inside the pickle, compared with each image's pin."""

    library: str
    version: str
    where: str  # what recorded it
    inferred: bool  # True: deduced from names, not written by the library
    images: dict[str, dict[str, Any]]  # python -> {pin, status: same|ok|differs|breaks|missing|unknown, note}


@dataclass
class CallableInfo:
    kind: str  # function, lambda, method, callable instance, class, partial, not callable, unknown
    name: str | None = None
    qualname: str | None = None
    params: list[str] | None = None
    n_params: int | None = None  # as inspect.signature(model).parameters counts them: 1 or 2 are valid
    notes: list[str] = field(default_factory=list)


@dataclass
class Risk:
    reference: str
    when: str  # "load" (runs while unpickling) or "call" (in the function's code)
    why: str


# Whether an image can load the pickle's code (ImageFit.load): the words `inspect` shows.
LOADS = "loads"
CANNOT_LOAD = "cannot load"
MAY_RUN = "made by another Python — may run"


@dataclass
class ImageFit:
    """Whether Numerai's image for one Python (as the auto profile builds it) can load the pickle, as far
    as static evidence tells. Only `load == CANNOT_LOAD` is certain (a run may end on it before any
    container); everything else is for the container to decide."""

    python: str
    load: str  # LOADS, CANNOT_LOAD or MAY_RUN
    why: str  # the evidence for `load`, in words
    blockers: list[str]  # modules or library versions the image lacks: loading will likely fail
    warnings: list[str]
    code: str = ""  # for MAY_RUN: what its bytecode would do there (the part of `why` after who made it)

    @property
    def loadable(self) -> bool:
        return self.load != CANNOT_LOAD


@dataclass
class Inspection:
    path: str
    size_bytes: int
    sha256: str | None
    protocol: int | None
    serializer: str
    serializer_evidence: list[str]
    python: PythonVersion
    modules: list[ModuleUse]
    recorded_versions: list[RecordedVersion]
    callable: CallableInfo
    risky: list[Risk]
    problems: list[str]
    images: dict[str, ImageFit]
    stats: dict[str, Any]
    columns: ColumnNames = field(default_factory=ColumnNames)  # live-data columns it names

    @property
    def is_pickle(self) -> bool:
        return self.stats.get("complete", False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, with stable keys."""
        return asdict(self)


# ---------------------------------------------------------------- entry points

def inspect_pickle(path: Path, *, full_pins: Mapping[str, Mapping[str, str]] | None = None,
                   limits: Limits | None = None) -> Inspection:
    """Inspect the pickle at `path` without running any of it. Never raises for a bad file.

    `full_pins` ({python: {distribution: version}}) stands in for Numerai's vendored pin lists
    (images/py3.X/numerai.txt), which answer for the full profile otherwise.
    """
    path = Path(path)
    sniffer = _PayloadSniffer()
    walk = walk_file(path, limits, sniffer.feed)
    try:
        inspection = _Analysis(path, walk, sniffer, full_pins).run()
    except Exception as exc:  # noqa: BLE001 - a strange pickle must give a report, never a traceback
        inspection = _unanalysed(path, walk, exc)
    if walk.opcodes:
        inspection.columns = scan_columns(path)
    return inspection


def _unanalysed(path: Path, walk: Walk, exc: Exception) -> Inspection:
    """The report when the analysis itself failed on a strange stream: what the walk saw, and that."""
    problems = list(walk.problems) + [f"the inspector could not analyse this stream ({type(exc).__name__}: "
                                      f"{exc}); the report is incomplete"]
    return Inspection(path=str(path), size_bytes=walk.size, sha256=_sha256(path), protocol=walk.protocol,
                      serializer="unknown", serializer_evidence=[],
                      python=PythonVersion(None, [], [], ["the analysis failed"]), modules=[],
                      recorded_versions=[], callable=CallableInfo("unknown"), risky=[], problems=problems,
                      images={}, stats={"complete": walk.complete, "opcodes": walk.opcodes})


def code_candidates(inspection: Inspection) -> list[str] | None:
    """The Pythons the pickle's code allows, or None when it holds no code to judge by."""
    candidates = inspection.python.candidates
    if inspection.python.version is None and set(candidates) >= set(KNOWN_PYTHONS):
        return None
    return list(candidates)


def recorded_releases(inspection: Inspection) -> dict[str, str]:
    """{distribution: release} written by the libraries themselves (a LightGBM format vN reads as N.x)."""
    out = {}
    for recorded in inspection.recorded_versions:
        if recorded.inferred:
            continue
        version = recorded.version
        match = re.fullmatch(r"model format v(\d+)", version)
        out[recorded.library] = f"{match.group(1)}.x" if match else version
    return out


def numerai_additions(inspection: Inspection, python: str) -> dict[str, str]:
    """{distribution: module} that the auto profile adds for this pickle in Python `python`'s image: the
    modules it needs that Numerai's image has and the standard profile lacks."""
    out: dict[str, str] = {}
    for use in inspection.modules:
        cell = use.images.get(python, {})
        if use.kind == "third-party" and cell.get("standard", {}).get("present") is False \
                and cell.get("full", {}).get("present"):
            out.setdefault(cell["full"]["distribution"], use.package)
    return out


def compatible_pythons(inspection: Inspection, supported: tuple[str, ...] = SUPPORTED_PYTHONS) -> list[str]:
    """The image Pythons that can load the pickle's code: all but those where loading certainly fails."""
    return [p for p in supported if _loadable(inspection, p)]


def _loadable(inspection: Inspection, python: str) -> bool:
    fit = inspection.images.get(python)
    return fit.loadable if fit is not None else True


def made_by_words(py: PythonVersion) -> str:
    """'3.12', '3.8 or 3.9', 'a Python newer than 3.14 (or damaged code)': who made the pickle's code."""
    if py.version or py.candidates:
        return py.version or span(py.candidates)
    return f"a Python this table does not know (newer than {KNOWN_PYTHONS[-1]}, or damaged code)"


@dataclass
class Choice:
    python: str | None  # None: no supported image can load this pickle's code
    reason: str
    detected: bool  # True: from the pickle's own evidence; False: a fallback (say so in the report)
    warnings: list[str] = field(default_factory=list)  # what else stands in the chosen image's way
    substitute: bool = False  # Numerai has no image for the Python that made it: the nearest that loads it


def choose_python(inspection: Inspection, supported: tuple[str, ...] = SUPPORTED_PYTHONS,
                  default: str = DEFAULT_PYTHON) -> Choice:
    """The image Python for `run --python auto`, and why."""
    choice = _choose(inspection, supported, default)
    fit = inspection.images.get(choice.python or "")
    if fit is not None:
        choice.warnings = list(fit.blockers)
    return choice


def _choose(inspection: Inspection, supported: tuple[str, ...], default: str) -> Choice:
    py = inspection.python
    if py.version in supported:
        decisive = next((e for e in py.evidence if e.endswith(f"Python {py.version} only")), py.evidence[0])
        return Choice(py.version, f"the pickle was made by Python {py.version} ({decisive})", True)
    has_code = bool(inspection.stats.get("code_arguments"))
    made_here = [p for p in supported if p in py.candidates and _loadable(inspection, p)] if has_code else []
    if made_here:
        # An experimental image only for a pickle that only it can load (then py.version names it above).
        pool = [p for p in made_here if p not in EXPERIMENTAL_PYTHONS] or made_here
        pick = default if default in pool else min(
            pool, key=lambda p: (len(inspection.images[p].blockers) if p in inspection.images else 0,
                                 -version_key(p)[1]))
        return Choice(pick, f"the pickle's code loads under Python {span(made_here)} and nothing in it tells "
                            f"which made it; using {pick}", True)
    if has_code:
        made = made_by_words(py)
        loadable = compatible_pythons(inspection, supported)
        if not loadable:
            why = inspection.images[supported[0]].why if supported[0] in inspection.images else ""
            return Choice(None, f"the pickle was made by Python {made}; the images are Python "
                                f"{span(list(supported))}: none can load its code ({why})", True)
        pick = _nearest(loadable, py.candidates)
        fit = inspection.images[pick]
        return Choice(pick, f"the pickle was made by Python {made}, which Numerai has no image for; Python {pick} "
                            f"is the nearest image that can load it ({fit.code or fit.why})", True,
                      substitute=True)
    why = "; ".join(py.reasons_unknown) or "no version evidence"
    return Choice(default, f"the Python that made the pickle is unknown ({why}): falling back to Numerai's "
                           f"default, Python {default}", False)


def _nearest(loadable: list[str], made_by: list[str]) -> str:
    """The image Python closest to the one that made the code (none known: a newer one than any image)."""
    targets = [version_key(v)[1] for v in made_by] or [version_key(KNOWN_PYTHONS[-1])[1] + 1]
    return min(loadable, key=lambda p: (min(abs(version_key(p)[1] - t) for t in targets), -version_key(p)[1]))


def mismatch_message(inspection: Inspection, python: str) -> str | None:
    """Why `python`'s image certainly cannot load the pickle (an early python_version_mismatch), or None
    when it may: then the run decides."""
    if _loadable(inspection, python):
        return None
    allowed = compatible_pythons(inspection)
    hint = f"use --python {allowed[0]}" if allowed else "re-pickle it with the Python of a Numerai image"
    return (f"the pickle's code was made by Python {made_by_words(inspection.python)} and cannot load under "
            f"Python {python}: {inspection.images[python].why}; {hint}, or --force to run it anyway")


def static_note(inspection: Inspection, python: str) -> str | None:
    """What static inspection says about running the pickle in `python`'s image when it may run there but
    was made by another Python: a note for the report, never a verdict."""
    fit = inspection.images.get(python)
    if fit is None or fit.load != MAY_RUN:
        return None
    return f"{fit.why}; the run in the Python {python} image decides"


# ---------------------------------------------------------------- payload signatures

_XGB_UBJSON_VERSION = re.compile(rb"\x07version\[(?:\#[iUIlL])?.{0,8}?([iU])(.)([iU])(.)([iU])(.)", re.DOTALL)
_XGB_JSON_VERSION = re.compile(rb'"version"\s*:\s*\[\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]')
_LGBM_FORMAT = re.compile(rb"^tree\nversion=(v\d+)\n")


class _PayloadSniffer:
    """Library model formats recognised in string/bytes payloads as the walker passes them."""

    def __init__(self):
        self.xgboost: list[str] = []
        self.lightgbm_formats: list[str] = []

    def feed(self, kind: str, head: bytes, tail: bytes, length: int) -> None:
        if kind == "str":
            match = _LGBM_FORMAT.match(head)
            if match:
                self.lightgbm_formats.append(match.group(1).decode())
            return
        if head[:2] == b"{L" or head[:2] == b"{i" or head[:2] == b"{U" or head[:1] == b"{":
            for part in (tail, head) if tail else (head,):
                version = self._xgboost_version(part)
                if version:
                    self.xgboost.append(version)
                    return

    @staticmethod
    def _xgboost_version(data: bytes) -> str | None:
        matches = list(_XGB_UBJSON_VERSION.finditer(data))
        if matches:
            m = matches[-1]
            numbers = [int.from_bytes(m.group(i), "big", signed=m.group(i - 1) == b"i") for i in (2, 4, 6)]
            return ".".join(map(str, numbers))
        matches = list(_XGB_JSON_VERSION.finditer(data))
        if matches:
            return ".".join(matches[-1].groups()[i].decode() for i in range(3))
        return None


# ---------------------------------------------------------------- analysis

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


def _short(name: str | None) -> str:
    return (name or "").rsplit(".", 1)[-1]


def _is_cloudpickle_helper(name: str | None, helpers: set[str]) -> bool:
    return bool(name) and _short(name) in helpers and name.split(".", 1)[0] in ("cloudpickle", "dill")


def _get(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


class _Analysis:
    def __init__(self, path: Path, walk: Walk, sniffer: _PayloadSniffer,
                 full_pins: Mapping[str, Mapping[str, str]] | None):
        self.path, self.walk, self.sniffer = path, walk, sniffer
        full = dict(full_pins) if full_pins is not None else {p: numerai_pins(p) for p in SUPPORTED_PYTHONS}
        self.full_pins = {p: {normalize(k): v for k, v in pins.items()} if pins is not None else None
                          for p, pins in full.items()}
        self.problems: list[str] = list(walk.problems)
        self.function_state: dict[int, Any] = {}  # id(function Call) -> cloudpickle slotstate dict
        self.class_state: dict[int, Any] = {}  # id(class Call) -> class dict
        self.code_findings: dict[int, CodeFinding] = {}  # id(code Call) -> finding
        self.other_code_layouts: list[int] = []
        self.modules_used: dict[str, set[str]] = {}
        self.risky: list[Risk] = []
        self.pins = {p: _safe_standard_pins(p) for p in SUPPORTED_PYTHONS}

    # ------------------------------------------------------------ orchestration

    def run(self) -> Inspection:
        walk = self.walk
        self._scan_calls()
        self._collect_modules()
        serializer, serializer_evidence = self._serializer()
        python = self._python_version()
        self._imports_when_called(python)
        recorded = self._recorded_versions()
        callable_info = self._callable()
        self._risks()
        self._stream_problems(serializer)
        modules = self._module_table()
        images = self._image_fit(python, modules, recorded)
        stats = {"complete": walk.complete, "opcodes": walk.opcodes, "seconds": round(walk.seconds, 3),
                 "payloads_skipped": walk.payloads_skipped, "bytes_skipped": walk.bytes_skipped,
                 "trailing_bytes": walk.trailing_bytes, "calls": len(walk.calls) + walk.calls_dropped,
                 "code_objects": len(self.code_findings), "code_arguments": self._code_arguments(),
                 "memo_dropped": walk.memo_dropped,
                 "items_dropped": walk.dropped_items, "highest_opcode_protocol": walk.max_opcode_protocol}
        return Inspection(path=str(self.path), size_bytes=walk.size, sha256=_sha256(self.path),
                          protocol=walk.protocol if walk.protocol is not None else (
                              walk.max_opcode_protocol if walk.opcodes else None),
                          serializer=serializer, serializer_evidence=serializer_evidence, python=python,
                          modules=modules, recorded_versions=recorded, callable=callable_info,
                          risky=self.risky, problems=_dedupe(self.problems), images=images, stats=stats)

    # ------------------------------------------------------------ calls: code, functions, classes

    def _scan_calls(self) -> None:
        for call in self.walk.calls:
            func = name_of(call.func)
            if func in ("types.CodeType", "code.CodeType"):
                finding = examine_code_args(call.args)
                if finding is not None:
                    self.code_findings[id(call)] = finding
                elif isinstance(call.args, tuple):
                    self.other_code_layouts.append(len(call.args))
            elif _is_cloudpickle_helper(func, SETTERS) and isinstance(call.args, tuple) and len(call.args) >= 2:
                target, state = call.args[0], call.args[1]
                if _short(func) == "_function_setstate":
                    self.function_state[id(target)] = state[1] if isinstance(state, tuple) and len(state) == 2 \
                        else state
                elif _short(func) in ("_class_setstate", "_rehydrate_skeleton_class"):
                    self.class_state[id(target)] = state[0] if isinstance(state, tuple) and state else state
                elif _short(func) == "_fill_function":  # cloudpickle < 1.5: (func, globals, defaults, dict, ...)
                    state = call.args[1] if len(call.args) == 2 else None
                    if isinstance(state, dict):
                        self.function_state[id(target)] = state
            elif func and _short(func) in SUBIMPORTS and func.startswith(("cloudpickle", "dill")):
                if call.args and isinstance(call.args[0], str):
                    self._use(call.args[0], f"{call.args[0]} (module)")

    def _imports_when_called(self, python: PythonVersion) -> None:
        """Modules the pickled code imports when it runs: needed in the image as much as the pickle's own."""
        version = python.version or (python.candidates[0] if self.code_findings and python.candidates else None)
        if version is None:
            return
        for finding in self.code_findings.values():
            for module in imported_modules(finding, version):
                self._use(module, f"{module} (imported by {finding.name or 'its code'} when called)")

    def _use(self, module: str, name: str) -> None:
        top = module.split(".", 1)[0]
        if not _is_stdlib(top) and top != "__main__":
            top = numerai.import_root(module)
        self.modules_used.setdefault(top, set()).add(name)

    def _collect_modules(self) -> None:
        for (module, attr), _count in self.walk.globals.items():
            self._use(module, f"{module}.{attr}")

    # ------------------------------------------------------------ serializer

    def _serializer(self) -> tuple[str, list[str]]:
        names = {f"{m}.{a}" for m, a in self.walk.globals}
        evidence = []
        if not self.walk.opcodes or (not self.walk.complete and self.walk.opcodes < 4):
            return "not a pickle", []
        cloud = sorted(n for n in names if n.startswith("cloudpickle."))
        if any(n.startswith("joblib.numpy_pickle.") for n in names):
            evidence.append("names joblib.numpy_pickle.NumpyArrayWrapper: written by joblib.dump, whose arrays "
                            "follow the pickle as raw data that only joblib.load can read")
            return "joblib", evidence
        if any(n.startswith("dill.") for n in names):
            helpers = sorted(n for n in names if n.startswith("dill."))
            return "dill", [f"names dill's helpers ({', '.join(helpers[:3])})"]
        if cloud:
            evidence.append(f"names cloudpickle's helpers: {', '.join(_short(n) for n in cloud[:6])}"
                            + (" ..." if len(cloud) > 6 else ""))
            releases = self._cloudpickle_releases(cloud)
            if any(n.startswith("cloudpickle.cloudpickle_fast.") for n in cloud):
                evidence.append("helpers under cloudpickle.cloudpickle_fast: written by cloudpickle older than 3.0")
            elif any(_short(n) == "_function_setstate" or _short(n) == "_class_setstate" for n in cloud):
                evidence.append("_function_setstate/_class_setstate under cloudpickle.cloudpickle: written by "
                                "cloudpickle 3.0 or later")
            if releases is not None:
                evidence.append("loadable by cloudpickle " + (", ".join(releases) if releases else "none of "
                                + ", ".join(CLOUDPICKLE_NAMES)) + " (of the releases this table knows)")
            return "cloudpickle", evidence
        if self.code_findings:
            return "cloudpickle?", ["rebuilds code objects, as cloudpickle does, without naming cloudpickle"]
        proto = self.walk.protocol
        default = [p for p, (d, _h) in PICKLE_PROTOCOLS.items() if d == proto]
        evidence.append("names no cloudpickle helper: written by pickle.dump (or pandas.to_pickle, "
                        "joblib without arrays, ...)" + (f"; protocol {proto} is pickle's default on Python "
                                                        f"{span(default)}" if default else ""))
        return "pickle", evidence

    @staticmethod
    def _cloudpickle_releases(cloud_names: list[str]) -> list[str] | None:
        out = []
        for release, modules in CLOUDPICKLE_NAMES.items():
            if all(_short(n) in modules.get(n.rsplit(".", 1)[0], ()) for n in cloud_names):
                out.append(release)
        return out

    # ------------------------------------------------------------ python version

    def _python_version(self) -> PythonVersion:
        findings = list(self.code_findings.values())
        verdict: VersionVerdict = judge(findings, self.other_code_layouts)
        proto = self.walk.protocol
        if findings or self.other_code_layouts:
            evidence = list(verdict.evidence)
            if proto is not None:
                evidence.append(f"pickle protocol {proto}")
            return PythonVersion(verdict.version, verdict.candidates, evidence, verdict.reasons_unknown)
        if not self.walk.opcodes:
            return PythonVersion(None, [], [], ["the file is not a pickle"])
        if any(_short(name_of(c.func)) == "_create_code" for c in self.walk.calls):
            return PythonVersion(None, [], [], ["it rebuilds code with dill, whose code-object layout this "
                                                "inspector does not read"])
        readable = [p for p in KNOWN_PYTHONS if proto is None or proto <= PICKLE_PROTOCOLS[p][1]]
        reasons = ["the pickle holds no code objects: a pickle of objects (pickle.dump, or cloudpickle of "
                   "things defined in importable modules) records classes by name and data, not the Python "
                   "that wrote it"]
        evidence = []
        if proto is not None:
            default = [p for p, (d, _h) in PICKLE_PROTOCOLS.items() if d == proto]
            every = readable == list(KNOWN_PYTHONS)
            evidence.append(f"pickle protocol {proto}: readable by "
                            + (f"every Python this table knows ({span(readable)})" if every
                               else f"Python {span(readable)}")
                            + (f"; the default of pickle.dump on {span(default)} (weak evidence)" if default
                               else ""))
        if self.walk.globals and any(m == "__main__" for m, _ in self.walk.globals):
            reasons.append("what it needs from __main__ is named, not included")
        return PythonVersion(None, readable, evidence, reasons)

    # ------------------------------------------------------------ recorded library versions

    def _recorded_versions(self) -> list[RecordedVersion]:
        out: list[RecordedVersion] = []
        sklearn: dict[str, list[str]] = {}
        for call in self.walk.calls:
            for state in call.states:
                version = _get(state, "_sklearn_version")
                if version is None and isinstance(state, tuple) and state:
                    version = _get(state[0], "_sklearn_version")
                if isinstance(version, str):
                    sklearn.setdefault(version, []).append(_short(name_of(call.func)) or "an object")
        has_tree = any(m == "sklearn.tree._tree" for m, _ in self.walk.globals)
        for version, objects in sorted(sklearn.items()):
            where = "_sklearn_version in the state of " + ", ".join(sorted(set(objects))[:5])
            out.append(RecordedVersion("scikit-learn", version, where, False,
                                       self._compare("scikit-learn", version, _sklearn_rule(has_tree))))
        for version in sorted(set(self.sniffer.xgboost)):
            out.append(RecordedVersion("xgboost", version, "the version array of a saved XGBoost model", False,
                                       self._compare("xgboost", version, _xgboost_rule)))
        for fmt in sorted(set(self.sniffer.lightgbm_formats)):
            out.append(RecordedVersion("lightgbm", f"model format {fmt}",
                                       "the 'version=' line of a LightGBM model string (the format, not the "
                                       "release: v4 is written by LightGBM 4.x, v3 by 3.x)", False,
                                       self._compare("lightgbm", fmt, _lightgbm_rule)))
        modules = {m for m, _ in self.walk.globals}
        if any(m == "numpy._core" or m.startswith("numpy._core.") for m in modules):
            out.append(RecordedVersion("numpy", ">=2.0", "names numpy._core (NumPy 2 renamed numpy.core)", True,
                                       self._compare("numpy", ">=2.0", _numpy_rule)))
        elif any(m == "numpy.core" or m.startswith("numpy.core.") for m in modules):
            out.append(RecordedVersion("numpy", "<2.0", "names numpy.core (NumPy 1.x's module name)", True,
                                       self._compare("numpy", "<2.0", _numpy_rule)))
        cloud = sorted(f"{m}.{a}" for m, a in self.walk.globals if m.split(".", 1)[0] == "cloudpickle")
        if cloud:
            releases = self._cloudpickle_releases(cloud) or []
            label = ("3.x" if any(_short(n) in ("_function_setstate", "_class_setstate")
                                  and n.startswith("cloudpickle.cloudpickle.") for n in cloud)
                     else "<3.0" if any(n.startswith("cloudpickle.cloudpickle_fast.") for n in cloud) else "any")
            out.append(RecordedVersion("cloudpickle", label, "the names of the cloudpickle helpers it calls", True,
                                       self._compare("cloudpickle", label, _cloudpickle_rule(cloud, releases))))
        return out

    def _compare(self, library: str, recorded: str, rule) -> dict[str, dict[str, Any]]:
        result = {}
        for python, pins in self.pins.items():
            found = installed_distribution(library if library != "scikit-learn" else "sklearn", pins) \
                if pins is not None else None
            pin = found[1] if found else None
            if pins is None:
                result[python] = {"pin": None, "status": "unknown", "note": "the image's pins are unreadable"}
            elif pin is None:
                result[python] = {"pin": None, "status": "missing", "note": f"{library} is not in the image"}
            else:
                status, note = rule(recorded, pin)
                result[python] = {"pin": pin, "status": status, "note": note}
        return result

    # ------------------------------------------------------------ the callable

    def _callable(self) -> CallableInfo:
        if not self.walk.complete:
            return CallableInfo("unknown", notes=["the pickle could not be read to its end"])
        return self._describe(self.walk.result, 0)

    def _function_parts(self, fn: Call) -> tuple[CodeFinding | None, Any]:
        code = fn.args[0] if isinstance(fn.args, tuple) and fn.args else None
        finding = self.code_findings.get(id(code)) if isinstance(code, Call) else None
        return finding, self.function_state.get(id(fn))

    def _is_function(self, value: Any) -> bool:
        return isinstance(value, Call) and (_is_cloudpickle_helper(name_of(value.func), FUNCTION_MAKERS)
                                            or name_of(value.func) == "types.FunctionType")

    def _is_class(self, value: Any) -> bool:
        return isinstance(value, Call) and _is_cloudpickle_helper(name_of(value.func), CLASS_MAKERS)

    def _describe(self, obj: Any, depth: int) -> CallableInfo:
        if depth > 4:
            return CallableInfo("unknown", notes=["nested too deeply to follow"])
        if self._is_function(obj):
            return self._describe_function(obj)
        if self._is_class(obj):
            return self._describe_class(obj)
        if isinstance(obj, Global):
            return self._describe_reference(obj.dotted)
        if isinstance(obj, Call):
            func = name_of(obj.func)
            named = name_of(obj)
            if named is not None:  # getattr(module, "f"), subimport("m"): a reference, not an object
                return self._describe_reference(named)
            if func == "types.MethodType" and isinstance(obj.args, tuple) and len(obj.args) == 2:
                inner = self._describe(obj.args[0], depth + 1)
                params = inner.params[1:] if inner.params else inner.params
                owner = self._class_name(obj.args[1])
                return CallableInfo("method", inner.name, inner.qualname, params,
                                    len(params) if params is not None else None,
                                    notes=[f"bound to an instance of {owner}" if owner else "a bound method"])
            if func == "functools.partial":
                return self._describe_partial(obj, depth)
            cls = self._instance_class(obj)
            if cls is not None:
                return self._describe_instance(cls, depth)
            if func is not None and func.startswith(NOT_CALLABLE_LIBRARIES):
                return CallableInfo("not callable", _short(func), func,
                                    notes=[f"an object built by {func}: Numerai calls the pickle, so it must be "
                                           "a function (wrap the model: def predict(live_features): ...)"])
            return CallableInfo("unknown", notes=[f"the result of calling {describe(obj.func)} while loading"])
        kind = {SDict: "dict", SList: "list", tuple: "tuple", str: "str", bytes: "bytes", Blob: "data"}.get(
            type(obj), type(obj).__name__)
        if isinstance(obj, Opaque):
            return CallableInfo("unknown", notes=[f"the pickle's result is {obj.what}"])
        return CallableInfo("not callable", notes=[f"the pickle holds a {kind}, not a function"])

    def _describe_function(self, fn: Call) -> CallableInfo:
        finding, state = self._function_parts(fn)
        name = _get(state, "__name__") or (finding.name if finding else None)
        if name is None and isinstance(fn.args, tuple) and len(fn.args) > 2 and isinstance(fn.args[2], str):
            name = fn.args[2]
        qualname = _get(state, "__qualname__") or name
        kind = "lambda" if name == "<lambda>" else "function"
        notes = []
        if isinstance(qualname, str) and "<locals>" in qualname:
            notes.append(f"defined inside {qualname.split('.<locals>')[0]}()")
        closure = fn.args[4] if isinstance(fn.args, tuple) and len(fn.args) > 4 else None
        if isinstance(closure, tuple) and closure:
            notes.append(f"a closure over {len(closure)} variable{'s' if len(closure) > 1 else ''}")
        module = _get(state, "__module__")
        if isinstance(module, str) and module != "__main__":
            notes.append(f"from module {module} (pickled by value)")
        if finding is None:
            notes.append("its code object could not be read")
        return CallableInfo(kind, name if isinstance(name, str) else None,
                            qualname if isinstance(qualname, str) else None,
                            finding.params if finding else None, finding.n_params if finding else None, notes)

    def _class_dict(self, cls: Call) -> Any:
        state = self.class_state.get(id(cls))
        if isinstance(state, dict):
            return state
        if isinstance(cls.args, tuple) and len(cls.args) > 5:  # older cloudpickle: class dict in the call
            return cls.args[5] if isinstance(cls.args[5], dict) else None
        return None

    def _class_name(self, value: Any) -> str | None:
        cls = self._instance_class(value) if isinstance(value, Call) else None
        if isinstance(cls, Global):
            return cls.dotted
        if isinstance(cls, Call) and isinstance(cls.args, tuple) and len(cls.args) > 1 and isinstance(cls.args[1], str):
            return cls.args[1]
        return None

    def _describe_class(self, cls: Call) -> CallableInfo:
        name = cls.args[1] if isinstance(cls.args, tuple) and len(cls.args) > 1 and isinstance(cls.args[1], str) \
            else None
        init = _get(self._class_dict(cls), "__init__")
        params = None
        notes = ["calling a class builds an instance: Numerai would get an object back, not predictions"]
        if self._is_function(init):
            info = self._describe_function(init)
            params = info.params[1:] if info.params else info.params
        else:
            notes.append("no __init__ of its own: its parameters come from a base class")
        return CallableInfo("class", name, name, params, len(params) if params is not None else None, notes)

    def _instance_class(self, obj: Call) -> Any:
        """The class of an object built by NEWOBJ / copyreg.__newobj__ / copyreg._reconstructor, else None."""
        func = name_of(obj.func)
        if obj.kind in ("newobj", "obj", "inst") and (self._is_class(obj.func) or isinstance(obj.func, Global)):
            return obj.func
        if (func in NEW_OBJECT or func in RECONSTRUCTOR) and isinstance(obj.args, tuple) and obj.args:
            return obj.args[0]
        if self._is_class(obj.func):
            return obj.func
        return None

    def _describe_instance(self, cls: Any, depth: int) -> CallableInfo:
        if isinstance(cls, Global):
            if cls.dotted.startswith(NOT_CALLABLE_LIBRARIES):
                return CallableInfo("not callable", cls.name, cls.dotted,
                                    notes=[f"an instance of {cls.dotted}: Numerai calls the pickle, so it must be a "
                                           "function (wrap the model: def predict(live_features): ...)"])
            return CallableInfo("unknown", cls.name, cls.dotted,
                                notes=[f"an instance of {cls.dotted}, a class the pickle only names: whether it "
                                       "has __call__ cannot be told without importing it"])
        if self._is_class(cls):
            name = cls.args[1] if isinstance(cls.args, tuple) and len(cls.args) > 1 else None
            call = _get(self._class_dict(cls), "__call__")
            if self._is_function(call):
                info = self._describe_function(call)
                params = info.params[1:] if info.params else info.params
                return CallableInfo("callable instance", name if isinstance(name, str) else None,
                                    info.qualname, params, len(params) if params is not None else None,
                                    [f"an instance of {name}, called through its __call__"])
            bases = cls.args[2] if isinstance(cls.args, tuple) and len(cls.args) > 2 else ()
            named_bases = [name_of(b) for b in bases if name_of(b) not in (None, "builtins.object")] \
                if isinstance(bases, tuple) else []
            if named_bases:
                return CallableInfo("unknown", name if isinstance(name, str) else None,
                                    notes=[f"an instance of {name} without __call__ of its own; its bases "
                                           f"({', '.join(named_bases)}) may define one"])
            return CallableInfo("not callable", name if isinstance(name, str) else None,
                                notes=[f"an instance of {name}, a class without __call__"])
        return CallableInfo("unknown", notes=["an object whose class could not be followed"])

    def _describe_partial(self, obj: Call, depth: int) -> CallableInfo:
        state = obj.states[0] if obj.states else None
        func = state[0] if isinstance(state, tuple) and state else (obj.args[0] if obj.args else None)
        bound = state[1] if isinstance(state, tuple) and len(state) > 1 and isinstance(state[1], tuple) else ()
        keywords = state[2] if isinstance(state, tuple) and len(state) > 2 and isinstance(state[2], dict) else {}
        inner = self._describe(func, depth + 1)
        params = None
        if inner.params is not None:
            params = [p for p in inner.params[len(bound):] if p.lstrip("*") not in keywords]
        return CallableInfo("partial", inner.name, inner.qualname, params, len(params) if params is not None
                            else None, [f"functools.partial of a {inner.kind} with {len(bound)} argument(s) bound"])

    def _describe_reference(self, dotted: str) -> CallableInfo:
        module, _, name = dotted.rpartition(".")
        notes = [f"the pickle holds only the name {dotted}: loading imports it from {module or '?'}"]
        if module == "__main__":
            notes.append("__main__ in the image is Numerai's own script, which has no such name")
        kind = "class" if name[:1].isupper() else "function"
        return CallableInfo(kind, name, dotted, None, None, notes)

    # ------------------------------------------------------------ risks and problems

    def _risks(self) -> None:
        seen: set[tuple[str, str]] = set()

        def add(reference: str, when: str, why: str) -> None:
            if (reference, when) not in seen:
                seen.add((reference, when))
                self.risky.append(Risk(reference, when, why))

        for module, attr in sorted(self.walk.globals):
            dotted = f"{module}.{attr}"
            why = _risk_of(dotted)
            if why:
                add(dotted, "load", why)
        for call in self.walk.calls:
            resolved = name_of(call.func)
            if resolved and isinstance(call.func, Call):
                why = _risk_of(resolved)
                if why:
                    add(resolved, "load", why)
            if call.kind == "reduce" and self._is_function(call.func):
                finding, state = self._function_parts(call.func)
                name = _get(state, "__qualname__") or (finding.name if finding else "a function")
                add(f"{name}()", "load", "calls a function from inside the pickle while loading: its code runs "
                                         "as soon as the pickle is opened")
        for package in sorted(self.modules_used):
            for name in sorted(self.modules_used[package]):
                module, _, how = name.partition(" (")
                if how and module in RISKY_MODULES:
                    add(module, "call", "the function's code imports this module" if how.startswith("imported")
                        else "the function's code can use this module")
        for finding in self.code_findings.values():
            for attr in finding.names:
                if attr in RISKY_CODE_NAMES:
                    add(RISKY_CODE_NAMES[attr], "call", f"`{finding.name}` mentions {attr}")

    def _stream_problems(self, serializer: str) -> None:
        walk = self.walk
        if serializer == "not a pickle":
            self.problems.insert(0, f"not a pickle: it {_sniff(self.path)}")
        if serializer == "joblib":
            self.problems.append("written by joblib.dump with numpy arrays: Numerai loads with "
                                 "pandas.read_pickle, which cannot read joblib's array sections; save with "
                                 "cloudpickle.dump instead")
        if walk.out_of_band_buffers:
            self.problems.append(f"uses {walk.out_of_band_buffers} out-of-band buffer(s) (protocol 5 "
                                 "buffer_callback): a plain load without the buffers fails")
        if walk.persistent_ids:
            self.problems.append(f"holds {walk.persistent_ids} persistent id(s) (torch.save-style): "
                                 "pandas.read_pickle cannot resolve them")
        if walk.extension_codes:
            self.problems.append(f"uses {walk.extension_codes} copyreg extension code(s), registered only "
                                 "in the process that wrote it")
        if walk.complete and walk.trailing_bytes:
            self.problems.append(f"{walk.trailing_bytes:,} bytes follow the pickle's end; loading reads only "
                                 "the first pickle and ignores them")
        if any(m == "__main__" for m, _ in walk.globals):
            names = sorted(a for m, a in walk.globals if m == "__main__")
            self.problems.append(f"refers to {', '.join('__main__.' + n for n in names[:5])} by name: that "
                                 "code is not in the pickle and __main__ in the image does not have it "
                                 "(pickle it with cloudpickle, from the script or notebook that defines it)")
        if walk.memo_dropped or walk.calls_dropped:
            self.problems.append("the pickle is too large to follow every object: some later references were "
                                 "not resolved (results are partial)")

    # ------------------------------------------------------------ modules against images

    def _module_table(self) -> list[ModuleUse]:
        out = []
        for package in sorted(self.modules_used, key=lambda p: (p == "__main__", p.lower())):
            names = sorted(self.modules_used[package])
            kind = "main" if package == "__main__" else "stdlib" if _is_stdlib(package) else "third-party"
            images: dict[str, dict[str, dict[str, Any]]] = {}
            for python in SUPPORTED_PYTHONS:
                images[python] = {profile: self._presence(package, kind, python, profile)
                                  for profile in PROFILES_REPORTED}
            out.append(ModuleUse(package, kind, names[:50] + ([f"... and {len(names) - 50} more"]
                                                              if len(names) > 50 else []), images))
        return out

    def _presence(self, package: str, kind: str, python: str, profile: str) -> dict[str, Any]:
        if kind == "main":
            return {"present": False, "distribution": None, "version": None,
                    "note": "the image's __main__ is Numerai's script"}
        if kind == "stdlib":
            missing = package in STDLIB_MISSING.get(python, ())
            return {"present": not missing, "distribution": "python", "version": python,
                    "note": f"removed from the standard library before Python {python}" if missing else "stdlib"}
        if profile == "auto":  # the standard image, plus what Numerai's image has and standard lacks
            standard = self._presence(package, kind, python, "standard")
            theirs = self._presence(package, kind, python, "full")
            if standard["present"] or not theirs["present"]:
                return standard if standard["present"] or theirs["present"] is None else dict(
                    theirs, note=f"not in Numerai's image for Python {python}, nor in ours")
            return dict(theirs, note="auto adds it, at Numerai's version")
        pins = self.pins.get(python) if profile == "standard" else self.full_pins.get(python)
        if pins is None:
            note = "the image's pins are unreadable" if profile == "standard" else \
                f"no vendored Numerai pin list for Python {python}"
            return {"present": None, "distribution": None, "version": None, "note": note}
        found = installed_distribution(package, pins)
        if found is None:
            where = "the standard profile" if profile == "standard" else f"Numerai's image for Python {python}"
            return {"present": False, "distribution": None, "version": None, "note": f"not in {where}"}
        return {"present": True, "distribution": found[0], "version": found[1], "note": ""}

    def _image_fit(self, python: PythonVersion, modules: list[ModuleUse],
                   recorded: list[RecordedVersion]) -> dict[str, ImageFit]:
        out = {}
        for image in SUPPORTED_PYTHONS:
            load, why, code = self._python_fit(python, image)
            blockers, warnings = [], []
            for use in modules:
                presence = use.images[image]["auto"]
                if presence["present"] is False:
                    blockers.append(f"{use.package}: {presence['note']}")
            for record in recorded:
                cell = record.images.get(image, {})
                if cell.get("status") == "breaks":
                    blockers.append(f"{record.library} {record.version} vs {cell.get('pin')}: {cell.get('note')}")
                elif cell.get("status") == "differs":
                    warnings.append(f"{record.library} {record.version} vs {cell.get('pin')}: {cell.get('note')}")
            out[image] = ImageFit(image, load, why, blockers, warnings, code)
        return out

    def _code_arguments(self) -> list[int]:
        """The argument counts the pickle calls the code constructor with (what decides loading)."""
        return sorted({f.n_args for f in self.code_findings.values()} | set(self.other_code_layouts))

    def _python_fit(self, python: PythonVersion, image: str) -> tuple[str, str, str]:
        """(LOADS | CANNOT_LOAD | MAY_RUN, why, what its bytecode would do) for the pickle's code in `image`'s
        Python.

        Certain only where the code constructor's argument count differs from the image's: unpickling then
        raises TypeError, which numerai-predict logs as "Pickle incompatible with 3.X"."""
        findings = list(self.code_findings.values())
        counts = self._code_arguments()
        if not counts:
            return LOADS, "the pickle holds no code: nothing in it ties it to a Python", ""
        wanted = code_arity(image)
        if any(n != wanted for n in counts):
            theirs = " and ".join(str(n) for n in counts if n != wanted)
            return CANNOT_LOAD, (f"its code objects are rebuilt with {theirs} arguments where Python {image}'s "
                                 f"code constructor takes {wanted}: unpickling raises TypeError"), ""
        if image in python.candidates:
            return LOADS, (f"its code was made by Python {image}" if python.version == image else
                           f"its code is valid, unchanged, under Python {span(python.candidates)}"), ""
        made = made_by_words(python)
        if python.candidates and not set(python.candidates) & set(SUPPORTED_PYTHONS):
            made += f"; Numerai has no {made} image"
        foreign = next(((f, why) for f in findings if (why := foreign_code(f, image)) is not None), None)
        if foreign is None:
            code = f"its code happens to be valid {image} bytecode, with the same meaning there"
        else:
            finding, why = foreign
            where = f"`{finding.name}`" if finding.name else "a code object"
            code = (f"Python {image} loads its code, but {where} is not valid {image} bytecode as written ({why}): "
                    "it will likely fail when called")
        return MAY_RUN, f"made by Python {made}; {code}", code


# ---------------------------------------------------------------- comparison rules

def _release(text: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", text)
    return tuple(int(p) for p in parts[:3])


def _sklearn_rule(has_tree: bool):
    def rule(recorded: str, pin: str) -> tuple[str, str]:
        if _release(recorded) == _release(pin):
            return "same", ""
        if has_tree and (_release(recorded) < (1, 3)) != (_release(pin) < (1, 3)):
            return "breaks", ("scikit-learn 1.3 changed the tree node layout: loading raises \"node array from "
                              "the pickle has an incompatible dtype\"")
        return "differs", ("scikit-learn warns (InconsistentVersionWarning) and does not support loading "
                           "estimators across versions; re-fit or pickle with the image's version")
    return rule


def _xgboost_rule(recorded: str, pin: str) -> tuple[str, str]:
    made, image = _release(recorded), _release(pin)
    if made[:2] == image[:2]:
        return "same", ""
    if made[:2] > image[:2]:
        return "breaks", ("saved by a newer XGBoost than the image's: older releases do not promise to read "
                          "it (an XGBRegressor pickled by 3.0 loads in 1.7.5, then predict raises AttributeError)")
    return "differs", "XGBoost reads models of older releases (with a warning); re-save with the image's version"


def _lightgbm_rule(recorded: str, pin: str) -> tuple[str, str]:
    fmt = int(recorded.lstrip("v") or 0)
    major = _release(pin)[0] if _release(pin) else 0
    if fmt > max(major, 3):
        return "breaks", f"model format {recorded} is newer than LightGBM {pin} writes"
    if fmt < major:
        return "differs", f"model format {recorded} from an older LightGBM; {pin} reads it"
    return "same", ""


def _numpy_rule(recorded: str, pin: str) -> tuple[str, str]:
    image_major = _release(pin)[0] if _release(pin) else 0
    if recorded == ">=2.0" and image_major < 2:
        if _release(pin) >= (1, 26):
            return "differs", "pickled with NumPy 2; NumPy 1.26 has a numpy._core alias and usually loads it"
        return "breaks", "pickled with NumPy 2 (numpy._core), which NumPy before 1.26 cannot import"
    if recorded == "<2.0" and image_major >= 2:
        return "differs", "pickled with NumPy 1.x; NumPy 2 still loads numpy.core names (with a warning)"
    return "same", ""


def _cloudpickle_rule(names: list[str], releases: list[str]):
    def rule(_recorded: str, pin: str) -> tuple[str, str]:
        if pin not in CLOUDPICKLE_NAMES:
            return "unknown", f"cloudpickle {pin} is not in the table of known releases"
        if pin in releases:
            return "ok", f"cloudpickle {pin} has every helper the pickle names"
        missing = [n for n in names if _short(n) not in CLOUDPICKLE_NAMES[pin].get(n.rsplit(".", 1)[0], ())]
        return "breaks", (f"cloudpickle {pin} has no {', '.join(missing[:3])}: loading fails with "
                          "\"Can't get attribute\"")
    return rule


# ---------------------------------------------------------------- helpers

def _risk_of(dotted: str) -> str | None:
    if dotted in RISKY_NAMES:
        return RISKY_NAMES[dotted]
    for prefix, why in RISKY_PREFIXES.items():
        if dotted.startswith(prefix):
            return why
    return None


def _is_stdlib(package: str) -> bool:
    return (package in STDLIB_ANY or package in sys.builtin_module_names
            or package in ("builtins", "__builtin__", "copy_reg", "exceptions"))


def _safe_standard_pins(python: str) -> dict[str, str] | None:
    try:
        return standard_pins(python)
    except (OSError, ValueError, PinError):
        return None


def _sha256(path: Path) -> str | None:
    """None when the file went away or became unreadable after it was walked."""
    try:
        return file_sha256(path)
    except OSError:
        return None


def _sniff(path: Path) -> str:
    from .filetype import sniff  # the same description a failed run gives

    return sniff(path)


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# ---------------------------------------------------------------- human-readable report

def _module_lines(i: Inspection) -> list[str]:
    """Per module and Python: the version Numerai's image has, marked where the standard profile lacks it;
    then, per Python, what the auto profile adds and why."""
    lines = [f"Modules, per image (Python {' | '.join(SUPPORTED_PYTHONS)}: the version in Numerai's image; "
             "+: the standard profile lacks it, auto adds it; ✗: Numerai's image lacks it):"]
    for use in i.modules:
        cells = []
        for python in SUPPORTED_PYTHONS:
            cell, standard = use.images[python]["auto"], use.images[python]["standard"]
            if cell["present"] is None:
                cells.append("?")
            elif not cell["present"]:
                cells.append("✗")
            else:
                cells.append(("" if standard["present"] else "+")
                             + (cell["version"] if use.kind == "third-party" else "✓"))
        shown = ", ".join(n for n in use.names[:4])
        more = f" (+{len(use.names) - 4})" if len(use.names) > 4 else ""
        lines.append(f"  {use.package:<14} {use.kind:<11} {' | '.join(cells)}   {shown}{more}")
    loadable = compatible_pythons(i) or list(SUPPORTED_PYTHONS)
    for python in loadable:  # what the auto profile adds, in the images that can load the pickle's code
        needs = numerai_additions(i, python)
        for dist, module in needs.items():
            version = next(u.images[python]["full"]["version"] for u in i.modules if u.package == module)
            named = module if normalize(module) == dist else f"{module} ({dist})"
            lines.append(f"  {python}: Numerai's image has {named} {version}; the standard profile does not; "
                         "auto adds it")
        if needs:
            lines.append(f"  {python}: {_auto_summary(i.path, python, needs)}")
    return lines


def _auto_summary(path: str, python: str, needs: dict[str, str]) -> str:
    """What the auto image adds in all, and how much there is to fetch."""
    try:
        pins = pin_set(python, "auto", needs=needs)
    except PinError as exc:
        return f"auto cannot tell what it adds ({exc})"
    size, unknown = numerai.wheel_bytes(python, pins.added)
    others = sorted((n for n in pins.added if n not in needs),
                    key=lambda n: -(numerai.wheel_bytes(python, {n: pins.added[n]})[0]))
    deps = (f" with {len(others)} dependenc{'y' if len(others) == 1 else 'ies'} at Numerai's pins ("
            + ", ".join(f"{n} {pins.added[n]}" for n in others[:3]) + (", …" if len(others) > 3 else "") + ")"
            if others else "")
    return (f"auto's image is the standard one plus {len(pins.added)} distribution{'s' if len(pins.added) != 1 else ''}"
            f"{deps}: {human_bytes(size)} of wheels" + (f" (and {', '.join(unknown)}, built from source)" if unknown else "")
            + f", fetched once with `numerai-sandbox images fetch --for {path}`")


def render(inspection: Inspection) -> list[str]:
    """The report as lines of text."""
    i = inspection
    if i.serializer == "not a pickle":  # what it is instead, and nothing per image or per Python
        return [f"{i.path}: {human_bytes(i.size_bytes)}, sha256 {i.sha256[:16] if i.sha256 else '?'}…, not a pickle",
                f"  ✗ {i.problems[0].removeprefix('not a pickle: ')}",
                "No image can load it (Numerai: \"Invalid pickle\"): upload the file cloudpickle.dump(predict, f) "
                "writes."]
    lines = [f"{i.path}: {human_bytes(i.size_bytes)}, sha256 {i.sha256[:16] if i.sha256 else '?'}…, "
             f"protocol {i.protocol if i.protocol is not None else '?'}, {i.serializer}"]
    for text in i.serializer_evidence:
        lines.append(f"  · {text}")
    if i.problems:
        lines.append("Problems:")
        lines += [f"  ✗ {p}" for p in i.problems]
    py = i.python
    lines.append("Python: " + (py.version if py.version else
                               f"unknown (the evidence allows {span(py.candidates)})" if py.candidates
                               else "unknown"))
    lines += [f"  · {e}" for e in py.evidence]
    lines += [f"  ? {r}" for r in py.reasons_unknown]
    c = i.callable
    params = "" if c.params is None else f"({', '.join(c.params)}) — {c.n_params} parameter(s)"
    validity = ""
    if c.n_params is not None and c.kind in ("function", "lambda", "method", "callable instance", "partial"):
        validity = "; Numerai calls it with live_features" + (" and live_benchmark_models" if c.n_params == 2
                                                              else "") if c.n_params in (1, 2) else \
            "; Numerai needs 1 or 2 parameters"
    lines.append(f"Callable: {c.kind}{' ' + (c.qualname or c.name) if (c.qualname or c.name) else ''}{params}"
                 f"{validity}")
    lines += [f"  · {n}" for n in c.notes]
    lines += _render_columns(i.columns)
    if i.modules:
        lines += _module_lines(i)
    if i.recorded_versions:
        lines.append("Library versions recorded in the pickle:")
        for record in i.recorded_versions:
            cells = []
            for python in SUPPORTED_PYTHONS:
                cell = record.images.get(python, {})
                mark = STATUS_MARKS.get(cell.get("status"), "?")
                cells.append(f"{python} {mark}{cell.get('pin') or ''}")
            lines.append(f"  {record.library} {record.version}{' (inferred)' if record.inferred else ''}: "
                         + ", ".join(cells))
            notes = {cell.get("note") for cell in record.images.values()
                     if cell.get("status") in ("breaks", "differs") and cell.get("note")}
            lines += [f"    · {n}" for n in sorted(notes)]
    if i.risky:
        lines.append("Warnings (what the pickle could do; not a verdict):")
        for risk in i.risky:
            when = "while loading" if risk.when == "load" else "when called"
            lines.append(f"  ! {risk.reference} {when}: {risk.why}")
    lines.append("Numerai's images (what run builds with --profile auto; only \"cannot load\" is certain, the rest "
                 "the run decides):")
    width = max((len(_image_label(p)) for p in i.images), default=0)
    for p, fit in i.images.items():
        said = f" (Numerai's log: \"Pickle incompatible with {p}\")" if not fit.loadable else ""
        lines.append(f"  {_image_label(p):<{width}}  {fit.load}: {fit.why}{said}")
        lines += [f"  {'':<{width}}  ✗ {blocker}" for blocker in fit.blockers]
    return lines


def _image_label(python: str) -> str:
    return f"{python} (experimental)" if python in EXPERIMENTAL_PYTHONS else python


def _render_columns(columns: ColumnNames) -> list[str]:
    """The live-data columns the pickle names: what synthetic data will carry for it."""
    found = [(columns.features, "Numerai-shaped feature name"), (columns.targets, "target name"),
             (columns.benchmarks, "benchmark column")]
    if not any(names for names, _ in found) and not columns.other:
        return []
    lines = ["Columns it names (synthetic live data carries them; Numerai's real data decides):"]
    for names, what in found:
        if names:
            shown = ", ".join(names[:3]) + (f" (+{len(names) - 3})" if len(names) > 3 else "")
            lines.append(f"  {len(names):>5,} {what}{'s' if len(names) != 1 else ''}: {shown}")
    if columns.other:
        shown = ", ".join(columns.other[:4]) + (f" (+{len(columns.other) - 4})" if len(columns.other) > 4 else "")
        lines.append(f"  not Numerai column names (never invented): {shown}")
    if not columns.complete:
        lines.append("  (the scan stopped at its time budget: the list may be incomplete)")
    return lines
