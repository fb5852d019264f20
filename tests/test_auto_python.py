"""run --python auto (the default): the pickle's own Python picks the image, or the nearest that can load it
when Numerai has none for it; a Python that certainly cannot load it fails early, any other runs and the
container decides — never stricter than Numerai."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import image_for, pickle_made_by, pythons_under_test, run_cli
from test_images import CLOUDPICKLE

# A 3.9 function whose bytecode is valid 3.10 bytecode with the same meaning (no jump), and one that jumps:
# 3.9 counts jump targets in bytes, 3.10 in instructions.
PY39_MODELS = """
import sys, cloudpickle

def straight(live_features):
    import pandas as pd
    ranks = live_features.filter(like="feature_").iloc[:, :20].sum(axis=1).rank(pct=True, method="first")
    return pd.DataFrame({"prediction": ranks}, index=live_features.index)

def jumps(live_features):
    import pandas as pd
    chosen = []
    for name in live_features.columns:
        if name.startswith("feature_"):
            chosen.append(name)
    ranks = live_features[chosen[:20]].sum(axis=1).rank(pct=True, method="first")
    return pd.DataFrame({"prediction": ranks}, index=live_features.index)

for function in (straight, jumps):
    with open(f"{sys.argv[1]}/py39_{function.__name__}.pkl", "wb") as handle:
        cloudpickle.dump(function, handle)
"""


@pytest.mark.parametrize("python", sorted(set(pythons_under_test()) | {"3.11"}))
def test_auto_picks_the_image_of_the_python_that_made_the_pickle(client, python, cpython_venv, tmp_path):
    from conftest import image_for

    image_for(client, python)
    model = pickle_made_by(client, python, CLOUDPICKLE[python], cpython_venv, tmp_path / "model.pkl")
    result = run_cli("run", model, "--json")
    report = result.report
    assert (report["status"], report["python"]) == ("Success", python), report["message"]
    assert report["pickle"]["python"] == python and f"made by Python {python}" in report["pickle"]["choice"]
    assert f"Python {python}: the pickle was made by Python {python}" in result.stderr


def test_forcing_a_python_that_cannot_load_it_fails_before_any_container(models):
    """A 3.11 function has 18-argument code objects; Python 3.10's code constructor takes 16: unpickling raises
    TypeError there for certain, which numerai-predict logs as "Pickle incompatible with 3.10"."""
    report = run_cli("run", models["good_1arg"], "--python", "3.10", "--json").report
    assert (report["status"], report["reason"], report["phase"]) == ("Failed", "python_version_mismatch", "inspecting")
    assert [e["status"] for e in report["timeline"]] == ["Pending", "Failed"]
    assert not report["container"]  # no container was started
    assert "made by Python 3.11" in report["message"] and "--force" in report["message"]
    assert report["numerai_log"] == "Pickle incompatible with 3.10"


def test_forcing_a_python_that_may_load_it_runs_it_and_the_container_decides(client, models):
    """3.11 code loads in 3.12 (the same code constructor): nothing static is certain, so it runs; the static
    reading is a note, the verdict the container's."""
    if "3.12" not in pythons_under_test():
        pytest.skip("the Python 3.12 image is not part of this test run (TEST_PYTHONS)")
    image_for(client, "3.12")
    result = run_cli("run", models["good_1arg"], "--python", "3.12", "--json", "--timeout", "2m")
    report = result.report
    assert report["container"].get("id") and report["phase"] != "inspecting"
    assert (report["status"], report["reason"]) == ("Failed", "python_version_mismatch"), report["message"]
    assert any("made by Python 3.11" in n and "the run in the Python 3.12 image decides" in n for n in report["notes"])
    assert "Python 3.12: made by Python 3.11" in result.stderr  # said on the Pending line
    assert report["numerai_log"]


@pytest.fixture(scope="module")
def py39(cpython_venv, tmp_path_factory) -> dict[str, Path]:
    """The PY39_MODELS pickles, made by pyenv's CPython 3.9 with cloudpickle 2.2.1 (a throwaway venv filled from
    PyPI): Numerai's 3.10 image has cloudpickle 2.2.1, which loads only cloudpickle 2 pickles."""
    import subprocess

    python = cpython_venv("3.9", "cloudpickle==2.2.1")
    out = tmp_path_factory.mktemp("py39")
    subprocess.run([str(python), "-c", PY39_MODELS, str(out)], check=True)
    return {p.stem: p for p in out.glob("*.pkl")}


def _needs_310(client):
    if "3.10" not in pythons_under_test():
        pytest.skip("the Python 3.10 image is not part of this test run (TEST_PYTHONS)")
    image_for(client, "3.10")


def test_a_python_39_pickle_succeeds_in_the_310_image_with_no_options(client, py39):
    """Numerai has no 3.9 image; its 3.10 image runs this 3.9 pickle (numerai-predict's own model_3_9.pkl does
    the same there): auto picks 3.10, the nearest image that can load it, says why, and the run decides."""
    _needs_310(client)
    result = run_cli("run", py39["py39_straight"], "--json")
    report = result.report
    assert (report["status"], report["python"]) == ("Success", "3.10"), report["message"]
    reason = ("the pickle was made by Python 3.8 or 3.9, which Numerai has no image for; Python 3.10 is the nearest "
              "image that can load it (its code happens to be valid 3.10 bytecode")
    assert f"Python 3.10: {reason}" in result.stderr  # the Pending line
    assert any(n.startswith(reason) for n in report["notes"]) and report["pickle"]["choice"].startswith(reason)


def test_a_python_39_pickle_is_failed_in_311_as_numerai_predict_classifies_it(client, py39):
    """In 3.11 unpickling raises TypeError (16 arguments to an 18-argument constructor): numerai-predict logs
    "Pickle incompatible with 3.11". That is certain, so the run ends before any container; forced, the
    container says the same."""
    early = run_cli("run", py39["py39_straight"], "--python", "3.11", "--json").report
    assert (early["status"], early["reason"], early["phase"]) == ("Failed", "python_version_mismatch", "inspecting")
    assert not early["container"] and early["numerai_log"] == "Pickle incompatible with 3.11"
    forced = run_cli("run", py39["py39_straight"], "--python", "3.11", "--force", "--json").report
    assert (forced["status"], forced["reason"], forced["phase"]) == ("Failed", "python_version_mismatch", "loading")
    assert forced["container"].get("id") and forced["numerai_log"] == "Pickle incompatible with 3.11"
    assert forced["evidence"]["exception"]["type"] == "TypeError"


def test_a_python_39_pickle_whose_bytecode_is_not_310_code_fails_in_the_container(client, py39):
    """It loads in 3.10, and its call fails there as it would on Numerai: the jumps land elsewhere and the model
    raises TypeError, which numerai-predict logs as "Pickle function is invalid - ..."."""
    _needs_310(client)
    result = run_cli("run", py39["py39_jumps"], "--json", "--timeout", "2m")
    report = result.report
    assert report["python"] == "3.10" and report["container"].get("id")
    assert (report["status"], report["reason"], report["phase"]) == ("Failed", "python_version_mismatch",
                                                                      "predicting"), report["message"]
    assert "3.8 or 3.9" in report["message"] and "3.10" in report["message"]
    assert report["numerai_log"].startswith("Pickle function is invalid - "), report["numerai_log"]
    assert f"Numerai's log: {report['numerai_log']}" in result.stderr
    assert any("jump targets" in n and "will likely fail when called" in n for n in report["notes"])


def test_unknown_version_falls_back_to_default_and_says_so(models):
    """A plain pickle of an object holds no code: nothing tells its Python; 3.11 is used and reported."""
    report = run_cli("run", models["not_callable"], "--json").report
    assert report["python"] == "3.11" and report["pickle"]["python"] is None
    assert any("falling back to Numerai's default, Python 3.11" in note for note in report["notes"])
    assert report["reason"] == "bad_signature"


def test_inspect_command_reads_without_running(models, tmp_path):
    result = run_cli("inspect", models["good_2arg"])
    assert result.code == 0
    assert "Python: 3.11" in result.stdout and "live_features, live_benchmark_models" in result.stdout
    import json

    data = json.loads(run_cli("inspect", models["good_2arg"], "--json").stdout)
    assert data["python"]["version"] == "3.11" and data["callable"]["n_params"] == 2
    assert run_cli("inspect", models["csv_file"]).code == 1
    missing = run_cli("inspect", tmp_path / "nope.pkl")
    assert missing.code == 2 and "does not exist" in missing.stderr
