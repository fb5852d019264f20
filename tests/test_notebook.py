"""`runner.api.check(predict)` from a real Jupyter kernel (nbclient), where no Docker engine answers: the
function is pickled in the kernel as Numerai's notebooks pickle it, run in the process sandbox, and the
report shows itself (Markdown and HTML) with the verdict, the reason and the fix.

The kernel is this interpreter's (ipykernel); its environment for the process sandbox is made once per
machine from the wheelhouse (about 30-45 s) and reused by digest after that.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

SETUP = """\
import os
os.environ["DOCKER_HOST"] = "tcp://127.0.0.1:9"   # no engine: as on Colab or Kaggle
from runner.api import check
verdicts = {}
"""
GOOD = """\
def predict(live_features):
    return live_features.iloc[:, 0].rank(pct=True, method="first").to_frame("prediction")

report = check(predict)
verdicts["good"] = [report.status.value, report.reason, report.limits.get("backend"), report.notes]
report
"""
RAISES = """\
def predict(live_features):
    raise ValueError("no model was trained")

report = check(predict)
verdicts["raises"] = [report.status.value, report.reason, report.limits.get("backend"), report.message]
report
"""
WRONG = """\
def predict(live_features):
    return live_features.iloc[:, 0].rank(pct=True).to_frame("prediction") + 1   # outside [0, 1]

report = check(predict)
verdicts["wrong"] = [report.status.value, report.reason, report.subcode, report.action]
report
"""
SLOW = """\
import time

def predict(live_features):
    time.sleep(60)

report = check(predict, timeout=3)
verdicts["slow"] = [report.status.value, report.reason, report.limits.get("backend"), report.message]
"""
SAY = "import json; print(json.dumps(verdicts))"


def interpreter_ready() -> str | None:
    """Why the kernel's process sandbox cannot run here, or None."""
    from runner.images import wheelhouse
    from runner.images.pins import SUPPORTED_PYTHONS, pin_set

    python = "%d.%d" % sys.version_info[:2]
    if python not in SUPPORTED_PYTHONS:
        return f"Python {python} has no Numerai image"
    missing = wheelhouse.inventory(pin_set(python, "standard")).missing
    return f"the Python {python} wheels are not fetched ({', '.join(missing[:3])})" if missing else None


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    why = interpreter_ready()
    if why:
        if os.environ.get("NUMERAI_SANDBOX_REQUIRE_DOCKER") == "1":
            pytest.fail(f"the notebook test needs them: {why}")
        pytest.skip(why)
    folder = tmp_path_factory.mktemp("notebook")
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in (SETUP, GOOD, RAISES, WRONG, SLOW, SAY)]
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(folder)}})
    client.execute()
    said = "".join(output.get("text", "") for output in notebook.cells[-1].outputs if output.output_type == "stream")
    return notebook, json.loads(said)


def displayed(cell) -> dict:
    """The rich representations the cell's last expression showed."""
    return next(output["data"] for output in cell.outputs if output.output_type == "execute_result")


def test_a_good_function_is_success_in_the_process_sandbox_with_a_note(executed):
    notebook, verdicts = executed
    status, reason, backend, notes = verdicts["good"]
    assert (status, reason, backend) == ("Success", None, "process")
    assert any("no Docker engine could be reached" in note for note in notes)
    shown = displayed(notebook.cells[1])
    assert "**Verdict**: Success" in shown["text/markdown"]
    assert "process sandbox (weaker than Numerai&#x27;s container)" in shown["text/html"]
    assert "6,720 rows of prediction" in shown["text/markdown"]


def test_a_function_that_raises_is_failed_model_exception_with_its_fix(executed):
    notebook, verdicts = executed
    status, reason, backend, message = verdicts["raises"]
    assert (status, reason, backend) == ("Failed", "model_exception", "process")
    assert "ValueError" in message and "no model was trained" in message
    shown = displayed(notebook.cells[2])
    assert "**What to do**: Read the traceback" in shown["text/markdown"]


def test_predictions_outside_0_1_are_failed_invalid_output(executed):
    notebook, verdicts = executed
    status, reason, subcode, action = verdicts["wrong"]
    assert (status, reason) == ("Failed", "invalid_output")
    assert subcode and action
    assert "Failed (invalid_output/" in displayed(notebook.cells[3])["text/markdown"]


def test_a_function_past_the_clock_is_failed_timeout(executed):
    _, verdicts = executed
    status, reason, backend, _message = verdicts["slow"]
    assert (status, reason, backend) == ("Failed", "timeout", "process")
