"""Many pickles at once, each judged exactly as `run` judges it alone.

`check` expands files, globs and directories into pickles, runs them in parallel —
as many at once as the engine's cores and the host's memory allow for the per-run
limits (cores are never shared: runner.sandbox.cpus) — through the very same Run as
`run`, and gathers the reports. Its exit code is the worst verdict (Error > Failed >
Success), or only Error with fail_on="error". A Ctrl-C stops every sandbox; the runs
not finished are Error/interrupted.
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import history
from ..support.console import Console
from ..support.units import human_bytes
from ..verdict.lifecycle import EXIT_CODES, Entry, Status
from ..run import RunRequest, UsageError
from ..run.run import Run, never_ran
from ..sandbox.pool import enabled as pool_enabled
from ..verdict.report import Report

PICKLE_SUFFIXES = (".pkl", ".pickle")
SEVERITY = {Status.SUCCESS: 0, Status.FAILED: 1, Status.ERROR: 2}


def expand(items: list[str]) -> list[Path]:
    """Files, globs and directories (searched recursively for .pkl/.pickle) as a list of pickles, in order."""
    found: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PICKLE_SUFFIXES)
            if not matches:
                raise UsageError(f"{item}: no .pkl or .pickle file in this directory")
        elif path.exists():
            matches = [path]
        elif glob.has_magic(item):
            matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(item), recursive=True) if Path(m).is_file())
            if not matches:
                raise UsageError(f"{item}: the pattern matches no file")
        else:
            raise UsageError(f"{item}: no such file or directory")
        found += matches
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise UsageError("no pickle to check")
    return unique


def parallel_jobs(requested: int | None, cpus: float, memory_bytes: int, cores: int, host_memory: int,
                  count: int) -> tuple[int, str]:
    """How many runs at once: bounded by the cores (each run has its own) and memory / the per-run limit."""
    by_cores = max(1, cores // max(1, math.ceil(cpus)))
    by_memory = max(1, host_memory // max(1, memory_bytes))
    bound = min(by_cores, by_memory, count)
    if requested is None:
        return bound, f"{bound} at once ({cores} cores, {human_bytes(host_memory)} of memory)"
    if requested > min(by_cores, by_memory):
        limit = "cores" if by_cores <= by_memory else "memory"
        return bound, f"{bound} at once (--jobs {requested} asks for more than this machine's {limit} allow)"
    return min(requested, count), f"{min(requested, count)} at once"


@dataclass
class Item:
    """One pickle of the batch as the display sees it."""

    index: int
    model: Path
    status: Status | None = None
    note: str = ""
    elapsed: float = 0.0
    report: Report | None = None


@dataclass
class Batch:
    models: list[Path]
    template: RunRequest  # every option but the model
    jobs: int
    on_change: Callable[[Item], None] = lambda item: None
    history: bool = True  # record every run in the run history, under one batch id
    items: list[Item] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    batch_id: str = field(default_factory=lambda: "check-" + secrets.token_hex(4))
    prestart: bool = True  # ready a pre-started sandbox `jobs` pickles ahead of the running ones
    backend: object = None  # another backend for every run (Kubernetes); None: this machine's engine
    _ahead: list[threading.Thread] = field(default_factory=list)
    _started: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.items = [Item(i, m) for i, m in enumerate(self.models)]

    def run(self) -> list[Report]:
        try:
            return self._run_all()
        finally:
            for thread in list(self._ahead):
                thread.join(timeout=60)
            self._discard_unused()

    def _run_all(self) -> list[Report]:
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="check") as pool:
            futures = [pool.submit(self._one, item) for item in self.items]
            try:
                for future in futures:
                    while True:
                        try:
                            future.result(timeout=0.2)  # short waits keep the main thread free for Ctrl-C
                            break
                        except TimeoutError:
                            continue
            except KeyboardInterrupt:
                self.cancel.set()
                for future in futures:
                    future.cancel()
                pool.shutdown(wait=True, cancel_futures=True)
        return [self._report_of(item) for item in self.items]

    def _one(self, item: Item) -> None:
        if self.cancel.is_set():
            return
        self._prestart_ahead(item.index + self.jobs)
        request = dataclasses.replace(self.template, model=item.model, live=False, cancel=self.cancel,
                                      leave_prestarted=False)
        console = _ItemConsole(self, item)
        report = Run(request, console, self.backend).execute()
        if self.history:
            history.record(report, batch=self.batch_id)
        item.report = report
        self.on_change(item)

    def _prestart_ahead(self, index: int) -> None:
        """While this pickle runs, ready a pre-started sandbox for the one `jobs` places later (it prepares at
        the lowest CPU weight, so the running models keep their cores)."""
        if (not self.prestart or self.backend is not None or self.template.backend != "docker"
                or index >= len(self.items) or not pool_enabled()):
            return

        def start() -> None:
            request = dataclasses.replace(self.template, model=self.items[index].model, live=False)
            try:
                name = Run(request, Console(quiet=True)).prestart()
            except Exception:  # noqa: BLE001 - a faster next run is a bonus, never a reason to fail one
                return
            if name:
                self._started.append(name)

        thread = threading.Thread(target=start, daemon=True, name=f"ahead-{index}")
        self._ahead.append(thread)
        thread.start()

    def _discard_unused(self) -> None:
        """The pre-started sandboxes this check started that no run took (a cancelled check, a failed start)."""
        if not self._started:
            return
        from ..sandbox import engine
        from ..sandbox.docker import DockerBackend

        try:
            backend = DockerBackend.connect()
        except engine.EngineUnavailable:
            return
        try:
            for name in self._started:
                backend.discard_prestarted(name)
        finally:
            backend.close()

    def _report_of(self, item: Item) -> Report:
        if item.report is not None:
            return item.report
        # Never started (cancelled first): an interrupted run, as `run` reports one.
        item.report = never_ran(dataclasses.replace(self.template, model=item.model),
                                "The check was interrupted before this pickle ran.")
        item.status = item.report.status
        return item.report


class _ItemConsole(Console):
    """A run's console inside a batch: nothing printed, every status passed to the batch's display."""

    def __init__(self, batch: Batch, item: Item):
        super().__init__(quiet=True)
        self.batch, self.item = batch, item

    def status(self, entry: Entry) -> None:
        self.item.status, self.item.note, self.item.elapsed = entry.status, entry.note, entry.elapsed
        self.batch.on_change(self.item)

    def progress(self, text: str) -> None:
        self.item.note = text.strip()
        self.batch.on_change(self.item)

    def waiting(self, text: str) -> None:
        self.item.note = "waiting for a free CPU"
        self.batch.on_change(self.item)


def exit_code(reports: list[Report], fail_on: str = "failed") -> int:
    """The worst verdict's exit code; with fail_on="error", Failed models do not fail the check."""
    status = worst(reports)
    if fail_on == "error" and status is Status.FAILED:
        return 0
    return EXIT_CODES[status]


def worst(reports: list[Report]) -> Status:
    return max((r.status for r in reports), key=lambda s: SEVERITY[s], default=Status.SUCCESS)


# ---------------------------------------------------------------- the use case: what the command line and the API call

def machine_room() -> tuple[int, int]:
    """The engine's cores, and the memory the runs may have: what is available, plus what idle pre-started
    sandboxes hold (free for the runs: they give it up when a run needs it). This machine's cores and memory
    when the engine cannot be asked yet (the runs will say why)."""
    import psutil

    from ..sandbox import engine, pool
    from ..sandbox.docker import DockerBackend
    from ..support.machine import local_cores

    available = psutil.virtual_memory().available
    try:
        backend = DockerBackend.connect()
    except engine.EngineUnavailable:
        return local_cores(), available
    try:
        return backend.cores(), available + pool.held_memory(backend.client)
    finally:
        backend.close()


def capacity(requested: int | None, limits, count: int, cluster: bool = False) -> tuple[int, str]:
    """How many runs at once, and why: on a cluster, the Jobs asked for (20 by default); here, what the cores and
    the memory allow for the per-run limits (parallel_jobs)."""
    if cluster:
        jobs = min(requested or 20, count)
        return jobs, f"{jobs} Jobs at once on the cluster"
    cores, memory = machine_room()
    return parallel_jobs(requested, limits.cpus, limits.memory_bytes, cores, memory, count)


def checked_inputs(models: list[Path], data: str | None, benchmarks: str | None,
                   outputs: dict[str, Path | None]) -> None:
    """The batch's data options and the files it will write, judged before anything starts (UsageError)."""
    from .. import data as live_data
    from .inputs import BadInput, check_outputs

    inputs = set(models)
    for option, value in (("--data", data), ("--benchmarks", benchmarks)):
        if value is not None:
            try:
                inputs.add(live_data.check_option(value, option))
            except live_data.DataError as exc:
                raise UsageError(str(exc)) from exc
    try:
        check_outputs(inputs, outputs)
    except BadInput as exc:
        raise UsageError(str(exc)) from exc


def connect_cluster(registry: str, namespace: str | None, isolation: str):
    """The Kubernetes backend (UsageError without the kubernetes extra; SandboxUnavailable when the cluster
    cannot be reached or used)."""
    from ..sandbox import engine

    try:
        from ..sandbox.kubernetes import KubernetesBackend
    except ImportError as exc:
        raise UsageError(f"--backend kubernetes needs the kubernetes extra: pip install 'numerai-sandbox[kubernetes]' "
                         f"({exc})") from exc
    return KubernetesBackend.connect(engine.connect(), registry, namespace=namespace, isolation=isolation)


def dry_run(models: list[Path], registry: str, template: RunRequest, namespace: str | None = None) -> str:
    """`check --backend kubernetes --dry-run`: the manifests the check would create, nothing run."""
    from ..run.plan import kubernetes_manifests

    return kubernetes_manifests(models, registry, python=template.python, profile=template.profile,
                                limits=template.limits, data=template.data, benchmarks=template.benchmarks,
                                data_version=template.data_version, namespace=namespace or "default")


def check_many(models: list[Path], template: RunRequest, jobs: int, *, backend=None,
               on_change: Callable[[Item], None] = lambda item: None, history_on: bool = True) -> list[Report]:
    """Every pickle judged as `run` judges it alone, `jobs` at once; each recorded in the run history under one
    batch id (unless `history_on` is false)."""
    return Batch(models, template, jobs, on_change=on_change, history=history_on, backend=backend).run()


def write_reports(reports: list[Report], names: list[str], junit_path: Path | None,
                  html_path: Path | None) -> tuple[Path | None, Path | None]:
    """check's JUnit XML and its one HTML page for every model, where asked: (the JUnit file, the page)."""
    from ..verdict import html, junit

    if junit_path is not None:
        junit.write(junit_path, reports, names)
    return (junit_path.resolve() if junit_path is not None else None,
            html.write(html_path, reports).resolve() if html_path is not None else None)
