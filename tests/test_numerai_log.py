"""numerai_log: every Failed verdict carries the line Numerai's log would show, in numerai-predict's own words.

No Docker: the harness's own functions (runner/sandbox/harness.py, plain standard library) make the lines
from real exceptions raised here, its frames are fed to the real diagnosis, and the verdict must carry the
line predict.py (numerai-predict 19d1769) logs for that case. tests/test_corpus.py checks the same in real
containers, one case per reason; tests/test_validate.py checks numerai-tools' messages word for word.
"""

from __future__ import annotations

import json
import pickle
import signal
from pathlib import Path

import pytest

from runner.sandbox.protocol import FrameParser
from runner.verdict.reasons import REASONS, Blame
from runner.sandbox import harness
from runner.sandbox.backend import Limits, Outcome
from runner.sandbox.protocol import read_frames
from runner.verdict import diagnose, numerai_log
from runner.verdict.context import Context, DataFacts
from runner.verdict.reasons import Verdict

MODEL = "/input/model.pkl"
PREDICTING = ("phase", {"phase": "predicting"})
DATA = ("data", {"rows": 6720, "columns": 2790, "benchmark_columns": None})


def _parser(*frames) -> FrameParser:
    parser = FrameParser(max_predictions=1 << 20)
    for kind, body in frames:
        payload = json.dumps(body).encode()
        parser.feed(f"NSBX1 {kind} {len(payload)}\n".encode() + payload)
    return parser


def _verdict(frames, outcome: Outcome | None = None, candidates=None) -> Verdict:
    data = DataFacts(frozenset({"era", "feature_alpha_beta_gamma"}), frozenset(), "round",
                              "Numerai's live data", True)
    ctx = Context("3.11", {"scikit-learn": "1.6.1", "numpy": "2.1.3", "cloudpickle": "3.1.1"}, Limits(),
                           Path("/nonexistent/model.pkl"), pickle_candidates=candidates, data=data)
    return diagnose.from_outcome(outcome or Outcome("c", exit_code=0), read_frames(_parser(("hello", {}), *frames)), ctx)


def _raised(call) -> BaseException:
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the exception is the point
        return exc
    raise AssertionError("it did not raise")


def _load_error(exc: BaseException) -> tuple:
    return ("error", {"phase": "loading", "kind": "load_error", "exception": harness.describe_exception(exc),
                      "numerai_log": harness.load_error_line(exc, "3.11")})


def _model_error(exc: BaseException, raised_in: str | None = None) -> tuple:
    described = harness.describe_exception(exc)
    if raised_in:  # as if the innermost frame were that library file (a lookup pandas made)
        described["frames"][-1]["file"] = raised_in
    return ("error", {"phase": "predicting", "kind": "model_exception", "exception": described,
                      "numerai_log": harness.model_error_line(exc)})


def _missing(live_features=None):
    return {"feature_alpha_beta_gamma": 1}["feature_retired_old_name"]


def _no_module(name):
    def load():
        raise ModuleNotFoundError(f"No module named '{name}'", name=name)
    return load


CASES = {
    "invalid_pickle": ([_load_error(_raised(lambda: pickle.loads(b"\x80\x05\x95\x10")))],
                       None, "Invalid pickle - pickle data was truncated"),
    "python_version_mismatch": ([_load_error(_raised(lambda: pickle.loads(
        b"\x80\x04cbuiltins\nint\n(K\x01K\x02K\x03tR.")))], None, "Pickle incompatible with 3.11"),
    "missing_module": ([_load_error(_raised(lambda: pickle.loads(b"\x80\x04cmymodels_nowhere\nModel\n.")))],
                       None, "Import error reading pickle - No module named 'mymodels_nowhere'"),
    "library_mismatch": ([_load_error(_raised(_no_module("sklearn.ensemble._gb_losses")))],
                         None, "Import error reading pickle - No module named 'sklearn.ensemble._gb_losses'"),
    "bad_signature": ([("model", {"kind": "function", "type": "builtins.function", "n_parameters": 3,
                                  "parameters": [{"name": n} for n in "abc"]}), DATA, PREDICTING,
                       ("error", {"phase": "predicting", "kind": "bad_signature", "model": {"kind": "function"},
                                  "numerai_log": f"Invalid pickle function - {MODEL} must have 1 or 2 arguments"})],
                      None, f"Invalid pickle function - {MODEL} must have 1 or 2 arguments"),
    "model_exception": ([DATA, PREDICTING, _model_error(_raised(lambda: 1 / 0))], None,
                        "ZeroDivisionError: division by zero"),
    "missing_columns": ([DATA, PREDICTING, _model_error(_raised(_missing),
                                                        "/opt/venv/lib/python3.11/site-packages/pandas/core/frame.py")],
                        None,
                        "KeyError: 'feature_retired_old_name'"),
    "crashed": ([DATA, PREDICTING], Outcome("c", exit_code=139), numerai_log.SEGFAULT),
    "out_of_memory": ([DATA, PREDICTING], Outcome("c", exit_code=137, oom_killed=True),
                      "Predicting on 6720 rows of live features"),
    "timeout": ([DATA, PREDICTING], Outcome("c", exit_code=137, timed_out=True),
                "Predicting on 6720 rows of live features"),
    "no_output": ([DATA, PREDICTING], Outcome("c", exit_code=0), "Predicting on 6720 rows of live features"),
}


def test_every_failed_reason_has_a_case():
    failed = {code for code, reason in REASONS.items() if reason.blame is Blame.MODEL}
    assert failed == set(CASES) | {"invalid_output"}  # invalid_output: tests/test_validate.py, rule by rule


@pytest.mark.parametrize("reason", sorted(CASES))
def test_each_failed_verdict_carries_numerai_predicts_line(reason):
    frames, outcome, line = CASES[reason]
    verdict = _verdict(frames, outcome)
    assert verdict.reason == reason, verdict.message
    assert verdict.numerai_log == line


def test_a_type_error_while_predicting_is_numerai_predicts_invalid_function():
    verdict = _verdict([DATA, PREDICTING, _model_error(_raised(lambda: len(5)))])
    assert verdict.numerai_log == "Pickle function is invalid - object of type 'int' has no len()"


def test_sys_exit_logs_nothing_after_the_predicting_line():
    verdict = _verdict([DATA, PREDICTING, _model_error(SystemExit(3))])
    assert verdict.reason == "model_exception" and verdict.numerai_log == "Predicting on 6720 rows of live features"
    shown = numerai_log.shown(verdict.reason, verdict.numerai_log)
    assert shown.startswith("Predicting on 6720 rows of live features — its last line")


def test_an_uncaught_load_error_is_the_traceback_predict_py_dies_with():
    """predict.py catches UnpicklingError, TypeError and ModuleNotFoundError while loading; anything else kills
    it with its traceback, whose last line is the log's."""
    assert harness.load_error_line(_raised(lambda: pickle.loads(b"")), "3.11") == "EOFError: Ran out of input"
    protocol = _raised(lambda: pickle.loads(b"\x80\x06N."))
    assert harness.load_error_line(protocol, "3.11") == "ValueError: unsupported pickle protocol: 6"
    assert harness.load_error_line(TypeError("code expected at most 16 arguments, got 18"), "3.10") == \
        "Pickle incompatible with 3.10"


def test_a_segfault_while_loading_of_another_pythons_code_shows_the_sites_message():
    verdict = _verdict([("phase", {"phase": "loading"})], Outcome("c", exit_code=139),
                       candidates=["3.12"])
    assert verdict.reason == "python_version_mismatch" and verdict.numerai_log == numerai_log.SEGFAULT


def test_a_model_that_returned_but_did_not_exit_ends_on_generated():
    result = ("result", {"returned_type": "pandas.core.frame.DataFrame", "rows": 6720, "in_image_failed": None})
    verdict = _verdict([DATA, PREDICTING, result, ("done", {})],
                       Outcome("c", exit_code=137, timed_out=True))
    assert verdict.reason == "timeout" and verdict.numerai_log == "Generated 6720 predictions"


def test_errors_carry_no_numerai_log():
    """Not the model's fault: Numerai would have run it; there is no line of its to show."""
    verdict = _verdict([("error", {"phase": "loading", "kind": "harness_error",
                                   "exception": {"type": "KeyError", "message": "'x'"}})], Outcome("c", exit_code=70))
    assert verdict.reason == "internal_error" and verdict.numerai_log is None


def test_terminal_line_of_a_failed_report():
    from runner.verdict.lifecycle import Status
    from runner.verdict.report import Report, summary_lines

    report = Report(Status.FAILED, "python_version_mismatch", "It cannot load.", action="Re-pickle.",
                    numerai_log="Pickle incompatible with 3.11")
    lines = summary_lines(report)
    assert "  Numerai's log: Pickle incompatible with 3.11" in lines
    assert report.to_dict()["numerai_log"] == "Pickle incompatible with 3.11"
    assert Report.from_dict(report.to_dict()).numerai_log == "Pickle incompatible with 3.11"
