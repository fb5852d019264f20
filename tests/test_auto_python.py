"""run --python auto (the default): the pickle's own Python picks the image; a forced wrong one fails early."""

from __future__ import annotations

import pytest

from conftest import pickle_made_by, pythons_under_test, run_cli
from test_images import CLOUDPICKLE


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


def test_forcing_an_incompatible_python_fails_before_any_container(models):
    report = run_cli("run", models["good_1arg"], "--python", "3.12", "--json").report
    assert (report["status"], report["reason"], report["phase"]) == ("Failed", "python_version_mismatch", "inspecting")
    assert [e["status"] for e in report["timeline"]] == ["Pending", "Failed"]
    assert not report["container"]  # no container was started
    assert "made by Python 3.11" in report["message"] and "--force" in report["message"]


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
