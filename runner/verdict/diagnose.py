"""From facts to a verdict: the ladder, one rung after another, the first that holds decides.

Facts come from three places that are judged differently. The engine's facts (exit code, OOM flag, our
own timeout kill: runner.sandbox.backend.Outcome) cannot be forged by the model. The harness's facts
(phase, exception, traceback: runner.sandbox.protocol.Frames) come from the model's process: they
explain a failure, never turn a failure into a success. The pickle file itself, read without unpickling
it (runner/inspection/), says which Python made it and which library versions wrote into it
(runner.verdict.context.Context).

The rungs, in order: the platform could not run the sandbox (runner/verdict/platform.py); the clock; the memory limit; the output
cap; the harness's error report (loading: runner/verdict/loading.py; the model's call:
runner/verdict/exceptions.py); a result whose CSV could not be sent (runner/verdict/output.py); else how
the process ended (runner/verdict/ended.py). None: the model returned, and validation decides.

Every message says what happened and, where the reason's own action is not enough, what to do about
this particular case; the evidence holds what the message names.
"""

from __future__ import annotations

from ..sandbox.backend import Outcome
from ..sandbox.protocol import ErrorReport, Frames, doing
from . import ended, numerai_log, platform
from .context import Context
from .exceptions import bad_signature, classify_model_exception
from .loading import classify_load_error
from .output import unsent_predictions
from .reasons import Blame, Verdict
from .tracebacks import first_line


def from_outcome(outcome: Outcome, frames: Frames, ctx: Context) -> Verdict | None:
    """A verdict for a run that ended before its predictions could be validated, else None; a Failed one
    carries the line Numerai's log would show for it."""
    verdict = ladder(outcome, frames, ctx)
    if verdict is not None and verdict.blame is Blame.MODEL:
        verdict.numerai_log = numerai_log.after_run(outcome, frames, ctx.python)
    return verdict


def ladder(outcome: Outcome, frames: Frames, ctx: Context) -> Verdict | None:
    if outcome.failure is not None:  # the platform could not start it, or stopped it: nothing the model did
        return platform.from_failure(outcome.failure, {"exit_code": outcome.exit_code, "phase": frames.phase})
    if outcome.timed_out:
        return ended.timed_out(frames, ctx)
    if outcome.oom_killed:
        return ended.out_of_memory(outcome, frames, ctx)
    if outcome.aborted or frames.oversized:
        return ended.over_output_cap(frames, ctx)
    if frames.error is not None:
        return from_error(frames.error, ctx)
    if frames.finished and frames.result is not None:
        return unsent_predictions(frames.result, ctx)  # None: the model returned, validation decides
    return ended.ended_without_result(outcome, frames, ctx)


def from_error(error: ErrorReport, ctx: Context) -> Verdict:
    """The harness reported the run's end: which kind of failure decides which half of diagnosis judges it."""
    exc, phase = error.exception, error.phase
    evidence = {"phase": phase, "numerai_log": error.numerai_log, "exception": exc.summary()}
    if error.kind == "load_error":
        return classify_load_error(exc, ctx, evidence)
    if error.kind == "bad_signature":
        return bad_signature(error.model, exc, phase, evidence)
    if error.kind == "data_error":
        return Verdict("data_unavailable", f"The image could not read the live data: {exc.type}: "
                       f"{exc.message or ''}", phase=phase, evidence=evidence)
    if error.kind == "harness_error":
        return Verdict("internal_error", f"numerai-sandbox's harness failed while {doing(phase)}: "
                       f"{exc.type}: {first_line(exc.message)} (a model that patches the "
                       "harness's modules or streams can cause this too).", phase=phase, evidence=evidence)
    return classify_model_exception(exc, ctx, evidence)
