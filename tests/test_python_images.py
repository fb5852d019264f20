"""Every image Python under test (TEST_PYTHONS) runs the good models to Success, each pickled inside its image.

The models: the examples' LightGBM models with 1 and 2 arguments and a scikit-learn one (compiled code:
for Python 3.14, the scikit-learn that `images fetch` built from source), and the plain-pandas test
models with 1 and 2 arguments. `run --python auto` must pick that Python from the pickle itself; an
image Numerai marks experimental (3.14) must say so on the terminal and in the report.
"""

from __future__ import annotations

import pytest

from conftest import ROOT, image_for, make_pickles, pythons_under_test, run_cli
from runner.images.pins import EXPERIMENTAL_PYTHONS, experimental

GOOD = {"examples": ("lgbm_1arg", "lgbm_2arg", "sklearn_1arg"), "models": ("good_1arg", "good_2arg")}


@pytest.mark.parametrize("python", pythons_under_test())
def test_good_models_succeed_in_the_image_of_their_python(client, python, tmp_path):
    image = image_for(client, python)
    made = {**make_pickles(client, image, ROOT / "examples" / "train.py", tmp_path / "examples"),
            **make_pickles(client, image, ROOT / "tests" / "models" / "make_models.py", tmp_path / "models")}
    for name in GOOD["examples"] + GOOD["models"]:
        result = run_cli("run", made[name], "--json")
        report = result.report
        assert (report["status"], report["python"]) == ("Success", python), (name, report["message"])
        assert report["pickle"]["python"] == python, name
        assert report["n_predictions"] == report["data"]["rows"], name
        flag = experimental(python)
        if python in EXPERIMENTAL_PYTHONS:
            assert f"the Python {python} image is {flag}" in report["notes"], name
            assert f"{image.ref} · Python {image.python_full} · standard · {flag}" in result.stderr, name
        else:
            assert flag is None and not any("experimental" in n for n in report["notes"]), name
    assert report["library_versions"]["scikit-learn"] == image.packages["scikit-learn"]


def test_only_314_is_experimental():
    assert EXPERIMENTAL_PYTHONS == ("3.14",)
    assert experimental("3.14") == "experimental (Numerai marks its 3.14 image experimental)"
    assert experimental("3.11") is None
