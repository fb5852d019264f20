"""The inspection report as text, for a person: what the pickle is, what made it, what it calls, what it
needs per image, and what each of Numerai's images will do with it."""

from __future__ import annotations

from ..images import numerai
from ..images.pins import EXPERIMENTAL_PYTHONS, PinError, SUPPORTED_PYTHONS, normalize, pin_set
from ..support.units import human_bytes
from .choice import compatible_pythons, numerai_additions
from .columns import ColumnNames
from .pyversions import span
from .report import Inspection

STATUS_MARKS = {"same": "=", "ok": "✓", "differs": "≠", "breaks": "✗", "missing": "-", "unknown": "?"}


def module_lines(i: Inspection) -> list[str]:
    """Per module and Python: the version Numerai's image has, marked where the standard profile lacks it;
    then, per Python, what the auto profile adds and why."""
    lines = [f"Modules, per image (Python {' | '.join(SUPPORTED_PYTHONS)}: the version in Numerai's image; "
             "+: the standard profile lacks it, auto adds it; ✗: Numerai's image lacks it):"]
    for use in i.modules:
        cells = []
        for python in SUPPORTED_PYTHONS:
            cell, standard = use.images[python].auto, use.images[python].standard
            if cell.present is None:
                cells.append("?")
            elif not cell.present:
                cells.append("✗")
            else:
                cells.append(("" if standard.present else "+")
                             + (cell.version if use.kind == "third-party" else "✓"))
        shown = ", ".join(n for n in use.names[:4])
        more = f" (+{len(use.names) - 4})" if len(use.names) > 4 else ""
        lines.append(f"  {use.package:<14} {use.kind:<11} {' | '.join(cells)}   {shown}{more}")
    loadable = compatible_pythons(i) or list(SUPPORTED_PYTHONS)
    for python in loadable:  # what the auto profile adds, in the images that can load the pickle's code
        needs = numerai_additions(i, python)
        for dist, module in needs.items():
            version = next(u.images[python].full.version for u in i.modules if u.package == module)
            named = module if normalize(module) == dist else f"{module} ({dist})"
            lines.append(f"  {python}: Numerai's image has {named} {version}; the standard profile does not; "
                         "auto adds it")
        if needs:
            lines.append(f"  {python}: {auto_summary(i.path, python, needs)}")
    return lines


def auto_summary(path: str, python: str, needs: dict[str, str]) -> str:
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
    lines += column_lines(i.columns)
    if i.modules:
        lines += module_lines(i)
    if i.recorded_versions:
        lines.append("Library versions recorded in the pickle:")
        for record in i.recorded_versions:
            cells = []
            for python in SUPPORTED_PYTHONS:
                cell = record.images.get(python)
                mark = STATUS_MARKS.get(cell.status, "?") if cell is not None else "?"
                cells.append(f"{python} {mark}{(cell.pin if cell is not None else None) or ''}")
            lines.append(f"  {record.library} {record.version}{' (inferred)' if record.inferred else ''}: "
                         + ", ".join(cells))
            notes = {cell.note for cell in record.images.values()
                     if cell.status in ("breaks", "differs") and cell.note}
            lines += [f"    · {n}" for n in sorted(notes)]
    if i.risky:
        lines.append("Warnings (what the pickle could do; not a verdict):")
        for risk in i.risky:
            when = "while loading" if risk.when == "load" else "when called"
            lines.append(f"  ! {risk.reference} {when}: {risk.why}")
    lines.append("Numerai's images (what run builds with --profile auto; only \"cannot load\" is certain, the rest "
                 "the run decides):")
    width = max((len(image_label(p)) for p in i.images), default=0)
    for p, fit in i.images.items():
        said = f" (Numerai's log: \"Pickle incompatible with {p}\")" if not fit.loadable else ""
        lines.append(f"  {image_label(p):<{width}}  {fit.load}: {fit.why}{said}")
        lines += [f"  {'':<{width}}  ✗ {blocker}" for blocker in fit.blockers]
    return lines


def image_label(python: str) -> str:
    return f"{python} (experimental)" if python in EXPERIMENTAL_PYTHONS else python


def column_lines(columns: ColumnNames) -> list[str]:
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
