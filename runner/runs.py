"""One run, start to verdict: Pending -> Running -> Validating -> Success | Failed | Error.

Pending   reach the engine, sweep leftovers, find or build the image, stage the inputs,
          create the container (limits and isolation from engine).
Running   the harness loads the pickle and calls it; the host streams its report
          channel and logs and enforces the wall clock.
Validating the host re-reads the CSV and applies Numerai's rules (validate).
Whatever goes wrong is decided where it is caught: the model's fault is Failed, ours
or the machine's is Error, and an unexpected exception is an internal error with its
traceback in the report, never on the terminal.
"""

from __future__ import annotations

import os
import secrets
import shlex
import stat
import threading
import traceback
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors
import pandas as pd
import psutil

from . import data as live_data
from .images import store as image_store
from .sandbox import docker as engine
from .verdict import diagnose, validate
from .console import Console
from .verdict.diagnose import Context, Verdict
from .sandbox.backend import ContainerSpec, Limits, Mount, Outcome, StreamSink
from .inspection.analysis import (Inspection, choose_python, code_candidates, inspect_pickle, mismatch_message,
                         numerai_additions, recorded_releases)
from .lifecycle import Lifecycle, Status
from .images.pins import SUPPORTED_PYTHONS, PinError, PinSet, numerai_pins, pin_set
from .protocol import FrameParser
from .verdict.report import Report

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
    python: str = "auto"  # or "3.10".."3.13"
    profile: str = "auto"  # or "standard", "full"
    data: str | None = None
    benchmarks: str | None = None
    limits: Limits = field(default_factory=Limits)
    output: Path | None = None
    debug: bool = False
    keep: bool = False
    extra_requirements: Path | None = None
    force: bool = False  # run even where the pickle's Python cannot load (auto never needs it)


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
    def __init__(self, parser: FrameParser, logs: LogBuffer, console: Console, debug: bool):
        self.parser, self.logs, self.console, self.debug = parser, logs, console, debug

    def stdout(self, chunk: bytes) -> None:
        for frame in self.parser.feed(chunk):
            if frame.kind == "phase":
                body = self.parser.last("phase") or {}
                if body.get("phase") in ("loading", "reading_data", "predicting"):
                    self.console.progress(diagnose.PHASES[body["phase"]] + "...")

    def stderr(self, chunk: bytes) -> None:
        self.logs.add(chunk)
        if self.debug:
            self.console.model_output(chunk)

    def abort_reason(self) -> str | None:
        return "output_too_large" if self.parser.oversized else None


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


def sentence(text: str) -> str:
    """A message fragment as a sentence: capitalised, with a full stop."""
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def other_pythons() -> dict[str, dict[str, str]]:
    """Numerai's pins for every Python we have an image for: where a module this image lacks can be had."""
    return {python: pins for python in SUPPORTED_PYTHONS if (pins := numerai_pins(python)) is not None}


class Run:
    """The state of one run while it goes; `execute` drives it and returns the report."""

    def __init__(self, request: RunRequest, console: Console):
        self.request = request
        self.console = console
        self.life = Lifecycle(listeners=[console.status])
        self.report = Report(Status.PENDING, None, "", limits=request.limits.to_dict())
        self.parser = FrameParser(max_predictions=request.limits.max_output_bytes)
        self.inspection: Inspection | None = None  # what the pickle says about itself, read without running it
        self.logs = LogBuffer(request.limits.max_log_bytes)

    # ------------------------------------------------------------ the phases

    def execute(self) -> Report:
        # numerai-tools takes ~1.5 s to import (scipy.stats); do it while the container runs.
        threading.Thread(target=validate.prewarm, daemon=True, name="prewarm").start()
        try:
            self.life.enter(Status.PENDING)
            self._run()
        except UsageError:
            raise
        except KeyboardInterrupt:
            self._finish(Verdict("interrupted", "The run was interrupted before it finished; "
                                 "its container was removed."))
        except Exception as exc:  # noqa: BLE001 - an unexpected failure is ours, reported as such
            self.report.traceback = traceback.format_exc()
            if engine.lost_engine(exc):
                return self._finish(Verdict("docker_unavailable", "Lost the Docker engine during the run "
                                            f"({type(exc).__name__}: {str(exc)[:200]})."))
            self._finish(Verdict("internal_error", "numerai-sandbox failed unexpectedly: "
                                 + self.report.traceback.strip().splitlines()[-1][:300]))
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
        if request.python == "auto":
            choice = choose_python(found)
            self.report.pickle["choice"] = choice.reason
            if choice.python is None:
                return Verdict("python_version_mismatch", sentence(choice.reason),
                               phase="inspecting", evidence={"pickle_python": found.python.version,
                                                             "candidates": found.python.candidates})
            self.console.detail(f"Python {choice.python}: {choice.reason}")
            if not choice.detected:
                self.report.notes.append(choice.reason)
            self.report.notes += choice.warnings
            return choice.python
        mismatch = None if request.force else mismatch_message(found, request.python)
        if mismatch:
            self.report.python = request.python
            return Verdict("python_version_mismatch", sentence(mismatch), phase="inspecting",
                           evidence={"image_python": request.python, "pickle_python": found.python.version,
                                     "candidates": found.python.candidates})
        return request.python

    def _run(self) -> None:
        """Pending (python, engine, image, data, container) -> Running -> Validating -> verdict."""
        request = self.request
        python = self._choose_python()
        if isinstance(python, Verdict):
            return self._finish(python)
        try:
            backend = engine.DockerBackend.connect()
        except engine.EngineUnavailable as exc:
            return self._finish(Verdict("docker_unavailable", sentence(str(exc))))
        try:
            image = self._image(backend.client, python)
            if isinstance(image, Verdict):
                return self._finish(image)
            staged = self._data()
            if isinstance(staged, Verdict):
                return self._finish(staged)
            data, live_ids = staged
            outcome = self._contain(backend, image, data)
        finally:
            backend.close()
        if isinstance(outcome, Verdict):
            return self._finish(outcome)
        found = self.inspection
        context = Context(image.python, image.packages, request.limits, request.model, other_pythons(),
                          code_candidates(found), recorded_releases(found), numerai_pins(image.python),
                          profile=request.profile)
        verdict = diagnose.from_engine(outcome, self.parser, context)
        if verdict is not None:
            return self._finish(verdict)
        self._finish(self._validate(live_ids))

    def _image(self, client, python: str) -> image_store.Image | Verdict:
        """The image to run in: checked against this machine, found, or built offline."""
        request = self.request
        memory = psutil.virtual_memory()
        if request.limits.memory_bytes > memory.total:
            return Verdict("host_resources", f"The memory limit ({request.limits.memory_bytes / 1024**3:.1f} GiB) is "
                           f"more than this machine has ({memory.total / 1024**3:.1f} GiB); the limit would not be "
                           "the one Numerai enforces.")
        if request.limits.memory_bytes > memory.available:
            self.report.notes.append(f"only {memory.available / 1024**3:.1f} GiB of memory is free on this "
                                     "machine; the model may be killed by the machine before it reaches its limit")
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
        self.console.detail(f"image {image.ref} · Python {image.python_full} · {image.profile}")
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
        return diagnose.packages_not_fetched(pins, missing, command)

    def _data(self) -> tuple[live_data.LiveData, pd.Series] | Verdict:
        """The live data files and their ids (which the host validates against)."""
        try:
            data = live_data.resolve(self.request.data, self.request.benchmarks)
        except live_data.DataError as exc:
            if exc.usage:
                raise UsageError(str(exc)) from exc
            return Verdict("data_unavailable", str(exc))
        live_ids = live_data.live_ids(data.live)
        self.report.data = {"source": data.source, "description": data.description, "live": str(data.live),
                            "benchmarks": str(data.benchmarks), "rows": len(live_ids)}
        self.console.detail(f"data: {data.description}")
        return data, live_ids

    def _contain(self, backend: engine.DockerBackend, image: image_store.Image, data: live_data.LiveData) -> Outcome | Verdict:
        """Create the container (last step of Pending) and run it (Running)."""
        request, limits = self.request, self.request.limits
        spec = ContainerSpec(
            image=image.id, name=f"numerai-sandbox-run-{secrets.token_hex(5)}",
            command=["--max-output-bytes", str(limits.max_output_bytes), "--exit-on-stdin-eof"]
            + (["--debug"] if request.debug else []),
            mounts=[Mount(request.model.resolve(), "/input/model.pkl"),
                    Mount(data.live, "/input/live.parquet"),
                    Mount(data.benchmarks, "/input/live_benchmark_models.parquet")],
            limits=limits, user=container_user([request.model, data.live, data.benchmarks]),
            environment={"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib"}, keep=request.keep,
            labels={"python": image.python})
        running = (f"container {spec.name} · {limits.cpus:g} CPU · {limits.memory_bytes / 1024**3:g} GiB · "
                   f"no network · timeout {limits.timeout_seconds:g}s")
        def created(container_id: str) -> None:
            self.report.container = {"name": spec.name, "id": container_id[:12], "kept": request.keep,
                                     "user": spec.user}

        sink = RunSink(self.parser, self.logs, self.console, request.debug)
        try:
            outcome = backend.run(spec, sink, on_started=lambda: self.life.enter(Status.RUNNING, running),
                                  on_created=created)
        except docker.errors.ImageNotFound as exc:
            return Verdict("image_unavailable", f"The image disappeared from Docker: {exc}")
        self._record_outcome(outcome)
        return outcome

    def _validate(self, live_ids: pd.Series) -> Verdict:
        """Validating: the host re-reads the CSV and applies Numerai's rules."""
        facts = self.parser.last("result") or {}
        returned = (f"{facts['rows']:,} rows returned" if isinstance(facts.get("rows"), int)
                    else f"returned {facts.get('returned_type', '?')}")
        self.life.enter(Status.VALIDATING, returned)
        validation = validate.validate(facts, self.parser.last("predictions"), live_ids)
        self.report.checks = [c.to_dict() for c in validation.checks]
        if validation.frame is not None:
            self.report.n_predictions = len(validation.frame)
        verdict = diagnose.from_validation(validation)
        if verdict.reason is None and self.request.output is not None:
            self.report.predictions_path = str(write_predictions(validation.frame, self.request.output))
        return verdict

    # ------------------------------------------------------------ filling the report

    def _describe_image(self, image: image_store.Image) -> None:
        self.report.image = image.to_dict()
        self.report.python = image.python
        self.report.python_full = image.python_full
        self.report.library_versions = image.library_versions()
        if image.substitutes:
            self.report.image["substitutes"] = image.substitutes
        if image.stale:
            self.report.notes.append(f"{image.ref} was built from older inputs than this numerai-sandbox "
                                     f"defines; `numerai-sandbox images fetch --python {image.python}` lets it "
                                     "be rebuilt")

    def _record_outcome(self, outcome: Outcome) -> None:
        done = self.parser.last("done") or {}
        harness_peak = done.get("peak_rss_bytes") if isinstance(done, dict) else None
        peaks = [p for p in (outcome.peak_memory_bytes, harness_peak) if isinstance(p, int)]
        self.report.peak_memory_bytes = max(peaks) if peaks else None
        self.report.durations["phases"] = {k: round(v, 3) for k, v in (done.get("durations") or {}).items()
                                           if isinstance(v, (int, float))}
        self.report.durations["container_seconds"] = round(outcome.run_seconds, 3)
        self.report.container.update(exit_code=outcome.exit_code, oom_killed=outcome.oom_killed,
                                     signal=diagnose._signal_name(outcome.signal) if outcome.signal else None,
                                     timed_out=outcome.timed_out)
        self.report.phase = self.parser.phase
        model = self.parser.last("model")
        if isinstance(model, dict):
            self.report.model.update(kind=model.get("kind"), type=model.get("type"),
                                     parameters=[p.get("name") for p in model.get("parameters") or []])
        self.report.logs_tail = self.logs.last_lines()
        self.report.logs_truncated = self.logs.truncated
        error = self.parser.last("error")
        if isinstance(error, dict) and isinstance(error.get("exception"), dict):
            self.report.traceback = error["exception"].get("text")

    def _finish(self, verdict: Verdict) -> None:
        status = Status.SUCCESS if verdict.reason is None else Status.for_blame(verdict.blame)
        report = self.report
        report.status, report.reason, report.subcode = status, verdict.reason, verdict.subcode
        report.message, report.action = verdict.message, verdict.action
        report.phase = verdict.phase or report.phase
        report.evidence = verdict.evidence
        if not report.logs_tail and self.logs.total:
            report.logs_tail = self.logs.last_lines()
        note = verdict.reason if status is Status.ERROR or status is Status.FAILED else ""
        self.life.enter(status, note + (f"/{verdict.subcode}" if verdict.subcode else ""))
        report.timeline = [{"status": e.status.value, "at": e.at, "elapsed": e.elapsed} for e in self.life.timeline]
        report.durations.update(self.life.durations())


def write_predictions(frame: pd.DataFrame, path: Path) -> Path:
    """The accepted predictions: CSV `id,prediction` as Numerai receives them, or parquet by suffix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.set_index(frame.columns[0]).to_parquet(tmp)
    else:
        frame.to_csv(tmp, index=False)
    tmp.replace(path)
    return path.resolve()


def execute(request: RunRequest, console: Console) -> Report:
    return Run(request, console).execute()
