"""The fuzzers' one doorway into numerai-sandbox: every entry point they drive is wrapped here, once.

The run pipeline is being reshaped (typed steps, typed frames); when an entry point moves, this module
changes and nothing else does. Each target takes one input, drives the code a real command runs on it,
and returns the verdict that code gave — or raises NotOrdinary when there was none worth the name:

- an exception that escaped (what would be a traceback on the user's terminal),
- Error/internal_error (numerai-sandbox asking for a bug report),
- an exit code outside the command's own (inspect: 0/1; run: 0/1/3; reading a --data file: 0/2),
- a non-zero exit without a reason, or more than MAX_SECONDS on one input.

Targets:
  inspect_bytes        `inspect` (and the static reading every run does first) on a pickle's bytes
  read_output          the host's reading of a container's output, pure: frames, facts, predictions
  judge_output         the same through a whole run (runner.run.run.execute) with a replaying backend:
                       the report filled, the summary printed, the JSON written — needs the engine
  read_predictions     the predictions CSV against the live ids: Numerai's rules, --output's writers
  read_live_data       a --data live.parquet that may not be one
  cli                  any of the above's command through `python -m runner` in a subprocess
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import subprocess
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fuzz_inputs import ContainerOutput

ROOT = Path(__file__).resolve().parent.parent
MAX_SECONDS = 2.0
RUN_EXITS = {0, 1, 3}


@dataclass(frozen=True)
class Verdict:
    """What a command said of one input: its exit code and the reason (code or first problem)."""

    exit_code: int
    reason: str
    seconds: float


class NotOrdinary(AssertionError):
    """An input that did not get an ordinary verdict: a finding, to be fixed and kept as a regression test."""

    def __init__(self, what: str, detail: str):
        super().__init__(f"{what}: {detail}")
        self.what, self.detail = what, detail


@contextlib.contextmanager
def _judged(target: str):
    """Whatever escapes the code under test is a host traceback (the finding), never the fuzzer's crash."""
    try:
        yield
    except NotOrdinary:
        raise
    except BaseException as exc:  # noqa: BLE001 - MemoryError, RecursionError, SystemExit included
        raise NotOrdinary("host traceback", f"{target}: {type(exc).__name__}: {exc}\n"
                          + traceback.format_exc()[-3000:]) from exc


def _ordinary(verdict: Verdict, exits: set[int]) -> Verdict:
    if verdict.exit_code not in exits:
        raise NotOrdinary("unexpected exit code", f"{verdict.exit_code} ({verdict.reason})")
    if verdict.exit_code != 0 and not verdict.reason:
        raise NotOrdinary("no reason", f"exit {verdict.exit_code} without one")
    if verdict.reason == "internal_error":
        raise NotOrdinary("internal_error", verdict.reason)
    if verdict.seconds > MAX_SECONDS:
        raise NotOrdinary("slow", f"{verdict.seconds:.2f}s (over {MAX_SECONDS:g}s)")
    return verdict


# ---------------------------------------------------------------- inspect

def inspect_bytes(data: bytes, workdir: Path) -> Verdict:
    """`numerai-sandbox inspect FILE` on these bytes, plus what `run` derives from the reading before any
    container: the Python it picks, what auto adds, the mismatch and note per image, the columns named."""
    from runner.images.pins import SUPPORTED_PYTHONS
    from runner.inspection.analysis import (choose_python, code_candidates, inspect_pickle, mismatch_message,
                                            numerai_additions, recorded_releases, render, static_note)

    path = workdir / "model.pkl"
    path.write_bytes(data)
    started = time.perf_counter()
    with _judged("inspect"):
        found = inspect_pickle(path)
        render(found)
        json.dumps(found.to_dict(), indent=2, default=str)
        choice = choose_python(found)
        for python in SUPPORTED_PYTHONS:
            mismatch_message(found, python)
            static_note(found, python)
        if choice.python is not None:
            numerai_additions(found, choice.python)
        code_candidates(found)
        recorded_releases(found)
        _fitted_data(found)
    seconds = time.perf_counter() - started
    reason = "a complete pickle" if found.is_pickle else (found.problems[0] if found.problems else "")
    if not found.is_pickle and len(data) <= ORACLE_BYTES and well_formed(data) \
            and not any(check in problem for check in LOADER_CHECKS for problem in found.problems):
        raise NotOrdinary("disagrees with the unpickler", f"Python's unpickler (its globals stood in for) loads "
                          f"the stream to its STOP, inspect says: {reason}")
    return _ordinary(Verdict(0 if found.is_pickle else 1, reason, seconds), {0, 1})


# The differential check: a stream Python's own unpicklers load to their STOP — with every global they name
# resolved to an inert stand-in class, so nothing is imported or run — is a complete pickle, and inspect must
# say so; unless inspect stopped at its budget. Both unpicklers: the C one (what pandas.read_pickle uses) reads
# a FRAME that does not end on an opcode's end in its own way (a line stops at the frame's end), the Python one
# refuses it; inspect reads frames as pickletools does, and such streams (which no pickler writes) are left out,
# as are streams over ORACLE_BYTES.
ORACLE_BYTES = 64 * 1024
LOADER_CHECKS = ("stopped walking",)


class _StandIn:
    """Whatever a global names, inert: called, built, appended to and indexed without doing anything."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass

    def append(self, item):
        pass

    def extend(self, items):
        pass

    def __setitem__(self, key, value):
        pass

    def __call__(self, *args, **kwargs):
        return _StandIn()


def _inert(unpickler: type) -> type:
    class Inert(unpickler):
        def find_class(self, module, name):
            return _StandIn

        def persistent_load(self, pid):
            return None

    return Inert


_UNPICKLERS = (_inert(pickle.Unpickler), _inert(pickle._Unpickler))  # C, and pure Python


def well_formed(data: bytes) -> bool:
    import pickletools

    try:  # what the unpicklers would allocate must be what the stream holds: its lengths read, its memo small
        warnings.simplefilter("ignore", DeprecationWarning)  # genops on a STRING's strange escapes
        for op, arg, _pos in pickletools.genops(data):
            if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and isinstance(arg, int) and not 0 <= arg < 100_000:
                return False  # the C unpickler makes its memo that long at once (an index of 2**30: 8 GiB)
    except Exception:  # noqa: BLE001 - a length the stream does not hold, an opcode that is none
        return False
    quiet, sys.unraisablehook = sys.unraisablehook, lambda unraisable: None  # the C unpickler's own complaints
    try:
        for unpickler in _UNPICKLERS:
            unpickler(io.BytesIO(data), buffers=()).load()
    except BaseException:  # noqa: BLE001 - whatever an unpickler refuses (RecursionError included)
        return False
    finally:
        sys.unraisablehook = quiet
    return True


def _fitted_data(found) -> None:
    """The synthetic live data's layout fitted to the names the pickle holds (what a run would generate)."""
    from runner.data import synthetic

    columns = found.columns
    synthetic.fit_to_model(_base_layout(), list(columns.features), list(columns.targets), list(columns.benchmarks))


@lru_cache(maxsize=1)
def _base_layout():
    from runner.data import synthetic

    return synthetic.base_layout()


# ---------------------------------------------------------------- the container's output, read by the host

@lru_cache(maxsize=1)
def live_ids() -> list[str]:
    """The ids of the synthetic live data every run without --data gets (made once, then cached)."""
    from runner import data

    return [str(i) for i in data.live_ids(data.synthetic_default().live).to_pylist()]


@lru_cache(maxsize=1)
def _live_array():
    import pyarrow as pa

    return pa.array(live_ids(), pa.string())


def _context():
    from runner.sandbox.backend import Limits
    from runner.verdict.context import Context

    return Context("3.11", {"numpy": "2.1.3", "pandas": "2.3.1", "scikit-learn": "1.6.1"}, Limits(),
                            ROOT / "tests" / "fuzz_inputs.py", {}, ["3.11"], {}, None, profile="standard")


def _outcome(output: ContainerOutput, prestarted: bool = False):
    from runner.sandbox.backend import Outcome

    now = time.time()
    return Outcome("numerai-sandbox-run-fuzz", exit_code=output.exit_code, oom_killed=output.oom_killed,
                   timed_out=output.timed_out, run_seconds=1.5, peak_memory_bytes=output.peak_memory_bytes,
                   cores=[0], prestarted=prestarted, started_at=now - 1.5, ended_at=now,
                   memory_samples=[[0.0, 1_000_000], [1.0, 2_000_000]])


def read_output(output: ContainerOutput) -> Verdict:
    """The host's reading of what a container sent, without a run around it: the frames fed in the chunks
    they came in, every question the host asks of them, the verdict from the engine's facts and the frames,
    then the predictions through Numerai's rules."""
    from runner.run.prestart import doubt_of_prestarted
    from runner.sandbox.backend import Limits
    from runner.sandbox.protocol import FrameParser, read_frames
    from runner.verdict import diagnose
    from runner.verdict.lifecycle import EXIT_CODES, Status

    started = time.perf_counter()
    with _judged("read_output"):
        parser = FrameParser(max_predictions=Limits().max_output_bytes)
        for chunk in output.chunks():
            parser.feed(chunk)
            parser.phase  # noqa: B018 - what the live display reads while the container runs
        frames = read_frames(parser)  # once the container ended: the frames as types
        now = time.time()
        frames.phase_times(now - 1.5, now)
        doubt_of_prestarted(_outcome(output, prestarted=True), frames)
        verdict = diagnose.from_outcome(_outcome(output), frames, _context())
        if verdict is None:
            payload = frames.take_predictions()
            verdict = _judge_predictions(payload, frames.result)
            if verdict.reason is None and payload is None:
                raise NotOrdinary("Success without predictions", "no predictions frame came, yet the verdict is "
                                  "Success")
        status = Status.SUCCESS if verdict.reason is None else Status.for_blame(verdict.blame)
    return _ordinary(Verdict(EXIT_CODES[status], verdict.reason or "", time.perf_counter() - started), RUN_EXITS)


def _judge_predictions(payload, facts, workdir: Path | None = None):
    from runner.sandbox.protocol import Returned
    from runner.verdict import output, validate

    facts = facts or Returned()
    submission = validate.read_submission(payload) if payload is not None else None
    validation = validate.validate(facts, submission, _live_array())
    verdict = output.from_validation(validation, facts)
    if workdir is not None and validation.submission is not None:  # --output / --output-rejected
        for name in ("predictions.csv", "predictions.parquet"):
            try:
                validation.submission.write(workdir / name, parquet=name.endswith(".parquet"))
            except ValueError:
                pass  # "cannot be read as a table": the run notes it and writes nothing
    return verdict


def read_predictions(payload: bytes, workdir: Path) -> Verdict:
    """The predictions CSV a model sent, read as Numerai reads it and judged by its rules against the live
    ids; then written as --output writes it (CSV, parquet)."""
    from runner.verdict.lifecycle import EXIT_CODES, Status

    from runner.sandbox.protocol import Returned

    facts = Returned("pandas.core.frame.DataFrame", exact_dataframe=True, index_levels=1,
                     first_column_dtype="float64")
    started = time.perf_counter()
    with _judged("read_predictions"):
        verdict = _judge_predictions(payload, facts, workdir)
        status = Status.SUCCESS if verdict.reason is None else Status.for_blame(verdict.blame)
    return _ordinary(Verdict(EXIT_CODES[status], verdict.reason or "", time.perf_counter() - started), RUN_EXITS)


# ---------------------------------------------------------------- a whole run, its container replayed

class ReplayHost:
    """Everything a replayed run needs once: the engine (its image is found as a run finds it), a small
    pickle of this Python, the request. The container is the only thing replaced."""

    def __init__(self, client, workdir: Path):
        import cloudpickle

        from runner.run import RunRequest
        from runner.sandbox.backend import Limits

        def predict(live_features):
            return live_features.iloc[:, :1]

        self.client, self.workdir = client, workdir
        self.model = workdir / "replayed.pkl"
        self.model.write_bytes(cloudpickle.dumps(predict))
        self.request = RunRequest(model=self.model, python="3.11", profile="standard", limits=Limits(), live=False,
                                  prestarted=False, leave_prestarted=False)
        from fuzz_inputs import frame, run_frames

        # A replay that cannot reach its Validating (no image, no data) would judge nothing: say so now.
        normal = ContainerOutput(b"".join(frame(kind, body) for kind, body in run_frames(live_ids())), [])
        verdict = judge_output(normal, self)
        if verdict.exit_code != 0:
            raise RuntimeError(f"a replayed run of a model that passes ended with {verdict.reason}: is the Python "
                               "3.11 standard image built?")


def replay_backend(client, output: ContainerOutput):
    """A backend whose sandbox is a recording: the output is fed to the run's sink as a container's would be
    (stopping where the sink asks the container to be killed), and the engine's facts are the recording's."""
    from runner.sandbox.backend import Backend

    class Replay(Backend):
        name = "replay"

        def __init__(self):
            self.client = client

        def run(self, spec, sink, on_started=lambda: None, on_created=lambda sandbox_id: None,
                on_waiting=lambda: None):
            on_created("f" * 64)
            on_started()
            aborted = None
            for chunk in output.chunks():
                sink.stdout(chunk)
                aborted = sink.abort_reason()
                if aborted:
                    break
            sink.stderr(output.stderr)
            outcome = _outcome(output)
            outcome.container, outcome.aborted = spec.name, aborted
            return outcome

    return Replay()


def judge_output(output: ContainerOutput, host: ReplayHost) -> Verdict:
    """A whole `run` (runner.run.run.execute) whose container is replayed: the pickle inspected, the image found
    in the engine, the data staged, the output read, the report filled and printed and written as JSON."""
    from runner.support.console import Console
    from runner.run.run import execute
    from runner.verdict.report import summary_lines

    from runner.usecases import history

    terminal = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")  # what stdout does with text
    started = time.perf_counter()
    with _judged("judge_output"):
        console = Console(stream=terminal)
        report = execute(host.request, console, replay_backend(host.client, output))
        for line in summary_lines(report, debug=False) + summary_lines(report, debug=True):
            console.line(line)
        json.loads(report.to_json())
        report.write(host.workdir / "report.json")
        history.record(report)
    if report.reason == "internal_error":
        raise NotOrdinary("internal_error", f"{report.message}\n{report.traceback or ''}"[-3000:])
    if report.reason is None and not report.n_predictions:
        raise NotOrdinary("Success without predictions", f"Success with {report.n_predictions!r} predictions")
    verdict = Verdict(report.exit_code, report.reason or "", time.perf_counter() - started)
    return _ordinary(verdict, RUN_EXITS)


# ---------------------------------------------------------------- a live.parquet that may not be one

def read_live_data(data: bytes, workdir: Path) -> Verdict:
    """`--data FILE`: the checks before a run starts, then the ids and columns the host reads from it."""
    from runner import data as live_data

    path = workdir / "live.parquet"
    path.write_bytes(data)
    started = time.perf_counter()
    with _judged("read_live_data"):
        try:
            live_data.check_option(str(path), "--data")
            live_data.live_ids(path)
            live_data.live_columns(path)
            verdict = Verdict(0, "", time.perf_counter() - started)
        except live_data.DataError as exc:
            verdict = Verdict(2 if exc.usage else 3, str(exc), time.perf_counter() - started)
    return _ordinary(verdict, {0, 2})


# ---------------------------------------------------------------- the command line itself

def cli(*args: str, env: dict | None = None, timeout: float = 120) -> tuple[int, str, str]:
    """`python -m runner ARGS` in a subprocess: (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "runner", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), timeout=timeout, cwd=ROOT)
    return proc.returncode, proc.stdout, proc.stderr


def cli_inspect(data: bytes, workdir: Path) -> Verdict:
    """`numerai-sandbox inspect FILE --json` as a user runs it: exit 0 or 1, one JSON object, no traceback."""
    path = workdir / "model.pkl"
    path.write_bytes(data)
    started = time.perf_counter()
    code, out, err = cli("inspect", path, "--json")
    seconds = time.perf_counter() - started
    if "Traceback" in err:
        raise NotOrdinary("host traceback", err[-3000:])
    try:
        shown = json.loads(out)
    except ValueError as exc:
        raise NotOrdinary("no JSON object", f"{exc}: {out[:200]!r} {err[-500:]!r}") from exc
    reason = "a complete pickle" if code == 0 else "; ".join(shown.get("problems") or [])
    # A process's start-up (~0.2 s) is not the input's cost: the in-process target holds the 2 s bound.
    return _ordinary(Verdict(code, reason, min(seconds, MAX_SECONDS)), {0, 1})
