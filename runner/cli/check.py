"""`numerai-sandbox check PKL...`: many pickles in parallel, a live line per model, a summary, JUnit."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import click

from ..support.console import COLOURS
from ..support.units import human_bytes
from ..usecases.vocabulary import BACKENDS, NUMERAI_LIMITS, Limits, RunRequest, SandboxUnavailable, Status, UsageError
from .common import EXIT_HELP, InputError, fail, warm_settings

SHARED_RUN_OPTIONS = ("python", "force", "profile", "extra_requirements", "data", "data_version", "benchmarks",
                      "memory", "cpus", "timeout", "isolation")


@click.command(epilog=EXIT_HELP)
@click.argument("pickles", nargs=-1, required=True, metavar="PKL...")
@click.option("--jobs", "-j", type=click.IntRange(min=1), metavar="N",
              help="Runs at once (default: as many as the cores and the memory allow for the limits).")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write a JUnit XML report (one testcase per pickle) for the CI system to show.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write one HTML page with every model's report (needs numerai-sandbox[html]).")
@click.option("--json", "as_json", is_flag=True, help="Print every report as one JSON object on stdout.")
@click.option("--fail-on", type=click.Choice(["failed", "error"]), default="failed", show_default=True,
              help="failed: exit non-zero for a Failed or an Error model; error: only for an Error.")
@click.option("--numerai-limits", is_flag=True,
              help="Refuse limits more generous than Numerai's (1 CPU, 4 GB, 10 minutes).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary.")
@click.option("--backend", type=click.Choice([*BACKENDS, "kubernetes"]), default="docker", show_default=True,
              metavar="BACKEND", envvar="NUMERAI_SANDBOX_BACKEND", show_envvar=True,
              help="docker: this machine's engine; process: confined child processes, no engine (weaker than a "
              "container); auto: the engine when it answers, else process; kubernetes: one Job per pickle on the cluster "
              "of your kubeconfig (needs --registry and numerai-sandbox[kubernetes]).")
@click.option("--registry", metavar="HOST[:PORT][/PATH]",
              help="kubernetes: the registry the cluster pulls from (`images push --registry` puts the images there).")
@click.option("--namespace", metavar="NAME", help="kubernetes: the namespace of the Jobs (default: the kubeconfig's).")
@click.option("--dry-run", is_flag=True, help="kubernetes: print the manifests the check would create, run nothing.")
def check(pickles: tuple[str, ...], jobs: int | None, junit_path: Path | None, html_path: Path | None,
          as_json: bool, fail_on: str, numerai_limits: bool, quiet: bool, backend: str, registry: str | None,
          namespace: str | None, dry_run: bool, **run_options) -> None:
    """Check many pickles (files, globs, directories) in parallel, each exactly as `run` judges it.

    Exit code: the worst verdict (0 Success, 1 Failed, 3 Error); with --fail-on error, Failed
    models do not fail the check.
    """
    from ..usecases import check as batch_check

    try:
        models = batch_check.expand(list(pickles))
    except UsageError as exc:
        raise InputError(str(exc)) from exc
    limits = Limits(memory_bytes=run_options["memory"], cpus=run_options["cpus"],
                    timeout_seconds=run_options["timeout"], isolation=run_options["isolation"])
    if backend == "kubernetes" and not registry:
        raise InputError("--backend kubernetes needs --registry HOST[:PORT][/PATH]: the registry the cluster pulls "
                         "from (`numerai-sandbox images push --registry ...` puts our images there)")
    if backend != "kubernetes" and (registry or namespace or dry_run):
        raise InputError("--registry, --namespace and --dry-run are for --backend kubernetes")
    if numerai_limits and limits.relaxed():
        raise InputError(f"--numerai-limits: {', '.join(limits.relaxed())} is more than Numerai gives "
                         f"(1 CPU, {human_bytes(NUMERAI_LIMITS.memory_bytes)}, 10 minutes)")
    template = RunRequest(model=models[0], python=run_options["python"], profile=run_options["profile"],
                          data=run_options["data"], data_version=run_options["data_version"],
                          benchmarks=run_options["benchmarks"], limits=limits,
                          extra_requirements=run_options["extra_requirements"], force=run_options["force"],
                          backend="docker" if backend == "kubernetes" else backend)
    try:
        batch_check.checked_inputs(models, template.data, template.benchmarks,
                                   {"--junit": junit_path, "--html": html_path})
        if dry_run:
            click.echo(batch_check.dry_run(models, registry, template, namespace), nl=False)
            return
    except UsageError as exc:
        raise InputError(str(exc)) from exc
    warm_settings()
    cluster = None
    if backend == "kubernetes":
        try:
            cluster = batch_check.connect_cluster(registry, namespace, limits.isolation)
        except UsageError as exc:
            raise InputError(str(exc)) from exc
        except SandboxUnavailable as exc:
            fail(str(exc))
    count, why = batch_check.capacity(jobs, limits, len(models), cluster=cluster is not None)
    stream = sys.stderr if as_json else sys.stdout
    display = CheckDisplay(stream, models, quiet)
    display.header(f"numerai-sandbox check · {len(models)} pickle(s) · {why}")
    display.start()
    try:
        reports = batch_check.check_many(models, template, count, backend=cluster, on_change=display.update)
    finally:
        display.stop()
    names = [display.name(m) for m in models]
    for line in summary_table(reports, names):
        click.echo(line, file=stream)
    code = batch_check.exit_code(reports, fail_on)
    junit, page = batch_check.write_reports(reports, names, junit_path, html_path)
    if junit is not None:
        click.echo(f"JUnit report: {junit}", file=stream)
    if page is not None:
        click.echo(f"HTML report: {page}", file=stream)
    if as_json:
        click.echo(json.dumps({"status": batch_check.worst(reports).value, "exit_code": code, "fail_on": fail_on,
                               "counts": {s.value: sum(r.status is s for r in reports)
                                          for s in (Status.SUCCESS, Status.FAILED, Status.ERROR)},
                               "reports": [r.to_dict() for r in reports]}, indent=2, default=str))
    sys.exit(code)


def summary_table(reports, names: list[str]) -> list[str]:
    rows = [("MODEL", "PYTHON", "STATUS", "REASON", "PREDICT", "PEAK MEMORY")]
    for report, name in zip(reports, names):
        predict = (report.durations.get("phases") or {}).get("predicting")
        reason = (report.reason or "") + (f"/{report.subcode}" if report.subcode else "")
        rows.append((name, report.python or "?", report.status.value, reason or "-",
                     f"{predict:.2f}s" if isinstance(predict, (int, float)) else "-",
                     human_bytes(report.peak_memory_bytes) if report.peak_memory_bytes else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [""] + ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    counts = {s: sum(r.status is s for r in reports) for s in (Status.SUCCESS, Status.FAILED, Status.ERROR)}
    lines.append(f"{len(reports)} checked: {counts[Status.SUCCESS]} Success, {counts[Status.FAILED]} Failed, "
                 f"{counts[Status.ERROR]} Error")
    for report, name in zip(reports, names):
        if report.status is not Status.SUCCESS:
            lines.append(f"  {name}: {report.status.value} ({report.reason}): {report.message}")
            if report.numerai_log:
                lines.append(f"    Numerai's log: {report.numerai_log_shown}")
    return lines


class CheckDisplay:
    """One line per model: the running ones redrawn in place on a terminal (with their clocks), a
    permanent line as each finishes; in a log, a plain line per status change."""

    def __init__(self, stream, models: list[Path], quiet: bool):
        self.stream, self.quiet, self.models = stream, quiet, models
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.common = _common_parent(models)
        self.active: dict[int, tuple[object, float]] = {}  # index -> (item, when it started)
        self.done: set[int] = set()
        self.printed: dict[int, Status | None] = {}  # in a log: the last status printed per model
        self._drawn = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, daemon=True, name="check-display")
        self._started = time.monotonic()

    def name(self, model: Path) -> str:
        try:
            return str(Path(model).relative_to(self.common)) if self.common else str(model)
        except ValueError:
            return str(model)

    def header(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(text + "\n")
            self.stream.flush()

    def start(self) -> None:
        if self.tty and not self.quiet:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._lock:
            self._clear()

    def _paint(self, status: Status | None) -> str:
        text = f"{status.value if status else 'queued':<10}"
        return f"\x1b[{COLOURS[status.value]}m{text}\x1b[0m" if self.tty and status else text

    def update(self, item) -> None:
        if self.quiet:
            return
        with self._lock:
            if item.index in self.done:
                return
            if item.report is not None:  # finished: its verdict is known
                self.done.add(item.index)
                self.active.pop(item.index, None)
                self._clear()
                reason = f" ({item.report.reason})" if item.report is not None and item.report.reason else ""
                self.stream.write(f"[{len(self.done)}/{len(self.models)}] {self._paint(item.status).rstrip()} "
                                  f"{self.name(item.model)}{reason}  {item.elapsed:.1f}s\n")
                self._draw()
                return
            first = item.index not in self.active
            if first:
                self.active[item.index] = (item, time.monotonic())
            if self.tty:
                self._clear()
                self._draw()
            elif first or item.status is not self.printed.get(item.index):
                self.printed[item.index] = item.status
                self.stream.write(f"[{len(self.done)}/{len(self.models)}] {self._paint(item.status).rstrip()} "
                                  f"{self.name(item.model)}  {item.note}".rstrip() + "\n")
                self.stream.flush()

    def _clear(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\x1b[1A\x1b[2K" * self._drawn + "\r")
        self._drawn = 0

    def _draw(self) -> None:
        if self.tty:
            now = time.monotonic()
            lines = [f"  {self._paint(item.status)} {now - since:6.1f}s  {self.name(item.model)}  {item.note}"[:160]
                     for item, since in sorted(self.active.values(), key=lambda pair: pair[1])]
            lines.append(f"  {len(self.done)}/{len(self.models)} done · {now - self._started:.0f}s")
            self.stream.write("\n".join(lines) + "\n")
            self._drawn = len(lines)
        self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(0.25):
            with self._lock:
                self._clear()
                self._draw()


def _common_parent(models: list[Path]) -> Path | None:
    """The folder every model is in, so the table names them short."""
    import os

    try:
        return Path(os.path.commonpath([str(Path(m).parent) for m in models]))
    except ValueError:
        return None
