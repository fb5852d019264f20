"""The line Numerai's log would show for a Failed verdict: numerai-predict's own words beside ours.

A user who saw a line on Numerai's site should find the same words here. They come from
Numerai's own code, read at numerai-predict commit 19d1769 (predict.py) and numerai-tools
0.5-0.7 (submissions.py), never made up:

- in the container, the harness logs predict.py's line for what it saw happen (a load error,
  the parameter count, the model's exception, an in-image check) and reports it in its frames
  (`numerai_log`): those words are taken as they are, since the harness ran the same steps on
  the same exception in the same image;
- a run stopped before any container (a code constructor the image's Python does not take, so
  unpickling raises TypeError) gets predict.py's line for a TypeError while loading;
- a failed upload rule gets numerai-tools' assertion message for it;
- a segmentation fault gets what Numerai's site shows for one (predict.py itself prints nothing);
- a process killed by the kernel, the clock or another signal, or one that just exits, logs
  nothing more: the line is then the last one predict.py logged before (one of its progress
  lines), and `shown` says so when it is printed.
"""

from __future__ import annotations

from typing import Any

SEGFAULT = "Segmentation fault! Ensure python and library versions match our environment."
MODEL = "/input/model.pkl"  # where the harness loads the pickle from, as its log lines name it
LIVE, BENCHMARKS = "/input/live.parquet", "/input/live_benchmark_models.parquet"
# predict.py's lines for its in-image checks (the harness reports the exact one, with the returned type).
PREDICT_CHECKS = {
    "returned_none": "Pickle function is invalid - returned None",
    "not_dataframe": "Pickle function is invalid - returned {returned} instead of pd.DataFrame",
    "empty": "Pickle function returned 0 predictions",
    "nan": "Pickle function returned at least 1 NaN prediction",
    "out_of_range": "Pickle function returned invalid predictions. Ensure values are between 0 and 1.",
}
# numerai-tools' validate_submission_numerai: the assertion message of each rule (0.5.0 and later).
UPLOAD_CHECKS = {
    "bad_headers": "invalid_submission_headers: headers must be one of ['id'] and one of ['prediction', 'probability']",
    "nan_ids": "invalid_submission_ids: Submission must not contain NaNs in the id column.",
    "duplicate_ids": "invalid_submission_ids: Duplicates detected in id for live period.",
    "missing_ids": "invalid_submission_ids: Not enough stocks submitted. Are you using the latest live ids or live "
                   "universe?",
    "values_out_of_range": "invalid_submission_values: values must be between 0 and 1 exclusive",
    "values_nan": "invalid_submission_values: submission must not contain NaNs",
    "constant": "invalid_submission_values: submission must have non-zero standard deviation",
}
# The beginnings of predict.py's progress lines: a log that ends on one of them ended without an error line.
PROGRESS = ("Running numerai-predict:", "Loading model ", "Loading live features ", "Predicting on ", "Generated ")
LAST_LINE = {
    "out_of_memory": "the kernel killed the process at the memory limit",
    "timeout": "the process was killed at the time limit",
    "crashed": "a signal killed the process",
    "python_version_mismatch": "a signal killed the process",
    "no_output": "the process ended without another word",
    "invalid_output": "predict.py found nothing wrong; the failure is in what it would upload",
}


def incompatible(python: str) -> str:
    """predict.py's line for a TypeError while loading the pickle."""
    return f"Pickle incompatible with {python}"


def progress_line(phase: str | None, python: str, rows: Any = None, predictions: Any = None) -> str:
    """The last line predict.py logged when its process stopped while in `phase`."""
    if phase in ("writing", "done"):
        return f"Generated {predictions if predictions is not None else '?'} predictions"
    if phase in ("predicting", "checking"):
        return f"Predicting on {rows if rows is not None else '?'} rows of live features"
    if phase == "reading_benchmarks":
        return f"Loading live features {BENCHMARKS}"
    if phase == "reading_data":
        return f"Loading live features {LIVE}"
    if phase == "loading":
        return f"Loading model {MODEL}"
    return f"Running numerai-predict:latest - Python {python}"  # GIT_REF: Numerai's deployed one is not known here


def after_run(outcome, frames, python: str) -> str:
    """The line for a verdict the container's end decided (before any validation): `outcome` the engine's
    facts (runner.sandbox.backend.Outcome), `frames` the harness's (runner.sandbox.protocol.Frames)."""
    result = frames.result
    if outcome.signal is not None and not outcome.oom_killed and not outcome.timed_out:
        import signal

        if outcome.signal == signal.SIGSEGV:
            return SEGFAULT
    killed = outcome.oom_killed or outcome.timed_out or outcome.signal is not None
    error = frames.error
    if not killed and error is not None and error.numerai_log:
        return error.numerai_log
    if not killed and result is not None and result.numerai_log:
        return result.numerai_log
    if frames.finished and result is not None:
        return progress_line("done", python, frames.rows, result.rows)
    return progress_line(frames.phase, python, frames.rows)


def after_validation(rule: str | None, facts, detail: str = "") -> str | None:
    """The line for predictions that broke `rule` (`detail`: the check's own words): predict.py's in-image
    check, or numerai-tools' upload check; for a rule of our own (the output cap, an unreadable CSV),
    predict.py's last line. `facts`: the harness's result frame (runner.sandbox.protocol.Returned)."""
    from .validate import NAN_VALUES

    if rule is None:
        return None
    if rule == "values_out_of_range" and NAN_VALUES in detail:  # numerai-tools asserts no NaN before the range
        return UPLOAD_CHECKS["values_nan"]
    if rule in PREDICT_CHECKS:
        said = facts.in_image_log if facts.in_image_failed == rule else None
        return said or PREDICT_CHECKS[rule].format(returned=_class_repr(facts.returned_type))
    if rule in UPLOAD_CHECKS:
        return UPLOAD_CHECKS[rule]
    if rule == "not_numeric" and facts.in_image_log:
        return facts.in_image_log
    if rule == "unwritable" and facts.numerai_log:
        return facts.numerai_log
    return progress_line("done", "", predictions=facts.rows)


def _class_repr(dotted: Any) -> str:
    """str(type(x)) for a dotted name, as predict.py's %s formats it: <class 'pandas.core.series.Series'>."""
    name = str(dotted or "?")
    return f"<class '{name.removeprefix('builtins.')}'>"


def shown(reason: str | None, line: str | None) -> str | None:
    """The line as printed: a progress line says that nothing followed it, and why."""
    if not line:
        return None
    if line.startswith(PROGRESS):
        return f"{line} — its last line: {LAST_LINE.get(reason or '', 'predict.py logs nothing about this')}"
    return line
