"""Judge one pickle: the run, then what is kept of it — the HTML page, the run history, the JSON report.

`numerai-sandbox run`, `numerai-sandbox upload` and `runner.api.run_pickle` all judge through here, so a
pickle gets the same verdict and the same record however it was asked for; each front end only says it
in its own way (the command line's closing lines, the API's return value and warnings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..run import RunRequest, UsageError
from ..support.console import Console
from ..verdict.report import Report
from . import history


def check_settings() -> None:
    """The environment's settings for pre-started sandboxes (NUMERAI_SANDBOX_WARM, _WARM_MAX), judged before
    a run or check starts: a value that does not parse is a usage error."""
    from ..sandbox import idle

    try:
        idle.setting()
        idle.per_image()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def run_one(request: RunRequest, console: Console, backend=None) -> Report:
    """The run of `request`, its statuses shown on `console`; UsageError before any status."""
    from ..run.run import execute

    return execute(request, console, backend)


def displayable(report: Report) -> Report:
    """The same report, showing itself in Jupyter: verdict, reason, fix, predictions (and the HTML report when
    the html extra is installed)."""
    from ..verdict.notebook import shown

    return shown(report)


@dataclass(frozen=True)
class Kept:
    """What was kept of a run besides its report."""

    html: Path | None = None  # the HTML page, written
    html_error: str | None = None  # why the page could not be written (the verdict stands; a note says so)
    history_id: str | None = None  # its id in the run history (`runs show ID`), when recorded


def keep_report(report: Report, *, html: Path | None = None, report_path: Path | None = None,
                history_on: bool = True, batch: str | None = None,
                warn: Callable[[str], None] = lambda text: None) -> Kept:
    """The HTML page (a failure to write it is a note and `html_error`, never a lost report), the run history
    (unless `history_on` is false; NUMERAI_SANDBOX_NO_HISTORY turns it off everywhere), then the JSON report."""
    written, error = write_html(html, report) if html is not None else (None, None)
    run_id = history.record(report, html=written, batch=batch, warn=warn) if history_on else None
    if report_path is not None:
        report.write(report_path)
    return Kept(written, error, run_id)


def write_html(path: Path, report: Report | list[Report]) -> tuple[Path | None, str | None]:
    """(the page written, or None and why not): one report's page, or one page for many (check)."""
    from ..verdict import html

    reports = report if isinstance(report, list) else [report]
    try:
        return html.write(path, reports).resolve(), None
    except Exception as exc:  # noqa: BLE001 - the verdict stands; the page is an extra
        error = f"could not write the HTML report {path}: {type(exc).__name__}: {exc}"
        if not isinstance(report, list):
            report.notes.append(error)
        return None, error
