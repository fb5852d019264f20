"""Which Python made a code object, judged from the arguments its pickle rebuilds it with.

cloudpickle (and dill) pickle a function's code as a call to the code-object
constructor with the code's fields as positional arguments. That constructor's
signature is version-specific: 15 arguments up to 3.7, 16 from 3.8 (co_posonlyargcount)
to 3.10, 18 from 3.11 (co_qualname, co_exceptiontable). Within one signature the
bytecode decides: each Python has its own opcode numbers and, from 3.11 on, its own
number of inline cache entries after some opcodes, so a co_code is checked against
each Python's table (runner/version_tables.py, generated from the interpreters
themselves). 3.8/3.9 and 3.10 share the signature but not the line table: 3.10's
co_linetable covers every bytecode byte, 3.8/3.9's co_lnotab stops at the last line.

What this cannot do: tell apart Pythons whose bytecode for a given function is
byte-for-byte the same (a trivial `lambda x: x` is identical under 3.11 and 3.12).
It then says so and keeps every version the evidence allows.

Who made a code object and whether another Python can load it are two questions. Loading
(unpickling) only calls the constructor: it fails for certain, with a TypeError, exactly when
the argument count differs from the loading Python's (`code_arity`); code of another Python
with the same count loads, and whether it then runs as written is what `foreign_code` tells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .pickle_ops import Blob
from .version_tables import CACHES, OPCODES


def version_key(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


KNOWN_PYTHONS: tuple[str, ...] = tuple(sorted(OPCODES, key=version_key))
MODERN = tuple(v for v in KNOWN_PYTHONS if version_key(v) >= (3, 11))  # 18-argument code objects
POSONLY = tuple(v for v in KNOWN_PYTHONS if (3, 8) <= version_key(v) <= (3, 10))  # 16 arguments

# Argument kinds per constructor signature: i int, b bytes, t tuple, s str.
SIGNATURES = {
    18: ("iiiiiibtttsssibbtt", MODERN, "Python 3.11 and later (18 arguments, with co_qualname and "
                                        "co_exceptiontable)"),
    16: ("iiiiiibtttssibtt", POSONLY, "Python 3.8 to 3.10 (16 arguments, with co_posonlyargcount)"),
    15: ("iiiiibtttssibtt", (), "Python 3.7 or older (15 arguments, no co_posonlyargcount)"),
}
CO_VARARGS, CO_VARKEYWORDS = 0x04, 0x08
CO_GENERATOR_LIKE = 0x20 | 0x80 | 0x100 | 0x200  # generator, coroutine, iterable coroutine, async generator
# 3.8-3.10 instructions whose argument is a jump target: a byte offset up to 3.9, an instruction offset in 3.10.
JUMPS_38_310 = {"FOR_ITER", "JUMP_ABSOLUTE", "JUMP_FORWARD", "JUMP_IF_FALSE_OR_POP", "JUMP_IF_NOT_EXC_MATCH",
                "JUMP_IF_TRUE_OR_POP", "POP_JUMP_IF_FALSE", "POP_JUMP_IF_TRUE", "SETUP_ASYNC_WITH", "SETUP_FINALLY",
                "SETUP_WITH", "CALL_FINALLY"}


def code_arity(version: str) -> int:
    """How many arguments Python `version`'s code constructor takes from a pickle: 15 up to 3.7, 16 for
    3.8-3.10, 18 from 3.11. Another count makes the constructor raise TypeError, whatever the bytecode."""
    key = version_key(version)
    return 15 if key < (3, 8) else 16 if key <= (3, 10) else 18


def span(versions: list[str] | tuple[str, ...]) -> str:
    """'3.11', '3.11 or 3.12', '3.8 to 3.10'."""
    ordered = sorted(versions, key=version_key)
    if not ordered:
        return "none"
    if len(ordered) == 1:
        return ordered[0]
    if len(ordered) == 2:
        return f"{ordered[0]} or {ordered[1]}"
    return f"{ordered[0]} to {ordered[-1]}"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "?"
    if isinstance(value, int):
        return "i"
    if isinstance(value, (bytes, bytearray)) or (isinstance(value, Blob) and value.kind != "str"):
        return "b"
    if isinstance(value, str) or (isinstance(value, Blob) and value.kind == "str"):
        return "s"
    if isinstance(value, tuple):
        return "t"
    return "?"


def _bytes(value: Any) -> tuple[bytes, bool]:
    """The bytes of a bytes argument, and whether they are complete (a large one keeps only its head)."""
    if isinstance(value, Blob):
        return bytes(value.head), False
    return bytes(value), True


# Instructions that may come before RESUME in 3.11+ (cells, free variables, generator set-up).
PRELUDE = {"MAKE_CELL", "COPY_FREE_VARS", "RETURN_GENERATOR", "POP_TOP", "NOP", "EXTENDED_ARG"}
# Instructions a compiled code object can end with: the compiler never lets execution run off the end.
TERMINATORS = {"RETURN_VALUE", "RETURN_CONST", "RERAISE", "RAISE_VARARGS", "JUMP_ABSOLUTE", "JUMP_FORWARD",
               "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "END_FINALLY", "RETURN_GENERATOR"}


def check_bytecode(code: bytes, version: str, complete: bool = True, n_freevars: int | None = None) -> str | None:
    """None if `code` is well-formed bytecode for `version`, else why not.

    Checked: every opcode exists in that Python; from 3.11, each is followed by exactly as many
    (zeroed) inline cache entries as that Python gives it, the code starts with RESUME (after
    only cell/free-variable/generator set-up), and COPY_FREE_VARS copies as many variables as the
    code has; and the last instruction ends the code (a return, raise or jump).
    """
    names = OPCODES[version]
    caches = CACHES.get(version, {})
    modern = version_key(version) >= (3, 11)
    if len(code) % 2 and complete:
        return f"its bytecode has an odd length ({len(code)}), impossible for Python {version}"
    i, n = 0, len(code) - (len(code) % 2)
    seen_resume = not modern
    last = None
    while i < n:
        op = code[i]
        name = names.get(op)
        if modern and name == "CACHE":
            return (f"a zeroed cache entry stands at offset {i}, where Python {version} expects an instruction "
                    "(its cache layout differs)")
        if name is None:
            return f"opcode {op} at offset {i}{_known_as(op, version)} does not exist in Python {version}"
        if not seen_resume:
            if name == "RESUME":
                seen_resume = True
            elif name not in PRELUDE:
                return (f"its first instructions are not RESUME (or the set-up allowed before it) as in every "
                        f"Python {version} code object: {name} at offset {i}")
            elif name == "COPY_FREE_VARS" and n_freevars is not None and code[i + 1] != n_freevars:
                return (f"read as Python {version}, it would copy {code[i + 1]} free variables "
                        f"(COPY_FREE_VARS) but the code has {n_freevars}")
        count = caches.get(name, 0)
        end = i + 2 + 2 * count
        if count:
            if end > n:
                if not complete:
                    return None
                return f"{name} at offset {i} needs {count} cache entries after it in Python {version}"
            if any(code[i + 2:end]):
                return (f"{name} at offset {i} is followed by {count} cache entries in Python {version}, "
                        f"but the bytecode has an instruction there")
        last = name
        i = end
    if not complete:
        return None
    if not seen_resume:
        return f"it has no RESUME instruction, which every Python {version} code object starts with"
    if last is not None and last not in TERMINATORS:
        return f"it ends with {last}, an instruction Python {version} never ends a code object with"
    return None


def _known_as(op: int, version: str) -> str:
    """' (PRECALL in 3.11)': what the opcode is in the other Pythons, for the evidence sentence."""
    elsewhere = [(v, OPCODES[v][op]) for v in KNOWN_PYTHONS if v != version and op in OPCODES[v]]
    same_family = (version_key(version) >= (3, 11))
    modern = [(v, name) for v, name in elsewhere if (version_key(v) >= (3, 11)) == same_family]
    pick = modern or elsewhere
    if not pick:
        return ""
    names = sorted({name for _, name in pick})
    if len(names) == 1:
        return f" ({names[0]} in {span([v for v, _ in pick])})"
    return ""


def _line_table_covers(table: bytes, code_length: int) -> bool:
    """3.10's co_linetable is (bytecode delta, line delta) pairs whose deltas add up to the code's length."""
    return sum(table[0::2]) == code_length


@dataclass
class CodeFinding:
    """What one rebuilt code object says about the Python that made it."""

    name: str | None
    signature: str
    candidates: tuple[str, ...]
    excluded: dict[str, str] = field(default_factory=dict)  # version -> why not
    complete: bool = True
    params: list[str] | None = None
    n_params: int | None = None
    names: tuple[str, ...] = ()  # co_names: globals and attributes the code uses
    code: bytes = b""  # co_code (its start, if it was too large to keep whole)
    n_args: int = 0  # how many arguments the constructor is called with (see code_arity)
    flags: int | None = None  # co_flags


def examine_code_args(args: Any, via: str = "types.CodeType") -> CodeFinding | None:
    """The version evidence of one code-object constructor call; None if `args` is not one."""
    if not isinstance(args, tuple) or len(args) not in SIGNATURES:
        return None
    pattern, versions, label = SIGNATURES[len(args)]
    kinds = "".join(_kind(a) for a in args)
    if any(k != p and not (p == "i" and k == "?") for k, p in zip(kinds, pattern)):
        return None
    modern = len(args) == 18
    name_index = 12 if modern else 11
    name = args[name_index] if isinstance(args[name_index], str) else None
    code, complete = _bytes(args[6 if len(args) >= 16 else 5])
    freevars = args[-2]
    finding = CodeFinding(name=name, signature=label, candidates=(), complete=complete, n_args=len(args))
    flags = args[5 if len(args) >= 16 else 4]
    finding.flags = flags if isinstance(flags, int) and not isinstance(flags, bool) else None
    finding.params, finding.n_params = _parameters(args)
    names_arg = args[8 if len(args) >= 16 else 7]
    finding.names = tuple(n if isinstance(n, str) else "" for n in names_arg) if isinstance(names_arg, tuple) else ()
    finding.code = code
    kept = []
    for version in versions:
        why = check_bytecode(code, version, complete, len(freevars) if isinstance(freevars, tuple) else None)
        if why is None and len(args) == 16:
            table, table_complete = _bytes(args[13])
            if table_complete and complete:
                covers = _line_table_covers(table, len(code))
                if version == "3.10" and not covers:
                    why = ("its line table is a co_lnotab (it stops before the end of the bytecode), "
                           "not 3.10's co_linetable")
                elif version != "3.10" and covers:
                    why = ("its line table is a 3.10 co_linetable (it covers every bytecode byte), "
                           f"not Python {version}'s co_lnotab")
        if why is None:
            kept.append(version)
        else:
            finding.excluded[version] = why
    finding.candidates = tuple(kept)
    return finding


def foreign_code(finding: CodeFinding, version: str) -> str | None:
    """Why code another Python made would not run as written under `version` (which loads it: same
    constructor), or None when its bytecode happens to be valid there and means the same.

    Within 3.11+ the bytecode checks decide. 3.8/3.9 bytecode under 3.10 passes them more often (few
    opcodes changed) but still means something else where it jumps: 3.10 counts jump targets in
    instructions where 3.8 and 3.9 counted bytes, and 3.10's generators start with GEN_START."""
    why = check_bytecode(finding.code, version, finding.complete)
    if why is not None or version_key(version) != (3, 10) or finding.n_args != 16:
        return why
    if finding.flags is not None and finding.flags & CO_GENERATOR_LIKE:
        return ("it is a generator or coroutine compiled without the GEN_START instruction Python 3.10's "
                "generators begin with")
    table = OPCODES[version]
    jumps = sorted({table.get(op) for op in finding.code[0::2]} & JUMPS_38_310)
    if jumps:
        return (f"it jumps ({', '.join(jumps)}), and Python 3.10 counts jump targets in instructions where the "
                "Python that made it counted bytes: its jumps would land elsewhere")
    return None


def imported_modules(finding: CodeFinding, version: str) -> list[str]:
    """The modules the code imports when it runs (its IMPORT_NAME instructions), read as `version`'s bytecode."""
    table, caches = OPCODES[version], CACHES.get(version, {})
    code, names = finding.code, finding.names
    out: list[str] = []
    extended, i = 0, 0
    while i + 1 < len(code):
        name = table.get(code[i])
        arg = code[i + 1] | extended
        extended = arg << 8 if name == "EXTENDED_ARG" else 0
        if name == "IMPORT_NAME" and arg < len(names) and names[arg]:
            out.append(names[arg])
        i += 2 + 2 * caches.get(name or "", 0)
    return out


def _parameters(args: tuple) -> tuple[list[str] | None, int | None]:
    """Parameter names as inspect.signature shows them (with * and ** marks) and their count."""
    if len(args) >= 16:
        argcount, kwonly, flags, varnames = args[0], args[2], args[5], args[9]
    else:
        argcount, kwonly, flags, varnames = args[0], args[1], args[4], args[8]
    if not isinstance(varnames, tuple) or not all(isinstance(x, int) for x in (argcount, kwonly, flags)):
        return None, None
    names = [str(v) for v in varnames]
    total = argcount + kwonly
    params = names[:total]
    if flags & CO_VARARGS and len(names) > total:
        params.append("*" + names[total])
        total += 1
    if flags & CO_VARKEYWORDS and len(names) > total:
        params.append("**" + names[total])
    return params, len(params)


@dataclass
class VersionVerdict:
    version: str | None
    candidates: list[str]
    evidence: list[str]
    reasons_unknown: list[str]


def judge(findings: list[CodeFinding], other_signatures: list[int]) -> VersionVerdict:
    """Combine the findings of every code object in the pickle."""
    evidence: list[str] = []
    unknown: list[str] = []
    if not findings:
        if other_signatures:
            unknown.append("the pickle rebuilds code objects with "
                           + ", ".join(sorted({str(n) for n in other_signatures}))
                           + " arguments, a layout this table does not know")
        return VersionVerdict(None, [], evidence, unknown)
    signatures = sorted({f.signature for f in findings})
    if len(signatures) > 1:
        unknown.append("its code objects were made by different Pythons: " + "; ".join(signatures))
        return VersionVerdict(None, [], [f"code objects with the signature of {s}" for s in signatures], unknown)
    n = len(findings)
    evidence.append(f"{n} code object{'s' if n > 1 else ''} rebuilt with the code constructor of {signatures[0]}")
    allowed = [v for v in (MODERN if "3.11" in signatures[0] else POSONLY if "3.8" in signatures[0] else ())]
    candidates = [v for v in allowed if all(v in f.candidates for f in findings)]
    for version in allowed:
        if version in candidates:
            continue
        culprit = next(f for f in findings if version in f.excluded)
        where = f"`{culprit.name}`" if culprit.name else "a code object"
        evidence.append(f"not {version}: in {where}, {culprit.excluded[version]}")
    if any(not f.complete for f in findings):
        evidence.append("some bytecode is longer than the part kept for inspection; only its start was checked")
    if not allowed:
        unknown.append(f"the code objects have the layout of {signatures[0]}, older than this table (3.8+)")
        return VersionVerdict(None, [], evidence, unknown)
    if not candidates:
        newest = KNOWN_PYTHONS[-1]
        unknown.append(f"the bytecode is valid under none of {span(allowed)}: made by a Python newer than "
                       f"{newest} (which this table does not know yet) or damaged")
        return VersionVerdict(None, [], evidence, unknown)
    if len(candidates) == 1:
        evidence.append(f"all bytecode is valid for Python {candidates[0]} only")
        return VersionVerdict(candidates[0], candidates, evidence, unknown)
    evidence.append(f"all bytecode is valid, unchanged, under {span(candidates)}")
    unknown.append(f"nothing in the code tells {span(candidates)} apart: these Pythons compile it to the same "
                   "bytecode (so it most likely loads and runs under any of them)")
    return VersionVerdict(None, candidates, evidence, unknown)
