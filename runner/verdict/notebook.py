"""A report as Jupyter shows it: a short rich display of the verdict, what to do, and the predictions.

Jupyter calls `_repr_markdown_` and `_repr_html_` of the Shown report the API returns. The short
display holds what a person checks after `runner.api.check(predict)`: the verdict and its reason, what
to do, the predictions' summary, where the model ran (and, in the process sandbox, that it is weaker
than Numerai's container); the whole HTML report follows, in a frame of its own (its scripts and
styles kept from the notebook's), when the html extra is installed.
"""

from __future__ import annotations

import html as escape
from dataclasses import fields
from typing import Any

from .report import Report

COLOURS = {"Success": "#1a7f37", "Failed": "#cf222e", "Error": "#9a6700"}


class Shown(Report):
    """A Report that shows itself in Jupyter (what runner.api returns); otherwise the same report."""

    def _repr_markdown_(self) -> str:
        return markdown(self)

    def _repr_html_(self) -> str:
        return html(self)


def shown(report: Report) -> Shown:
    """The same report, showing itself in Jupyter."""
    return Shown(**{f.name: getattr(report, f.name) for f in fields(report)})


def facts(report) -> list[tuple[str, str]]:
    """(label, text) pairs of the short display, in order, plain text."""
    out = [("Verdict", report.status.value + (f" ({report.reason}" + (f"/{report.subcode}" if report.subcode else "")
                                              + ")" if report.reason else ""))]
    if report.reason:
        out.append(("Why", report.message))
    if report.action:
        out.append(("What to do", report.action))
    summary = predictions(report.predictions_summary, report.n_predictions)
    if summary:
        out.append(("Predictions", summary))
    limits = report.limits or {}
    where = limits.get("sandbox") or ("container" + (" (gVisor)" if limits.get("isolation") == "gvisor" else ""))
    python = report.python_full or report.python
    out.append(("Ran in", where + (f", Python {python}" if python else "")))
    if report.peak_memory_bytes:
        from ..support.units import human_bytes

        out.append(("Peak memory", human_bytes(report.peak_memory_bytes)))
    out += [("Note", note) for note in report.notes]
    return out


def predictions(summary: dict[str, Any] | None, count: int | None) -> str:
    """The predictions in one line: how many, their range and mean, NaN and ties."""
    if not summary:
        return f"{count:,} rows" if count is not None else ""
    parts = [f"{summary.get('count', count or 0):,} rows of {summary.get('column', 'prediction')}"]
    if "min" in summary:
        parts.append(f"range {summary['min']:.4g} to {summary['max']:.4g}, mean {summary['mean']:.4g}")
    if summary.get("nan"):
        parts.append(f"{summary['nan']:,} NaN")
    if summary.get("tied_rows"):
        parts.append(f"{summary['tied_rows']:,} tied rows")
    return ", ".join(parts)


def markdown(report) -> str:
    return "\n".join(f"- **{label}**: {text}" for label, text in facts(report))


def html(report) -> str:
    colour = COLOURS.get(report.status.value, "#57606a")
    rows = "".join(
        f"<tr><th style='text-align:left;padding-right:1em;vertical-align:top'>{escape.escape(label)}</th>"
        f"<td style='text-align:left'>{escape.escape(text)}</td></tr>" for label, text in facts(report))
    short = (f"<div class='numerai-sandbox-report' style='border-left:4px solid {colour};padding-left:0.6em'>"
             f"<table>{rows}</table></div>")
    return short + full_page(report)


def full_page(report) -> str:
    """The whole HTML report in a frame, or nothing when the html extra is not installed (or fails)."""
    from . import html as page

    try:
        page.check_available()
        rendered = page.render([report])
    except Exception:  # noqa: BLE001 - the short display stands on its own
        return ""
    return (f"<details><summary>the full report</summary><iframe srcdoc=\"{escape.escape(rendered, quote=True)}\" "
            "style='width:100%;height:720px;border:1px solid #d0d7de'></iframe></details>")
