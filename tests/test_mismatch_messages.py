"""Load errors whose text says another Python made the pickle, whatever the exception's type: "unsupported
pickle protocol", "code expected at most", "bad marshal data" — each a python_version_mismatch. What
Numerai's log shows for them is predict.py's own line (numerai-predict 19d1769): "Pickle incompatible with
3.X" for the TypeError, the traceback's last line for the ValueErrors it does not catch. One real pickle
provokes each:

- a pickle whose protocol byte says 6 (what a future Python's pickle would write), in the 3.11 image;
- marshalled code written by Python 3.10, in the 3.11 image (pyenv's CPython 3.10 makes it);
- a cloudpickled function of Python 3.11 loaded by Python 3.10: in the 3.10 image (make test-all), and
  always by pyenv's CPython 3.10 on the host, whose exception (described by our own harness code) is
  then judged by the diagnosis as it would be after a run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, image_for, pythons_under_test, pyenv_python, run_cli

HARNESS = ROOT / "runner" / "sandbox" / "harness.py"
MARSHALLED = """
import marshal, sys, types, cloudpickle

class Reduce:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args
    def __reduce__(self):
        return self.fn, self.args

def predict(live_features):
    return live_features.iloc[:, :1].rank(pct=True).set_axis(["prediction"], axis=1)

code = Reduce(marshal.loads, marshal.dumps(predict.__code__))
with open(sys.argv[1], "wb") as handle:
    cloudpickle.dump(Reduce(types.FunctionType, code, Reduce(dict)), handle)
"""
LOAD_AND_DESCRIBE = """
import importlib.util, json, pickle, sys
spec = importlib.util.spec_from_file_location("harness", sys.argv[1])
harness = importlib.util.module_from_spec(spec)
spec.loader.exec_module(harness)
try:
    with open(sys.argv[2], "rb") as handle:
        pickle.load(handle)
except BaseException as exc:
    print(json.dumps(harness.describe_exception(exc)))
"""


def make_predict():
    """A predict function cloudpickle keeps by value (a local function, as a notebook's would be)."""
    def predict(live_features):
        return live_features.iloc[:, :1].rank(pct=True).set_axis(["prediction"], axis=1)
    return predict


def cloudpickle_path(tmp_path: Path) -> Path:
    """A copy of this interpreter's cloudpickle (pure Python) for another CPython to import."""
    import cloudpickle

    lib = tmp_path / "lib"
    shutil.copytree(Path(cloudpickle.__file__).parent, lib / "cloudpickle")
    return lib


def with_python(version: str, tmp_path: Path, script: str, *args: str) -> subprocess.CompletedProcess:
    python = pyenv_python(version)
    if python is None:
        pytest.skip(f"pyenv has no CPython {version} here")
    return subprocess.run([str(python), "-s", "-c", script, *map(str, args)], capture_output=True, text=True,
                          check=True, env={"PYTHONPATH": str(cloudpickle_path(tmp_path)), "PATH": "/usr/bin:/bin"})


def function_of_311(tmp_path: Path) -> Path:
    """A predict function cloudpickled by this Python 3.11 (18-argument code objects)."""
    import cloudpickle

    assert sys.version_info[:2] == (3, 11), "the test suite runs on Python 3.11"
    path = tmp_path / "py311_function.pkl"
    path.write_bytes(cloudpickle.dumps(make_predict()))
    return path


def assert_mismatch(report: dict, rule: str, numerai_line: str) -> None:
    assert (report["status"], report["reason"]) == ("Failed", "python_version_mismatch"), report["message"]
    assert report["evidence"]["mismatch_text"] == rule and rule in report["message"]
    assert report["numerai_log"] == numerai_line


# ---------------------------------------------------------------- real pickles in the images

def test_unsupported_pickle_protocol(client, image311, tmp_path):
    import cloudpickle

    data = cloudpickle.dumps(make_predict(), protocol=5)
    model = tmp_path / "protocol6.pkl"
    model.write_bytes(b"\x80\x06" + data[2:])  # as a Python whose pickle writes protocol 6 would start it
    result = run_cli("run", model, "--json", "--python", "3.11")
    assert result.code == 1 and "Traceback" not in result.stderr
    assert_mismatch(result.report, "unsupported pickle protocol", "ValueError: unsupported pickle protocol: 6")


def test_bad_marshal_data(client, image311, tmp_path):
    model = tmp_path / "py310_marshal.pkl"
    with_python("3.10", tmp_path, MARSHALLED, model)
    result = run_cli("run", model, "--json", "--python", "3.11", "--force")
    assert result.code == 1 and "Traceback" not in result.stderr
    assert_mismatch(result.report, "bad marshal data", "ValueError: bad marshal data (unknown type code)")


def test_code_expected_at_most_in_the_310_image(client, tmp_path):
    if "3.10" not in pythons_under_test():
        pytest.skip("the Python 3.10 image is not part of this test run (TEST_PYTHONS)")
    image_for(client, "3.10")
    result = run_cli("run", function_of_311(tmp_path), "--json", "--python", "3.10", "--force")
    assert result.code == 1 and "Traceback" not in result.stderr
    assert_mismatch(result.report, "code expected at most", "Pickle incompatible with 3.10")
    assert result.report["evidence"]["pickle_python"] == "3.11" and "--python 3.11" in result.report["message"]


# ---------------------------------------------------------------- the same, judged from a real exception

def test_code_expected_at_most_judged_from_python_310s_own_exception(tmp_path):
    from runner.sandbox.backend import Limits
    from runner.sandbox.protocol import ExceptionFacts
    from runner.verdict.context import Context
    from runner.verdict.loading import classify_load_error

    model = function_of_311(tmp_path)
    described = with_python("3.10", tmp_path, LOAD_AND_DESCRIBE, HARNESS, model).stdout
    exc = json.loads(described)
    assert exc["type"] == "TypeError" and "code expected at most 16 arguments, got 18" in exc["message"]
    ctx = Context("3.10", {"cloudpickle": "2.2.1"}, Limits(), model, pickle_candidates=["3.11"])
    verdict = classify_load_error(ExceptionFacts.parse(exc), ctx, {"phase": "loading"})
    assert verdict.reason == "python_version_mismatch" and verdict.blame.value == "model"
    assert verdict.evidence["mismatch_text"] == "code expected at most"
    assert verdict.evidence["pickle_python"] == "3.11" and "--python 3.11" in verdict.message


@pytest.mark.parametrize("message, rule", [
    ("unsupported pickle protocol: 6", "unsupported pickle protocol"),
    ("code expected at most 16 arguments, got 18", "code expected at most"),
    ("bad marshal data (unknown type code)", "bad marshal data"),
])
def test_each_message_is_a_mismatch_whatever_the_exception(message, rule):
    """The text decides, not the type (here an UnpicklingError, which would otherwise read as an invalid
    pickle)."""
    from runner.sandbox.backend import Limits
    from runner.sandbox.protocol import ExceptionFacts
    from runner.verdict.context import Context
    from runner.verdict.loading import classify_load_error

    exc = {"type": "UnpicklingError", "module": "_pickle", "mro": ["_pickle.UnpicklingError"], "message": message,
           "frames": [{"file": "/opt/venv/lib/python3.11/site-packages/pandas/io/pickle.py", "line": 1,
                       "function": "read_pickle", "code": ""}]}
    ctx = Context("3.11", {}, Limits(), Path(os.devnull))
    verdict = classify_load_error(ExceptionFacts.parse(exc), ctx, {"phase": "loading"})
    assert verdict.reason == "python_version_mismatch" and verdict.evidence["mismatch_text"] == rule
