"""What the pickle could do and what stands in its way, in words: references that could do harm while
loading or when called (warnings, never verdicts), and the problems its stream shows for Numerai's loader."""

from __future__ import annotations

from pathlib import Path

from .facts import PickleFacts, is_function, key_of, name_of
from .pickle_ops import Call
from .report import Risk
from .rules import RISKY_CODE_NAMES, RISKY_MODULES, risk_of


def risks(facts: PickleFacts, modules: dict[str, set[str]]) -> list[Risk]:
    """Each risky reference once per moment (load, call): named globals, resolved calls, code that runs while
    loading, risky modules the code uses, risky names its code mentions."""
    found: list[Risk] = []
    seen: set[tuple[str, str]] = set()

    def add(reference: str, when: str, why: str) -> None:
        if (reference, when) not in seen:
            seen.add((reference, when))
            found.append(Risk(reference, when, why))

    for module, attr in sorted(facts.walk.globals):
        dotted = f"{module}.{attr}"
        why = risk_of(dotted)
        if why:
            add(dotted, "load", why)
    for call in facts.walk.calls:
        resolved = name_of(call.func)
        if resolved and isinstance(call.func, Call):
            why = risk_of(resolved)
            if why:
                add(resolved, "load", why)
        if call.kind == "reduce" and is_function(call.func):
            finding, state = facts.function_parts(call.func)
            name = key_of(state, "__qualname__") or (finding.name if finding else "a function")
            add(f"{name}()", "load", "calls a function from inside the pickle while loading: its code runs "
                                     "as soon as the pickle is opened")
    for package in sorted(modules):
        for name in sorted(modules[package]):
            module, _, how = name.partition(" (")
            if how and module in RISKY_MODULES:
                add(module, "call", "the function's code imports this module" if how.startswith("imported")
                    else "the function's code can use this module")
    for finding in facts.code_findings.values():
        for attr in finding.names:
            if attr in RISKY_CODE_NAMES:
                add(RISKY_CODE_NAMES[attr], "call", f"`{finding.name}` mentions {attr}")
    return found


def stream_problems(facts: PickleFacts, serializer: str, path: Path) -> list[str]:
    """The walk's own problems, with what its stream means for Numerai's loader (pandas.read_pickle)."""
    walk = facts.walk
    problems = list(walk.problems)
    if serializer == "not a pickle":
        from .filetype import sniff  # the same description a failed run gives

        problems.insert(0, f"not a pickle: it {sniff(path)}")
    if serializer == "joblib":
        problems.append("written by joblib.dump with numpy arrays: Numerai loads with "
                        "pandas.read_pickle, which cannot read joblib's array sections; save with "
                        "cloudpickle.dump instead")
    if walk.out_of_band_buffers:
        problems.append(f"uses {walk.out_of_band_buffers} out-of-band buffer(s) (protocol 5 "
                        "buffer_callback): a plain load without the buffers fails")
    if walk.persistent_ids:
        problems.append(f"holds {walk.persistent_ids} persistent id(s) (torch.save-style): "
                        "pandas.read_pickle cannot resolve them")
    if walk.extension_codes:
        problems.append(f"uses {walk.extension_codes} copyreg extension code(s), registered only "
                        "in the process that wrote it")
    if walk.complete and walk.trailing_bytes:
        problems.append(f"{walk.trailing_bytes:,} bytes follow the pickle's end; loading reads only "
                        "the first pickle and ignores them")
    if any(m == "__main__" for m, _ in walk.globals):
        names = sorted(a for m, a in walk.globals if m == "__main__")
        problems.append(f"refers to {', '.join('__main__.' + n for n in names[:5])} by name: that "
                        "code is not in the pickle and __main__ in the image does not have it "
                        "(pickle it with cloudpickle, from the script or notebook that defines it)")
    if walk.memo_dropped or walk.calls_dropped:
        problems.append("the pickle is too large to follow every object: some later references were "
                        "not resolved (results are partial)")
    return list(dict.fromkeys(problems))
