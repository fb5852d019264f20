"""Judging one pickle on the command line: the run, its closing lines, its HTML page.

`run` and `upload` both judge a pickle through here, so the verdict `upload` acts on is the one
`run` prints for the same request: the same `runner.run.run.execute`, the same closing lines.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import click

from .. import __version__
from ..support.console import Console
from ..support.units import human_bytes
from ..verdict.report import Report, summary_lines
from .common import InputError


@dataclass(frozen=True)
class Judged:
    report: Report
    exit_code: int  # the verdict's, or 3 when a Success's HTML page could not be written
    html: Path | None  # the HTML page written, if any


def judge(request, *, as_json: bool, quiet: bool, html_path: Path | None = None) -> Judged:
    """Run the request and print its verdict (on stderr with --json, so stdout keeps one JSON object)."""
    from ..run import UsageError
    from ..run.run import execute

    stream = sys.stderr if as_json else sys.stdout
    console = Console(stream=stream, quiet=quiet)
    model = request.model
    console.line(f"numerai-sandbox {__version__} · {model.name} ({human_bytes(model.stat().st_size)}) · "
                 f"Python {request.python} · {request.profile}")
    try:
        report = execute(request, console)
    except UsageError as exc:
        raise InputError(str(exc)) from exc
    console = Console(stream=stream)  # the verdict is printed even with --quiet
    for line in summary_lines(report, request.debug):
        console.line(line)
    if request.debug and report.traceback and report.reason != "internal_error" and not shown_live(report, console):
        console.line(report.traceback.rstrip())
    if report.reason == "internal_error":
        console.line("  (the traceback is in the JSON report: --json or --report PATH)")
    if request.keep and report.container.get("name"):
        console.line(f"  container kept: {report.container['name']} (docker logs/inspect it; "
                     "`numerai-sandbox clean` removes it)")
    html_failed = write_html(html_path, report, console) if html_path is not None else None
    return Judged(report, html_failed or report.exit_code, None if html_failed else html_path)


def write_html(path: Path, report: Report, console: Console) -> int | None:
    """The HTML report; failing to write it is one line and, after a Success, exit code 3 (not a traceback)."""
    from ..verdict import html

    try:
        console.line(f"  HTML report: {html.write(path, [report]).resolve()}")
    except Exception as exc:  # noqa: BLE001 - the verdict stands; the page is an extra
        click.echo(f"numerai-sandbox: error: could not write the HTML report {path}: {type(exc).__name__}: {exc}",
                   err=True)
        return report.exit_code or 3
    return None


def shown_live(report: Report, console: Console) -> bool:
    """Whether --debug's live output already showed the traceback (the harness writes it there)."""
    last = report.traceback.strip().splitlines()[-1][:200] if report.traceback.strip() else ""
    return not console.echo_cut and bool(last) and last in report.logs_tail
