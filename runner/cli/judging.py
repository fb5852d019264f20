"""How one judged pickle reads on the command line: the header, the closing lines, what was kept.

`run` and `upload` both judge a pickle through the use case (runner.usecases.run_one), so the verdict
`upload` acts on is the one `run` prints for the same request; this module only says it.
"""

from __future__ import annotations

import sys

import click

from .. import __version__
from ..support.console import Console
from ..support.units import human_bytes
from ..usecases.run_one import Kept, run_one
from ..usecases.vocabulary import Report, RunRequest, UsageError, summary_lines
from .common import InputError


def judge(request: RunRequest, *, as_json: bool, quiet: bool) -> tuple[Report, Console]:
    """Run the request and print its verdict (on stderr with --json, so stdout keeps one JSON object); the
    report and the console the verdict went to (it shows what comes after too)."""
    stream = sys.stderr if as_json else sys.stdout
    console = Console(stream=stream, quiet=quiet)
    model = request.model
    console.line(f"numerai-sandbox {__version__} · {model.name} ({human_bytes(model.stat().st_size)}) · "
                 f"Python {request.python} · {request.profile}")
    try:
        report = run_one(request, console)
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
    return report, console


def say_kept(kept: Kept, report: Report, console: Console) -> int:
    """The HTML page and the history line; the exit code (3 after a Success whose page could not be written)."""
    if kept.html is not None:
        console.line(f"  HTML report: {kept.html}")
    if kept.html_error is not None:
        click.echo(f"numerai-sandbox: error: {kept.html_error}", err=True)
    if kept.history_id:
        console.line(f"  history: numerai-sandbox runs show {kept.history_id}")
    return report.exit_code or 3 if kept.html_error is not None else report.exit_code


def warn(text: str) -> None:
    """A warning that changes no verdict (the run history could not be written, say): one line on stderr."""
    click.echo(f"numerai-sandbox: warning: {text}", err=True)


def shown_live(report: Report, console: Console) -> bool:
    """Whether --debug's live output already showed the traceback (the harness writes it there)."""
    last = report.traceback.strip().splitlines()[-1][:200] if report.traceback.strip() else ""
    return not console.echo_cut and bool(last) and last in report.logs_tail
