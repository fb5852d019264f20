"""One run, start to verdict: Pending -> Running -> Validating -> Success | Failed | Error.

Pending   reach the engine, sweep leftovers, find or build the image, stage the inputs,
          create the container (limits and isolation from engine).
Running   the harness loads the pickle and calls it; the host streams its report
          channel and logs and enforces the wall clock.
Validating the host re-reads the CSV and applies Numerai's rules (validate).
Whatever goes wrong is decided where it is caught: the model's fault is Failed, ours
or the machine's is Error, and an unexpected exception is an internal error with its
traceback in the report, never on the terminal.

A shell (`numerai-sandbox shell`) goes through the same Pending (`Run.prepare`: Python,
engine, image, data, the container's spec), then opens an interactive session in that
sandbox instead of Running a prediction.
"""

from __future__ import annotations

import math
import os
import secrets
import shlex
import stat
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

import psutil

from . import data as live_data
from .images import store as image_store
from .sandbox import engine, idle, pool
from .sandbox.docker import DockerBackend
from .verdict import diagnose, numerai_log, output, platform
from .support.console import Console
from .verdict.context import Context, DataFacts
from .verdict.ended import signal_name
from .verdict.reasons import Verdict
from .verdict.tracebacks import is_memory_error, root_cause
from .sandbox.backend import ContainerSpec, Limits, Mount, Outcome, SandboxUnavailable, StreamSink
from .inspection.analysis import (Inspection, choose_python, code_candidates, inspect_pickle, mismatch_message,
                         numerai_additions, recorded_releases, static_note)
from .verdict.lifecycle import Lifecycle, Status
from .support.machine import emulation_note
from .images.pins import DEFAULT_PYTHON, SUPPORTED_PYTHONS, PinError, PinSet, experimental, numerai_pins, pin_set
from .sandbox.protocol import WORK_PHASES, FrameParser, Frames, Returned, doing, read_frames
from .support.text import sentence
from .support.units import human_bytes
from .verdict.report import Report, unchecked_names_note

if TYPE_CHECKING:
    import pyarrow as pa

    from .verdict.submission import Submission

SANDBOX_USER = (1000, 1000)
LOG_HEAD_BYTES = 256 * 1024
TAIL_LINES = 40


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or SIGHUP) while running: treated like Ctrl-C."""


class UsageError(Exception):
    """The caller's input is unusable (exit code 2, before any status)."""


@dataclass
class RunRequest:
    model: Path
    python: str = "auto"  # or "3.10".."3.14"
    profile: str = "auto"  # or "standard", "full"
    data: str | None = None
    benchmarks: str | None = None
    data_version: str | None = None  # the dataset version of the cached round or features.json to use
    limits: Limits = field(default_factory=Limits)
    output: Path | None = None
    output_rejected: Path | None = None  # where the predictions of an invalid_output run go, for debugging
    debug: bool = False
    keep: bool = False
    extra_requirements: Path | None = None
    force: bool = False  # run even where the pickle's Python cannot load (auto never needs it)
    live: bool = True  # show elapsed time and memory while the model runs (off for --json, --quiet, check)
    prestarted: bool = True  # may be served by a pre-started sandbox made for exactly this run
    leave_prestarted: bool = False  # afterwards, start one for the next run of the same model (`run`)
    cancel: threading.Event | None = None  # set by the caller (check's Ctrl-C): stop and report interrupted


@dataclass
class Prepared:
    """What Pending readies before any container exists; a run and a shell both start from it."""

    backend: DockerBackend
    image: image_store.Image
    data: live_data.LiveData
    after: "Prefetch"  # what the host needs once the model ran, read while it runs


class Prefetch(threading.Thread):
    """What the host needs after the model ran, made ready while it runs, on the host's other core:
    the live ids read as one Arrow string array (what the predictions are validated against), the
    modules validation imports and the data's columns (what a missing
    column is judged against). Nothing of it is on the path to the container's start."""

    def __init__(self, data: live_data.LiveData):
        super().__init__(daemon=True, name="prefetch")
        self.data = data
        self.ids = None
        self.facts: DataFacts | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.ids = live_data.live_ids(self.data.live)
            self.facts = data_facts(self.data)
            from .verdict import validate

            validate.prewarm()
        except BaseException as exc:  # noqa: BLE001 - raised where the result is needed
            self.error = exc

    def result(self) -> "Prefetch":
        if self.ident is None:  # the container never started (or a shell): read it now
            self.start()
        self.join()
        if self.error is not None:
            raise self.error
        return self


class LogBuffer:
    """The model's output, bounded: the first part and the last part, with a count of what fell between."""

    def __init__(self, limit: int):
        self.head_limit = min(LOG_HEAD_BYTES, limit // 4)
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail: deque[bytes] = deque()
        self.tail_size = 0
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail.append(chunk)
            self.tail_size += len(chunk)
            while self.tail_size > self.tail_limit and self.tail:
                dropped = self.tail.popleft()
                self.tail_size -= len(dropped)
                if self.tail_size < self.tail_limit:  # keep the part of the chunk that still fits
                    keep = dropped[len(dropped) - (self.tail_limit - self.tail_size):]
                    self.tail.appendleft(keep)
                    self.tail_size += len(keep)
                    break

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + self.tail_size

    def text(self) -> str:
        middle = ""
        if self.truncated:
            middle = (f"\n[numerai-sandbox: {self.total - len(self.head) - self.tail_size:,} bytes of the "
                      "model's output dropped here]\n")
        return (bytes(self.head).decode("utf-8", "replace") + middle
                + b"".join(self.tail).decode("utf-8", "replace"))

    def last_lines(self, n: int = TAIL_LINES) -> str:
        lines = self.text().splitlines()[-n:]
        return "\n".join(line[:500] for line in lines)


class RunSink(StreamSink):
    """The container's output during a run: the harness's frames, the model's log, the live display."""

    def __init__(self, parser: FrameParser, logs: LogBuffer, console: Console, debug: bool,
                 cancel: threading.Event | None = None, live: "LiveProgress | None" = None):
        self.parser, self.logs, self.console, self.debug = parser, logs, console, debug
        self.cancel, self.live = cancel, live

    def stdout(self, chunk: bytes) -> None:
        for frame in self.parser.feed(chunk):
            if frame.kind != "phase":
                continue
            try:
                phase = frame.json().get("phase")
            except (ValueError, AttributeError):
                continue
            if phase in WORK_PHASES:
                self.console.progress(doing(phase) + "...")

    def stderr(self, chunk: bytes) -> None:
        self.logs.add(chunk)
        if self.debug:
            self.console.model_output(chunk)

    def watch_memory(self, samples) -> None:
        if self.live is not None:
            self.live.samples = samples

    def abort_reason(self) -> str | None:
        if self.cancel is not None and self.cancel.is_set():
            return "interrupted"
        return "output_too_large" if self.parser.oversized else None


class LiveProgress(threading.Thread):
    """While the model runs: the phase, elapsed time against the timeout, memory against the limit.

    Updated in place on a terminal (4 times a second); a plain line every 10 s in a log.
    """

    def __init__(self, console: Console, limits: Limits, parser: FrameParser, interval: float | None = None):
        super().__init__(daemon=True, name="live-progress")
        self.console, self.limits, self.parser = console, limits, parser
        self.interval = interval if interval is not None else 0.25 if console.tty else 10.0
        self.samples = None
        self.started = time.monotonic()
        self.done = threading.Event()

    def line(self) -> str:
        phase = doing(self.parser.phase) if self.parser.phase else "starting"
        parts = [f"{phase}... {time.monotonic() - self.started:.1f}s of {self.limits.timeout_seconds:g}s"]
        latest = self.samples.latest if self.samples is not None else None
        if latest:
            parts.append(f"memory {human_bytes(latest[1])} of {human_bytes(self.limits.memory_bytes)} "
                         f"({latest[1] / self.limits.memory_bytes:.0%})")
        return " · ".join(parts)

    def run(self) -> None:
        while not self.done.wait(self.interval):
            if self.console.tty:
                self.console.progress(self.line())
            else:
                self.console.detail(self.line())

    def stop(self) -> None:
        self.done.set()


def container_user(paths: list[Path]) -> str:
    """The non-root user that runs the model, chosen so it can read the inputs without copying them."""
    def readable_by(path: Path, uid: int, gid: int) -> bool:
        st = path.stat()
        return bool(st.st_mode & stat.S_IROTH or (st.st_gid == gid and st.st_mode & stat.S_IRGRP)
                    or (st.st_uid == uid and st.st_mode & stat.S_IRUSR))

    if all(readable_by(p, *SANDBOX_USER) for p in paths):
        return f"{SANDBOX_USER[0]}:{SANDBOX_USER[1]}"
    uid, gid = os.getuid(), os.getgid()
    if uid != 0 and all(readable_by(p, uid, gid) for p in paths):
        return f"{uid}:{gid}"
    blocked = next(p for p in paths if not readable_by(p, *SANDBOX_USER))
    mode = stat.filemode(blocked.stat().st_mode)
    raise UsageError(f"{blocked} ({mode}) is not readable by the sandbox's non-root user; make it readable "
                     f"(chmod a+r {blocked}) or run numerai-sandbox as its owner")


def sandbox_spec(request: RunRequest, image: str, python: str, data: live_data.LiveData, kind: str = "run",
                 command: list[str] | None = None, preload: tuple[str, ...] | None = None) -> ContainerSpec:
    """The sandbox of one run (or shell), whatever backend runs it: the harness's arguments, the read-only
    inputs, the limits, the user. (`check` builds its Kubernetes Jobs from the same specs.)"""
    limits = request.limits
    if command is None:
        command = (["--max-output-bytes", str(limits.max_output_bytes), "--exit-on-stdin-eof"]
                   + (["--debug"] if request.debug else []))
    return ContainerSpec(
        image=image, name=f"numerai-sandbox-{kind}-{secrets.token_hex(5)}", command=command,
        mounts=[Mount(request.model.resolve(), "/input/model.pkl"),
                Mount(data.live, "/input/live.parquet"),
                Mount(data.benchmarks, "/input/live_benchmark_models.parquet")],
        limits=limits, user=container_user([request.model, data.live, data.benchmarks]),
        environment={"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib"}, keep=request.keep,
        labels={"python": python, "purpose": kind}, preload=preload)


def other_pythons() -> dict[str, dict[str, str]]:
    """Numerai's pins for every Python we have an image for: where a module this image lacks can be had."""
    return {python: pins for python in SUPPORTED_PYTHONS if (pins := numerai_pins(python)) is not None}


class Run:
    """The state of one run while it goes; `execute` drives it and returns the report."""

    def __init__(self, request: RunRequest, console: Console, backend=None):
        self.request = request
        # Where the sandbox runs: the local engine (connected and closed by the run), or a backend the
        # caller shares between runs (e.g. check's Kubernetes backend); images are found with its engine.
        self.backend = backend
        self.console = console
        self.life = Lifecycle(listeners=[console.status])
        self.report = Report(Status.PENDING, None, "", limits=request.limits.to_dict())
        self.parser = FrameParser(max_predictions=request.limits.max_output_bytes)
        self.inspection: Inspection | None = None  # what the pickle says about itself, read without running it
        self.data: live_data.LiveData | None = None
        self._background: NextRunSandbox | None = None  # starting the next run's pre-started sandbox
        self.logs = LogBuffer(request.limits.max_log_bytes)
        self.submission: Submission | None = None  # the predictions as read back, once validated

    # ------------------------------------------------------------ the phases

    def execute(self) -> Report:
        return self._guarded(self._run, "run")

    def shell(self, terminal) -> tuple[Report, Outcome | None]:
        """Pending as for a run, then an interactive session in the same sandbox.

        Returns the report (a verdict only when the shell could not open, or was interrupted)
        and how the session ended, once it opened.
        """
        session: list[Outcome] = []
        report = self._guarded(lambda: self._shell(terminal, session), "shell")
        return report, session[0] if session else None

    def _guarded(self, body, what: str) -> Report:
        try:
            emulated = emulation_note()
            self.life.enter(Status.PENDING, emulated or "")
            self.report.notes += [emulated] if emulated else []
            body()
        except UsageError:
            raise
        except KeyboardInterrupt as exc:
            cause = f" ({exc})" if str(exc) else ""
            self._finish(Verdict("interrupted", f"The {what} was interrupted{cause} before it finished; "
                                 "its container was removed."))
        except Exception as exc:  # noqa: BLE001 - an unexpected failure is ours, reported as such
            self.report.traceback = traceback.format_exc()
            failure = (self.backend.failure_of(exc) if self.backend is not None else None) or engine.failure_of(exc)
            if failure is not None:
                self._finish(platform.from_failure(failure))
            else:
                self._finish(Verdict("internal_error", "numerai-sandbox failed unexpectedly: "
                                     + self.report.traceback.strip().splitlines()[-1][:300]))
        finally:
            if self.submission is not None:
                self.submission.discard()
            if self._background is not None:
                self._background.join(timeout=60)
                if self._background.note:  # the run's last note: which one it left, how to turn this off
                    self.report.notes.append(self._background.note)
        return self.report

    def _choose_python(self) -> str | Verdict:
        """The image's Python: read from the pickle for auto, checked against it when forced."""
        request = self.request
        found = self.inspection = inspect_pickle(request.model)
        self.report.model = {"path": str(request.model), "size_bytes": found.size_bytes, "sha256": found.sha256}
        self.report.pickle = {"python": found.python.version, "candidates": found.python.candidates,
                              "evidence": found.python.evidence, "unknown_because": found.python.reasons_unknown,
                              "serializer": found.serializer, "protocol": found.protocol,
                              "risky": [r.reference for r in found.risky]}
        # What `inspect` shows, kept for the HTML report: modules and recorded versions per image.
        self.report.pickle.update({k: v for k, v in found.to_dict().items()
                                   if k in ("modules", "recorded_versions", "callable", "images", "problems")})
        if request.python == "auto":
            choice = choose_python(found)
            self.report.pickle["choice"] = choice.reason
            if choice.python is None:  # certain: every image's code constructor raises TypeError on its code
                return Verdict("python_version_mismatch", sentence(choice.reason),
                               phase="inspecting", evidence={"pickle_python": found.python.version,
                                                             "candidates": found.python.candidates},
                               numerai_log=numerai_log.incompatible(DEFAULT_PYTHON))
            self.console.detail(f"Python {choice.python}: {choice.reason}")
            if not choice.detected or choice.substitute:
                self.report.notes.append(choice.reason)
            self.report.notes += choice.warnings
            return choice.python
        mismatch = None if request.force else mismatch_message(found, request.python)
        if mismatch:  # certain: the image's code constructor raises TypeError on the pickle's code
            self.report.python = request.python
            return Verdict("python_version_mismatch", sentence(mismatch), phase="inspecting",
                           evidence={"image_python": request.python, "pickle_python": found.python.version,
                                     "candidates": found.python.candidates},
                           numerai_log=numerai_log.incompatible(request.python))
        note = static_note(found, request.python)
        if note:  # made by another Python, loadable here: the container decides, the reading is a note
            self.console.detail(f"Python {request.python}: {note}")
            self.report.notes.append(note)
        return request.python

    def prepare(self) -> Prepared | Verdict:
        """Pending up to the container: the Python, the engine, the image and the live data.

        The caller closes the prepared backend; a Verdict means nothing is left open.
        """
        python = self._choose_python()
        if isinstance(python, Verdict):
            return python
        try:
            backend = self.backend or DockerBackend.connect()
        except engine.EngineUnavailable as exc:
            return platform.from_failure(exc.failure)
        try:
            image = self._image(backend.client, python)
            staged = self._data() if not isinstance(image, Verdict) else image
        except BaseException:
            self._close(backend)
            raise
        if isinstance(staged, Verdict):
            self._close(backend)
            return staged
        return Prepared(backend, image, *staged)

    def _close(self, backend) -> None:
        """Close a backend this run connected (one it was given is the caller's)."""
        if backend is not self.backend:
            backend.close()

    def _run(self) -> None:
        """Pending (python, engine, image, data, container) -> Running -> Validating -> verdict."""
        request = self.request
        prepared = self.prepare()
        if isinstance(prepared, Verdict):
            return self._finish(prepared)
        doubt = None
        try:
            outcome = self._contain(prepared)
            doubt = doubt_of_prestarted(outcome, self.frames) if isinstance(outcome, Outcome) else None
            if doubt is not None:
                outcome = self._confirm_cold(prepared, doubt)
        finally:
            self._close(prepared.backend)
        if isinstance(outcome, Verdict):
            return self._finish(outcome)
        found, image = self.inspection, prepared.image
        try:
            after = prepared.after.result()
        except live_data.DataError as exc:  # a file whose footer read well but whose ids do not
            return self._finish(Verdict("data_unavailable", sentence(str(exc))))
        self.report.data["rows"] = len(after.ids)
        context = Context(image.python, image.packages, request.limits, request.model, other_pythons(),
                          code_candidates(found), recorded_releases(found), numerai_pins(image.python),
                          profile=request.profile, data=after.facts)
        verdict = diagnose.from_outcome(outcome, self.frames, context) or self._validate(after.ids)
        if doubt is not None:
            self._say_confirmed(doubt, verdict)
        self._finish(verdict)

    def _confirm_cold(self, prepared: Prepared, doubt: dict) -> Outcome | Verdict:
        """Run the model again in a cold sandbox, in Numerai's order (the pickle loaded before the data is read),
        because what the pre-started one ended with may come from its data read ahead. The cold run's facts
        replace the first run's; the report keeps what the first one saw (container.prestarted_first)."""
        doubt["name"] = self.report.container.get("name")
        self.console.detail(f"{doubt['what']} in a pre-started sandbox, which read the live data before the pickle "
                            "loaded: confirming with a cold run in Numerai's order...")
        self.parser = FrameParser(max_predictions=self.request.limits.max_output_bytes)
        self.logs = LogBuffer(self.request.limits.max_log_bytes)
        self.report.traceback = None
        return self._contain(prepared, cold=True)

    def _say_confirmed(self, doubt: dict, verdict: Verdict) -> None:
        """The report says a verdict was confirmed by a cold run (or that the cold run ended otherwise)."""
        self.report.container.update(confirmed_cold=True, prestarted_first={k: v for k, v in doubt.items()
                                                                            if k != "what"})
        if verdict.reason == doubt["reason"] or (doubt["reason"] == "crashed" and "signal" in verdict.evidence):
            self.report.notes.append(f"{doubt['what']} first happened in a pre-started sandbox (its live data read "
                                     "before the pickle loaded, unlike Numerai); a cold run in Numerai's order ended "
                                     "the same way, and is the verdict")
        else:
            self.report.notes.append(f"{doubt['what']} happened in a pre-started sandbox (its live data read before "
                                     "the pickle loaded, unlike Numerai) but not in a cold run in Numerai's order: "
                                     "the verdict is the cold run's")

    def _shell(self, terminal, session: list[Outcome]) -> None:
        """Pending, then Running an interactive session instead of a prediction (no verdict after it)."""
        prepared = self.prepare()
        if isinstance(prepared, Verdict):
            if prepared.reason == "python_version_mismatch" and "--force" not in prepared.message:
                prepared.message += " (`--python X --force` opens the shell in an image anyway, to look.)"
            return self._finish(prepared)
        spec = self._spec(prepared, "shell", ["--hold"])
        spec.environment["TERM"] = shell_term()
        spec.remove_on_exit = True
        banner = shell_banner(prepared, self.request.limits)
        running = self._running_note(spec)
        try:
            session.append(prepared.backend.interact(spec, ["--shell", "--banner", banner], terminal,
                                                     on_started=lambda: self.life.enter(Status.RUNNING, running)))
        except SandboxUnavailable as exc:
            return self._finish(platform.from_failure(exc.failure))
        finally:
            prepared.backend.close()
        self.report.container.update(name=spec.name, exit_code=session[0].exit_code,
                                     oom_killed=session[0].oom_killed, timed_out=session[0].timed_out)
        self.report.peak_memory_bytes = session[0].peak_memory_bytes

    def _image(self, client, python: str) -> image_store.Image | Verdict:
        """The image to run in: checked against this machine, found, or built offline."""
        request = self.request
        memory = psutil.virtual_memory()
        if self.backend is not None and self.backend.name != "docker":
            pass  # the sandbox runs elsewhere: this machine's memory says nothing about it
        elif request.limits.memory_bytes > memory.total:
            return Verdict("host_resources", f"The memory limit ({human_bytes(request.limits.memory_bytes)}) is "
                           f"more than this machine has ({human_bytes(memory.total)}); the limit would not be "
                           "the one Numerai enforces.")
        elif request.limits.memory_bytes > memory.available:
            # Idle pre-started sandboxes hold memory that is free for this run: they go first.
            if pool.make_room(client, request.limits.memory_bytes - memory.available):
                memory = psutil.virtual_memory()
            if request.limits.memory_bytes > memory.available:
                self.report.notes.append(f"only {human_bytes(memory.available)} of memory is free on this "
                                         "machine; the model may be killed by the machine before it reaches its "
                                         "limit")
        try:
            needs = numerai_additions(self.inspection, python) if request.profile == "auto" else None
            pins = pin_set(python, request.profile, extra_requirements=request.extra_requirements, needs=needs)
            self._describe_additions(pins)
            image = image_store.find(client, pins)
            if image is None or not image_store.is_current(image, pins):
                self.console.detail(f"building the Python {python} image offline, from the local cache")
                image = image_store.ensure(client, pins, self.console.progress)
        except image_store.PackagesNotFetched as exc:
            return self._not_fetched(exc.pins, exc.missing)
        except (image_store.ImageUnavailable, PinError) as exc:
            return Verdict("image_unavailable", str(exc))
        except image_store.HostResources as exc:
            return Verdict("host_resources", sentence(str(exc)))
        self._describe_image(image)
        flag = experimental(image.python)
        self.console.detail(f"image {image.ref} · Python {image.python_full} · {image.profile}"
                            + (f" · {flag}" if flag else ""))
        return image

    def _describe_additions(self, pins: PinSet) -> None:
        """What the auto profile adds to the standard image, and why (said in Pending, kept in the report)."""
        if not pins.added:
            return
        wanted = ", ".join(f"{module} ({dist} {pins.added[dist]})" for dist, module in pins.wanted.items())
        more = len(pins.added) - len(pins.wanted)
        self.console.detail(f"auto: the standard image plus {wanted}" + (f" and {more} distribution"
                            f"{'s' if more != 1 else ''} they require" if more else "") + ", at Numerai's pins")
        self.report.notes += list(pins.notes)

    def _not_fetched(self, pins: PinSet, missing: list[str]) -> Verdict:
        """Error/packages_not_fetched, with the one command that fetches what is missing."""
        request = self.request
        command = f"numerai-sandbox images fetch --for {shlex.quote(str(request.model))}"
        command += f" --python {pins.python}" if request.python != "auto" else ""
        command += f" --extra-requirements {shlex.quote(str(request.extra_requirements))}" \
            if request.extra_requirements else ""
        return platform.packages_not_fetched(pins, missing, command)

    def _data(self) -> tuple[live_data.LiveData, Prefetch] | Verdict:
        """The live data files (fitted to the names the pickle asks for) and their ids."""
        try:
            data = live_data.resolve(self.request.data, self.request.benchmarks, self.request.data_version,
                                     wanted_columns(self.inspection))
        except live_data.DataError as exc:
            if exc.usage:
                raise UsageError(str(exc)) from exc
            return Verdict("data_unavailable", sentence(str(exc)))
        self.data = data
        self.report.data = data.to_report(None)
        self.console.detail(f"data: {data.description}")
        return data, Prefetch(data)

    def _spec(self, prepared: Prepared, kind: str, command: list[str], cold: bool = False) -> ContainerSpec:
        """The container: the same inputs, limits, user and isolation for a run and a shell (`cold`: never
        served by a pre-started sandbox)."""
        request = self.request
        return sandbox_spec(request, prepared.image.id, prepared.image.python, prepared.data, kind, command,
                            preload=self._preload() if kind == "run" and request.prestarted and not request.keep
                            and not cold else None)

    def _running_note(self, spec: ContainerSpec) -> str:
        limits = spec.limits
        self.report.container = {"name": spec.name, "kept": spec.keep, "user": spec.user}
        return (f"container {spec.name} · {limits.cpus:g} CPU · {human_bytes(limits.memory_bytes)} · "
                f"no network · {timeout_text(limits)}" + (" · gVisor" if limits.isolation == "gvisor" else ""))

    def _run_spec(self, prepared: Prepared, cold: bool = False) -> ContainerSpec:
        limits = self.request.limits
        return self._spec(prepared, "run", ["--max-output-bytes", str(limits.max_output_bytes),
                                            "--exit-on-stdin-eof"] + (["--debug"] if self.request.debug else []),
                          cold)

    def prestart(self) -> str | None:
        """Start a pre-started sandbox for this run without running it (check does so for the pickles it is
        about to run); its name, or None when this run cannot use one (a verdict before any container)."""
        prepared = self.prepare()
        if isinstance(prepared, Verdict):
            return None
        try:
            spec = self._run_spec(prepared)
            return prepared.backend.prestart(spec) if spec.preload is not None else None
        finally:
            prepared.backend.close()

    def _contain(self, prepared: Prepared, cold: bool = False) -> Outcome | Verdict:
        """Create the container (last step of Pending) and run it (Running); `cold`: not in a pre-started
        sandbox (a confirmation, already Running)."""
        request, limits = self.request, self.request.limits
        spec = self._run_spec(prepared, cold)
        running = self._running_note(spec)

        def created(container_id: str) -> None:
            self.report.container["id"] = container_id[:12]

        live = LiveProgress(self.console, limits, self.parser) if request.live and not self.console.quiet else None

        def started() -> None:
            if self.life.status is Status.PENDING:
                self.life.enter(Status.RUNNING, running)
            if prepared.after.ident is None:
                prepared.after.start()
            if live is not None:
                live.started = time.monotonic()
                live.start()

        def waiting() -> None:
            self.console.detail("waiting for a free CPU: every core runs another sandbox (cores are never "
                                "shared, so timings stay Numerai's)")

        sink = RunSink(self.parser, self.logs, self.console, request.debug, request.cancel, live)
        try:
            outcome = prepared.backend.run(spec, sink, on_started=started, on_created=created, on_waiting=waiting)
        except SandboxUnavailable as exc:
            return platform.from_failure(exc.failure)
        finally:
            if live is not None:
                live.stop()
        self._record_outcome(outcome)
        if outcome.aborted == "interrupted":
            raise KeyboardInterrupt("cancelled")
        if request.leave_prestarted and pool.serves(spec):  # prepared while this run is validated
            self._background = NextRunSandbox(spec, idle.estimate(self.report.memory_samples,
                                                                  self.report.phase_times,
                                                                  self.report.peak_memory_bytes))
            self._background.start()
        return outcome

    def _preload(self) -> tuple[str, ...]:
        """The third-party modules the pickle needs (static inspection): what a pre-started sandbox imports
        ahead, exactly those unpickling would import anyway."""
        found = self.inspection
        return tuple(sorted(u.package for u in (found.modules if found else [])
                            if u.kind == "third-party" and u.package.isidentifier())) if found else ()

    def _validate(self, live_ids: "pa.Array") -> Verdict:
        """Validating: the host re-reads the CSV and applies Numerai's rules."""
        facts = self.frames.result or Returned()
        returned = (f"{facts.rows:,} rows returned" if facts.rows is not None
                    else f"returned {facts.returned_type or '?'}")
        self.life.enter(Status.VALIDATING, returned)
        from .verdict import validate

        payload = self.frames.take_predictions()  # held once, here, until read
        submission = self.submission = validate.read_submission(payload) if payload is not None else None
        del payload
        if submission is not None:
            submission.stage(self._csv_folder())  # out of memory: on disk where a CSV may be written, else gone
        validation = validate.validate(facts, submission, live_ids)
        self.report.checks = [c.to_dict() for c in validation.checks]
        self.report.predictions_summary = validation.summary
        self.report.notes += validation.notes
        if validation.submission is not None and validation.submission.table is not None:
            self.report.n_predictions = validation.submission.rows
        verdict = output.from_validation(validation, facts)
        if verdict.reason is None and self.request.output is not None:
            self.report.predictions_path = str(write_predictions(validation.submission, self.request.output))
        return verdict

    def _csv_folder(self) -> Path | None:
        """Where the CSV's bytes wait for the verdict: beside the CSV that may be written (--output, else
        --output-rejected), or nowhere when none may."""
        paths = [p for p in (self.request.output, self.request.output_rejected)
                 if p is not None and not is_parquet(p)]
        return paths[0].resolve().parent if paths else None

    def _write_rejected(self, submission: Submission | None) -> None:
        """--output-rejected: the predictions as the model made them; they broke a rule, so they may not fit
        the format (a parquet file needs a readable CSV): then a note says why none was written."""
        path = self.request.output_rejected
        if submission is None:
            self.report.notes.append(f"no predictions to write to {path}: the model returned nothing that reads "
                                     "as predictions")
            return
        try:
            self.report.rejected_predictions_path = str(write_predictions(submission, path))
        except Exception as exc:  # noqa: BLE001 - the model's data, whatever it holds, must not become our error
            self.report.notes.append(f"the rejected predictions could not be written to {path} "
                                     f"({type(exc).__name__}: {str(exc)[:200]})")

    # ------------------------------------------------------------ filling the report

    def _describe_image(self, image: image_store.Image) -> None:
        self.report.image = image.to_dict()
        self.report.python = image.python
        self.report.python_full = image.python_full
        self.report.library_versions = image.library_versions()
        if image.substitutes:
            self.report.image["substitutes"] = image.substitutes
        if experimental(image.python):
            self.report.notes.append(f"the Python {image.python} image is {experimental(image.python)}")
        if image.stale:
            self.report.notes.append(f"{image.ref} was built from older inputs than this numerai-sandbox "
                                     f"defines; `numerai-sandbox images fetch --python {image.python}` lets it "
                                     "be rebuilt")

    def _record_outcome(self, outcome: Outcome) -> None:
        frames = self.frames = read_frames(self.parser)
        done = frames.done
        harness_peak = done.peak_rss_bytes if done is not None else None
        peaks = [p for p in (outcome.peak_memory_bytes, harness_peak) if isinstance(p, int)]
        self.report.peak_memory_bytes = max(peaks) if peaks else None
        self.report.durations["phases"] = {k: round(v, 3) for k, v in (done.durations if done else {}).items()}
        self.report.durations["container_seconds"] = round(outcome.run_seconds, 3)
        self.report.memory_samples = outcome.memory_samples
        if outcome.started_at is not None and outcome.ended_at is not None:
            self.report.phase_times = frames.phase_times(outcome.started_at, outcome.ended_at)
        self.report.container.update(cpus=outcome.cores, prestarted=outcome.prestarted, exit_code=outcome.exit_code,
                                     oom_killed=outcome.oom_killed,
                                     signal=signal_name(outcome.signal) if outcome.signal else None,
                                     timed_out=outcome.timed_out)
        self.report.phase = frames.phase
        model = frames.model
        if model is not None:
            self.report.model.update(kind=model.kind, type=model.type, parameters=model.parameter_names)
        self.report.logs_tail = self.logs.last_lines()
        self.report.logs_truncated = self.logs.truncated
        error = frames.error
        if error is not None and error.has_exception:
            self.report.traceback = error.exception.text

    def _finish(self, verdict: Verdict) -> None:
        status = Status.SUCCESS if verdict.reason is None else Status.for_blame(verdict.blame)
        report = self.report
        relaxed = self.request.limits.relaxed()
        if relaxed:
            report.notes.append(f"limits above Numerai's ({', '.join(relaxed)}): a verdict under them is not "
                                "Numerai's (1 CPU, 4 GB, 10 minutes)")
        if status is Status.SUCCESS and unchecked_names_note(report.data):
            report.notes.append(unchecked_names_note(report.data).lstrip(" ·"))
        report.status, report.reason, report.subcode = status, verdict.reason, verdict.subcode
        report.message, report.action = verdict.message, verdict.action
        report.numerai_log = verdict.numerai_log if status is Status.FAILED else None
        report.phase = verdict.phase or report.phase
        report.evidence = verdict.evidence
        if not report.logs_tail and self.logs.total:
            report.logs_tail = self.logs.last_lines()
        if verdict.reason == "invalid_output" and self.request.output_rejected is not None:
            self._write_rejected(self.submission)
        note = verdict.reason if status is Status.ERROR or status is Status.FAILED else ""
        self.life.enter(status, note + (f"/{verdict.subcode}" if verdict.subcode else ""))
        report.timeline = [{"status": e.status.value, "at": e.at, "elapsed": e.elapsed} for e in self.life.timeline]
        report.durations.update(self.life.durations())


class NextRunSandbox(threading.Thread):
    """After `run`'s model ran: a pre-started sandbox for the user's next run in the same image, where one
    is likely (runner.sandbox.idle.should_leave) and within the bound (pool.leave); started while this
    run's predictions are validated, on its own engine connection (the run's closes meanwhile). `estimate`:
    what it will hold. `note` says which one it left; a faster next run is a bonus, never a reason to fail
    this one."""

    def __init__(self, spec: ContainerSpec, estimate: int):
        super().__init__(daemon=True, name="prestart")
        self.spec, self.estimate = spec, estimate
        self.note: str | None = None

    def run(self) -> None:
        try:
            if not self.wanted():
                return
            backend = DockerBackend(engine.connect())  # no second sweep: the run's connection made one
            try:
                left = backend.leave_prestarted(self.spec, self.estimate)
                limit = pool.current_bound(backend.client)
            finally:
                backend.close()
        except Exception as exc:  # noqa: BLE001
            self.note = (f"no pre-started sandbox was left for the next run ({type(exc).__name__}: "
                         f"{str(exc).strip()[:200]})")
            return
        if left is not None and left.name is None:
            self.note = f"no pre-started sandbox was left for the next run: {left.refused}"
        elif left is not None and limit is not None:
            self.note = idle.left_note(left.name, left.estimate, left.idle_until, left.evicted, limit)

    def wanted(self) -> bool:
        """Whether a next run is likely: see idle.should_leave (this run is recorded for the next one's)."""
        mode = idle.setting()
        ci, terminal = idle.in_ci(), idle.has_terminal()
        asks = mode == "auto" and not ci and terminal
        recent = asks and idle.ran_recently(pool.recent_record(), pool.group_of(self.spec), pool.IDLE_SECONDS)
        return idle.should_leave(mode, idle.per_image(), ci, terminal, recent).leave


def doubt_of_prestarted(outcome: Outcome, frames: Frames) -> dict | None:
    """What a pre-started sandbox's run ended with that a cold run must confirm, or None.

    A pre-started sandbox read the live data before the pickle arrived; on Numerai the data is read after
    the pickle loads. Running out of memory (the kernel's kill, or a MemoryError) and a crash while loading
    may come from that difference alone, so such a verdict is not reported until a cold run in Numerai's
    order has ended the same way."""
    if not outcome.prestarted:
        return None
    phase = frames.phase
    memory_error = frames.error is not None and frames.error.has_exception and is_memory_error(
        root_cause(frames.error.exception))
    if outcome.oom_killed or memory_error:
        return {"reason": "out_of_memory", "phase": phase, "peak_memory_bytes": outcome.peak_memory_bytes,
                "what": f"out of memory while {doing(phase)}"}
    if outcome.signal is not None and not outcome.timed_out and phase == "loading":
        return {"reason": "crashed", "phase": phase, "signal": signal_name(outcome.signal),
                "what": f"a crash ({signal_name(outcome.signal)}) while loading the pickle"}
    return None


def timeout_text(limits: Limits) -> str:
    return f"timeout {limits.timeout_seconds:g}s" if math.isfinite(limits.timeout_seconds) else "no timeout"


def shell_term() -> str:
    """The user's TERM for the shell's terminal (line editing needs it), when it is a plain name."""
    term = os.environ.get("TERM", "")
    return term if term.replace("-", "").replace(".", "").isalnum() else "xterm-256color"


def shell_banner(prepared: Prepared, limits: Limits) -> str:
    """The host's lines of the shell's banner: where the user is and under which limits."""
    image = prepared.image
    timeout = (f"timeout {limits.timeout_seconds:g}s: then the container is killed"
               if math.isfinite(limits.timeout_seconds) else "no timeout (--timeout sets one)")
    return "\n".join([
        f"numerai-sandbox shell · {image.ref} · Python {image.python_full} · {image.profile}",
        f"limits: {limits.cpus:g} CPU · {human_bytes(limits.memory_bytes)} memory, no swap · no network · "
        f"read-only root (writable: /tmp, {human_bytes(limits.tmp_bytes)}) · non-root · {timeout}",
        f"data: {prepared.data.description}"])


def data_facts(data: live_data.LiveData) -> DataFacts:
    """What diagnosis judges a missing column against: the columns the model was really given."""
    return DataFacts(frozenset(live_data.live_columns(data.live)), frozenset(live_data.live_columns(data.benchmarks)),
                     data.source, data.description, data.names_checked)


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def write_predictions(submission: Submission, path: Path) -> Path:
    """The predictions: the CSV's own bytes (`id,prediction`, exactly what Numerai's image uploads), or parquet
    by suffix. Written whole or not at all (a temp file beside it, renamed)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        submission.write(tmp, parquet=is_parquet(path))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.resolve()


def execute(request: RunRequest, console: Console, backend=None) -> Report:
    return Run(request, console, backend).execute()


def wanted_columns(inspection) -> live_data.Wanted | None:
    """The column names a pickle asks for (read statically), which the default live data is fitted to."""
    columns = inspection.columns if inspection is not None else None
    return live_data.Wanted(tuple(columns.features), tuple(columns.targets),
                            tuple(columns.benchmarks)) if columns is not None else None


def kubernetes_manifests(models: list[Path], registry: str, *, python: str = "auto", profile: str = "auto",
                         limits: Limits = Limits(), data: str | None = None, benchmarks: str | None = None,
                         data_version: str | None = None, namespace: str = "default",
                         runtime_class: str | None = None) -> str:
    """The YAML a Kubernetes batch of these pickles would create (`check --backend kubernetes --dry-run`).

    Nothing runs, nothing is built or pushed, no cluster is asked: each pickle's Python is read from
    it (as `run --python auto` does), its image is the local one for that Python (or its tag, when not
    built yet), and the inputs images are named by the digest of what they will hold."""
    from .sandbox.kubernetes_manifests import ClusterOptions, manifests, to_yaml
    from .sandbox.registry import check_registry

    try:
        registry = check_registry(registry)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        client = engine.connect()
    except engine.EngineUnavailable:
        client = None
    specs = []
    try:
        for model in models:
            inspection = inspect_pickle(model)
            chosen = python
            if python == "auto":
                chosen = choose_python(inspection).python or DEFAULT_PYTHON
            try:  # the data each pickle's run would get: fitted to the columns it names
                live = live_data.resolve(data, benchmarks, data_version, wanted_columns(inspection))
            except live_data.DataError as exc:
                raise UsageError(str(exc)) from exc
            needs = numerai_additions(inspection, chosen) if profile == "auto" else None
            pins = pin_set(chosen, profile, needs=needs)
            found = image_store.find(client, pins) if client is not None else None
            image = found.id if found else image_store.runtime_tag(pins)
            specs.append(sandbox_spec(RunRequest(model=model, python=chosen, profile=profile, limits=limits),
                                      image, chosen, live))
    finally:
        if client is not None:
            client.close()
    options = ClusterOptions(registry=registry, namespace=namespace, runtime_class=runtime_class)
    return to_yaml(manifests(specs, options))
