"""numerai-sandbox from Python — a notebook, a script, a test — with the command line's verdicts.

    from runner.api import run_pickle

    report = run_pickle("model.pkl")        # Numerai's conditions: the pickle's Python, 4g, 1 CPU, 10m
    report.ok                               # True when Numerai would accept the predictions
    report.status, report.reason, report.subcode, report.message, report.action
    print(report)                           # the closing lines `numerai-sandbox run` prints
    report.to_dict()                        # the JSON report (`run --json`)

`run_pickle` builds the same RunRequest and calls the same use case (runner.usecases.run_one) as
`numerai-sandbox run`, so a pickle gets the same verdict, and the same record, either way. Its options take the values
the command line takes (memory="512m", timeout="20m", python="3.12"); a bad one raises BadInput
(a ValueError naming the option) before anything runs, never SystemExit. Each run is recorded
in the run history as the command line's are (`numerai-sandbox runs list`), unless history=False
or NUMERAI_SANDBOX_NO_HISTORY=1.

The command line never imports this module, and importing it loads nothing heavy; the run
itself imports the Docker SDK, pyarrow and numpy when it starts (pandas never, on a run's path).
"""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .usecases.inputs import BadInput, check_inputs, parse_data_version, parse_duration, parse_memory
from .usecases.vocabulary import PROFILES, SUPPORTED_PYTHONS, Report

__all__ = ["BadInput", "Report", "last_runs", "load_run", "run_pickle"]

PathArg = str | os.PathLike


def run_pickle(model: PathArg, *, python: str = "auto", profile: str = "auto", data: PathArg | None = None,
               benchmarks: PathArg | None = None, data_version: str | None = None, memory: str | int = "4g",
               cpus: float | str = 1, timeout: str | float = "10m", extra_requirements: PathArg | None = None,
               force: bool = False, output: PathArg | None = None, report: PathArg | None = None,
               html: PathArg | None = None, history: bool = True, quiet: bool = True, debug: bool = False,
               keep: bool = False) -> Report:
    """Run a model pickle the way Numerai's Model Upload runs it; the report of the run.

    The options are `numerai-sandbox run`'s: python ("auto" or "3.10".."3.14"), profile, data,
    benchmarks, data_version, memory ("4g", or bytes), cpus, timeout ("10m", or seconds),
    extra_requirements, force; output writes the accepted predictions, report the JSON report,
    html the HTML page. history=False leaves the run out of the run history; quiet=False prints
    the statuses as they are entered and the verdict, as the command line does; debug adds the
    model's output and the full traceback; keep keeps the container.
    """
    from .support.console import Console
    from .usecases.run_one import keep as record, run_one
    from .usecases.vocabulary import UsageError, summary_lines

    model_path = Path(os.fspath(model))
    paths = {name: Path(os.fspath(value)) if value is not None else None
             for name, value in (("output", output), ("report", report), ("html", html))}
    request = _request(model_path, python=python, profile=profile, data=data, benchmarks=benchmarks,
                       data_version=data_version, memory=memory, cpus=cpus, timeout=timeout,
                       extra_requirements=extra_requirements, force=force, output=paths["output"], debug=debug,
                       keep=keep)
    if request.extra_requirements is not None and not request.extra_requirements.is_file():
        raise BadInput(f"extra_requirements: {request.extra_requirements} is not a file", "extra_requirements")
    check_inputs(model_path, request.data, request.benchmarks,
                 {"--output": paths["output"], "--report": paths["report"], "--html": paths["html"]})
    console = Console(stream=sys.stdout, quiet=quiet)
    try:
        result = run_one(request, console)
    except UsageError as exc:
        raise BadInput(str(exc)) from None
    for line in summary_lines(result, debug):  # with debug, the traceback was in the model's output
        console.line(line)
    kept = record(result, html=paths["html"], report_path=paths["report"], history_on=history, warn=_warn)
    if kept.html_error is not None:
        _warn(kept.html_error)
    return result


def _request(model: Path, *, python, profile, data, benchmarks, data_version, memory, cpus, timeout,
             extra_requirements, force, output=None, debug=False, keep=False):
    """A RunRequest from the API's options, each judged as the command line judges it."""
    from .usecases.vocabulary import Limits, RunRequest

    extra = Path(os.fspath(extra_requirements)) if extra_requirements is not None else None
    limits = Limits(memory_bytes=_memory(memory), cpus=_cpus(cpus), timeout_seconds=_timeout(timeout))
    request = RunRequest(model=model, python=_choice("python", python, ("auto",) + SUPPORTED_PYTHONS),
                         profile=_choice("profile", profile, PROFILES), data=_text(data), benchmarks=_text(benchmarks),
                         data_version=_parsed("data_version", data_version, parse_data_version), limits=limits,
                         output=output, debug=debug, keep=keep, extra_requirements=extra, force=force)
    if request.extra_requirements is not None and not request.extra_requirements.is_file():
        raise BadInput(f"extra_requirements: {request.extra_requirements} is not a file", "extra_requirements")
    return request


@dataclass
class CheckResult:
    """What `check` gives back: every report, in the order of the pickles, and the exit code the command
    line would end with (the worst verdict)."""

    reports: list[Report]
    exit_code: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def __iter__(self):
        return iter(self.reports)

    def __len__(self) -> int:
        return len(self.reports)

    def __repr__(self) -> str:
        lines = [f"<CheckResult exit_code={self.exit_code}: {len(self.reports)} pickle(s)>"]
        lines += [f"  {Path(str(r.model.get('path', '?'))).name}: {r.status.value}"
                  + (f" ({r.reason})" if r.reason else "") for r in self.reports]
        return "\n".join(lines)


def check(models: PathArg | Iterable[PathArg], *, jobs: int | None = None, fail_on: str = "failed",
          python: str = "auto", profile: str = "auto", data: PathArg | None = None,
          benchmarks: PathArg | None = None, data_version: str | None = None, memory: str | int = "4g",
          cpus: float | str = 1, timeout: str | float = "10m", extra_requirements: PathArg | None = None,
          force: bool = False, history: bool = True) -> CheckResult:
    """Many pickles (files, globs, directories) in parallel, each judged as run_pickle judges it alone,
    as `numerai-sandbox check` runs them: cores never shared, as many at once as the machine allows."""
    from .usecases import check as batch_check
    from .usecases.vocabulary import UsageError

    items = [models] if isinstance(models, (str, os.PathLike)) else list(models)
    try:
        paths = batch_check.expand([os.fspath(m) for m in items])
    except UsageError as exc:
        raise BadInput(str(exc), "models") from None
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise BadInput(f"jobs: {jobs!r} is not a whole number of at least 1", "jobs")
    fail_on = _choice("fail_on", fail_on, ("failed", "error"))
    template = _request(paths[0], python=python, profile=profile, data=data, benchmarks=benchmarks,
                        data_version=data_version, memory=memory, cpus=cpus, timeout=timeout,
                        extra_requirements=extra_requirements, force=force)
    check_inputs(paths[0], template.data, template.benchmarks, {})
    count, _ = batch_check.capacity(jobs, template.limits, len(paths))
    reports = batch_check.check_many(paths, template, count, history_on=history)
    return CheckResult(reports, batch_check.exit_code(reports, fail_on))


def last_runs(limit: int = 20, status: str | Iterable[str] = ()) -> list[dict[str, Any]]:
    """The run history's newest entries (what `numerai-sandbox runs list --json` prints)."""
    from .usecases import history as run_history

    return run_history.entries(limit=limit or None, statuses=[status] if isinstance(status, str) else status)


def load_run(ref: str = "last") -> Report:
    """A recorded run's report: `last`, an id or the start of one, or a model file name (its newest run)."""
    from .usecases import history as run_history

    try:
        run_id = run_history.resolve(ref)
    except run_history.NotFound as exc:
        raise LookupError(str(exc)) from None
    return run_history.load(run_id)


# ---------------------------------------------------------------- the options, judged as the CLI judges them

def _parsed(name: str, value: Any, parse) -> Any:
    if value is None:
        return None
    try:
        return parse(str(value))
    except ValueError as exc:
        raise BadInput(f"{name}={value!r}: {exc}", name) from None


def _memory(value: str | int) -> int:
    return _parsed("memory", value, parse_memory)


def _timeout(value: str | float) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 0:
            raise BadInput(f"timeout={value!r}: the timeout must be more than 0 seconds", "timeout")
        return float(value)
    return _parsed("timeout", value, parse_duration)


def _cpus(value: float | str) -> float:
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        cpus = None
    if cpus is None or isinstance(value, bool) or not cpus > 0:
        raise BadInput(f"cpus={value!r}: give a number of CPUs more than 0 (Numerai: 1)", "cpus")
    return cpus


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value in allowed:
        return value
    hint = (f' (give it as a string, e.g. {name}="3.11": the number 3.10 is 3.1)'
            if isinstance(value, (int, float)) and name == "python" else "")
    raise BadInput(f"{name}={value!r} is not one of {', '.join(allowed)}{hint}", name)


def _text(value: PathArg | None) -> str | None:
    return None if value is None else os.fspath(value)


def _warn(text: str) -> None:
    warnings.warn(text, RuntimeWarning, stacklevel=3)
