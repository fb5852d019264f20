"""The auto profile: the standard image plus exactly what the pickle needs from Numerai's image.

Against the real engine, each with a cache of its own (no wheels) and a namespace of its own (no
image but the standard environment it borrows), so the outcome never depends on what this machine
fetched or built before: a pickle needing tabulate (in Numerai's list, not in the standard profile)
ends Error/packages_not_fetched, naming the one fetch command; after `images fetch --for` it runs to
Success in a layered image, offline. A module Numerai's image has
but the run's image lacks is never the model's fault (Error/sandbox_lacks_module).

Numerai's own library and torch (numerai_tools.scoring imports torch; ~3 GB of wheels) are
tested by `make test-all` only (NUMERAI_SANDBOX_TEST_ALL=1).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import borrow_standard_environment, make_pickles, run_cli

PICKLER = """
import sys, cloudpickle

def predict(live_features):
    import pandas as pd
{body}
    ranks = live_features.filter(like="feature_").iloc[:, :20].sum(axis=1).rank(pct=True, method="first")
    return pd.DataFrame({{"prediction": ranks}}, index=live_features.index)

with open(sys.argv[1], "wb") as handle:
    cloudpickle.dump(predict, handle)
"""


def pickle_predict(out: Path, body: str) -> Path:
    """A predict function whose body runs `body` first, cloudpickled by this (Python 3.11) interpreter."""
    script = PICKLER.format(body=textwrap.indent(textwrap.dedent(body).strip(), "    "))
    subprocess.run([sys.executable, "-c", script, str(out)], check=True)
    return out


def auto_pins(model: Path, python: str = "3.11"):
    """The auto profile's pins for a pickle, as `run` computes them."""
    from runner.images.pins import pin_set
    from runner.inspection.analysis import inspect_pickle, numerai_additions

    return pin_set(python, "auto", needs=numerai_additions(inspect_pickle(model), python))


# ---------------------------------------------------------------- against the engine

def test_a_package_only_numerais_image_has_is_fetched_then_runs(client, image311, own_cache, own_namespace,
                                                                 tmp_path):
    model = pickle_predict(tmp_path / "tabulate_model.pkl", """
        from tabulate import tabulate
        tabulate([[1, 2]])
    """)
    env = {"NUMERAI_SANDBOX_CACHE": str(own_cache)}
    borrow_standard_environment(client, "3.11")
    # Nothing cached: Error (not the model's fault), the package and the exact command named.
    before = run_cli("run", model, "--json", env=env)
    report = before.report
    assert (before.code, report["status"], report["reason"]) == (3, "Error", "packages_not_fetched"), report["message"]
    command = f"numerai-sandbox images fetch --for {model}"
    assert command in report["message"] and report["evidence"]["fetch_command"] == command
    assert report["evidence"]["missing"] == ["tabulate==0.9.0"] and "tabulate" in report["message"]
    assert "Traceback" not in before.stderr
    # The fetch says what and how big, then downloads exactly that wheel (the standard environment is built).
    fetched = run_cli("images", "fetch", "--for", model, env=env, timeout=600)
    assert fetched.code == 0, fetched.stderr
    assert "tabulate 0.9.0" in fetched.stdout and "34.4 KiB" in fetched.stdout
    assert "to download: 1 wheel, 34.4 KiB" in fetched.stdout
    assert [p.name for p in (own_cache / "wheels" / "py3.11").glob("*.whl")] == ["tabulate-0.9.0-py3-none-any.whl"]
    # Then a plain run: a layered image holding the standard packages and tabulate, offline.
    after = run_cli("run", model, "--json", env=env, timeout=900)
    report = after.report
    assert (after.code, report["status"]) == (0, "Success"), report["message"]
    assert report["image"]["ref"].startswith(f"{own_namespace}:py3.11-auto-")
    assert report["image"]["added"] == {"tabulate": "0.9.0"}
    assert report["library_versions"]["tabulate"] == "0.9.0"
    assert report["library_versions"]["pandas"] == image311.packages["pandas"]
    labels = client.images.get(report["image"]["ref"]).labels
    assert labels["numerai-sandbox.added"] == '{"tabulate": "0.9.0"}'


def test_the_standard_profile_lacking_numerais_package_is_error(client, image311, tmp_path):
    model = pickle_predict(tmp_path / "tabulate_model.pkl", """
        from tabulate import tabulate
        tabulate([[1, 2]])
    """)
    result = run_cli("run", model, "--profile", "standard", "--json")
    report = result.report
    assert (result.code, report["status"], report["reason"]) == (3, "Error", "sandbox_lacks_module"), report["message"]
    assert report["evidence"]["distribution"] == "tabulate" and report["evidence"]["numerai_version"] == "0.9.0"
    assert "--profile auto" in report["message"] and "Numerai would run it" in report["message"]


def test_an_import_the_inspection_cannot_see_is_error_naming_the_distribution(client, image311, tmp_path):
    # importlib hides the module from the static inspection: auto adds nothing, the import fails at run time
    model = pickle_predict(tmp_path / "hidden.pkl", """
        import importlib
        importlib.import_module("tab" + "ulate")
    """)
    result = run_cli("run", model, "--json")
    report = result.report
    assert (result.code, report["status"], report["reason"]) == (3, "Error", "sandbox_lacks_module"), report["message"]
    assert report["image"]["ref"] == image311.ref
    assert report["evidence"]["module"] == "tabulate" and report["evidence"]["distribution"] == "tabulate"
    assert "tabulate==0.9.0" in report["message"] and "--profile full" in report["message"]


def test_a_module_numerais_image_lacks_stays_failed(client, image311, tmp_path):
    model = pickle_predict(tmp_path / "private.pkl", "import my_private_helpers")
    result = run_cli("run", model, "--json")
    report = result.report
    assert (result.code, report["status"], report["reason"]) == (1, "Failed", "missing_module"), report["message"]
    assert "does not have it either" in report["message"]


def test_fetch_for_a_pickle_needing_nothing_more_downloads_nothing(client, image311, own_cache, tmp_path):
    model = pickle_predict(tmp_path / "plain.pkl", "pass")
    result = run_cli("images", "fetch", "--for", model, env={"NUMERAI_SANDBOX_CACHE": str(own_cache)})
    assert result.code == 0, result.stderr
    assert "needs nothing beyond the standard image for Python 3.11" in result.stdout
    assert "nothing to download" in result.stdout and not (own_cache / "wheels").exists()


def test_fetch_for_needs_no_profile_and_a_pickle(tmp_path):
    model = pickle_predict(tmp_path / "m.pkl", "pass")
    mixed = run_cli("images", "fetch", "--for", model, "--profile", "full")
    assert mixed.code == 2 and "--for" in mixed.stderr and "Traceback" not in mixed.stderr
    auto = run_cli("images", "fetch", "--python", "3.11", "--profile", "auto")
    assert auto.code == 2 and "--for MODEL.pkl" in auto.stderr
    text = tmp_path / "not.pkl"
    text.write_text("id,prediction\n")
    bad = run_cli("images", "fetch", "--for", text)
    assert bad.code == 2 and "not a complete pickle" in bad.stderr


@pytest.mark.parametrize("module, reason", [
    ("src.features", "missing_module"),  # a user's own package, whatever folders some wheels ship
    ("numerai_tools.scoring", "sandbox_lacks_module"),
    ("google.cloud.storage", "missing_module"),  # numerblox wants it; Numerai's 3.11 image lacks it
    ("google.protobuf", "sandbox_lacks_module"),  # a namespace package: the wheel's own package decides
])
def test_whose_fault_a_missing_module_is(module, reason):
    from runner.images.pins import numerai_pins, standard_pins
    from runner.sandbox.backend import Limits
    from runner.sandbox.protocol import ExceptionFacts
    from runner.verdict.context import Context
    from runner.verdict.exceptions import classify_model_exception

    ctx = Context("3.11", standard_pins("3.11"), Limits(), Path(os.devnull),
                  full_pins=numerai_pins("3.11"), profile="auto")
    exc = {"type": "ModuleNotFoundError", "module": "builtins", "message": f"No module named '{module}'",
           "name": module, "frames": []}
    verdict = classify_model_exception(ExceptionFacts.parse(exc), ctx, {"phase": "predicting"})
    assert verdict.reason == reason, verdict.message


# ---------------------------------------------------------------- make test-all: Numerai's own library, torch

ALL = pytest.mark.skipif(os.environ.get("NUMERAI_SANDBOX_TEST_ALL") != "1",
                         reason="needs ~3 GB of torch wheels: run by `make test-all`")

MAKE_HEAVY = '''
import argparse, cloudpickle, os
import numerai_tools.scoring
import torch

parser = argparse.ArgumentParser()
parser.add_argument("--features"); parser.add_argument("--out")
out = parser.parse_args().out

def neutralized(live_features):
    import pandas as pd
    from numerai_tools.scoring import neutralize
    features = live_features.filter(like="feature_")
    raw = features.iloc[:, :20].sum(axis=1).to_frame("prediction").astype(float)
    neutral = neutralize(raw, features.iloc[:, 20:30].astype(float), proportion=0.5)
    return neutral.rank(pct=True)

torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Linear(20, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))

def torch_module(live_features):  # `net` is pickled with it, by value (a global of __main__)
    import pandas as pd
    import torch
    x = torch.tensor(live_features.filter(like="feature_").iloc[:, :20].to_numpy(), dtype=torch.float32)
    with torch.no_grad():
        y = net(x).squeeze(1).numpy()
    return pd.DataFrame({"prediction": y}, index=live_features.index).rank(pct=True)

for name, fn in (("numerai_tools_neutralize", neutralized), ("torch_module", torch_module)):
    with open(os.path.join(out, name + ".pkl"), "wb") as handle:
        cloudpickle.dump(fn, handle)
'''


@pytest.fixture(scope="module")
def heavy_models(client, tmp_path_factory) -> dict[str, Path]:
    """Pickles made by Python 3.11 with Numerai's pins: inside the auto image that adds numerai-tools and torch."""
    work = tmp_path_factory.mktemp("heavy")
    seed = pickle_predict(work / "seed.pkl", "import numerai_tools.scoring, torch")
    fetched = run_cli("images", "fetch", "--for", seed, timeout=3600)
    assert fetched.code == 0, fetched.stderr
    built = run_cli("images", "build", "--for", seed, timeout=3600)
    assert built.code == 0, built.stderr
    from runner.images import store

    maker = work / "maker"
    maker.mkdir()
    (maker / "make_heavy.py").write_text(MAKE_HEAVY)
    pins = auto_pins(seed)
    try:
        made = make_pickles(client, store.find(client, pins), maker / "make_heavy.py", work / "out")
    finally:  # this test run's own image: the tests after start with none holding these packages
        store.remove(client, store.removal_plan(client, "3.11", pins.tag_profile))
    return made


@ALL
@pytest.mark.slow
@pytest.mark.parametrize("name", ["numerai_tools_neutralize", "torch_module"])
def test_numerais_own_packages_run_once_fetched(client, heavy_models, own_cache, own_namespace, name):
    model = heavy_models[name]
    borrow_standard_environment(client, "3.11")
    offline = run_cli("run", model, "--json", env={"NUMERAI_SANDBOX_CACHE": str(own_cache)})
    assert (offline.code, offline.report["status"], offline.report["reason"]) == (3, "Error", "packages_not_fetched")
    assert f"numerai-sandbox images fetch --for {model}" in offline.report["message"]
    assert "torch==" in " ".join(offline.report["evidence"]["missing"])
    fetched = run_cli("images", "fetch", "--for", model, timeout=3600)  # the machine's cache: fetched once
    assert fetched.code == 0, fetched.stderr
    result = run_cli("run", model, "--json", timeout=3600)
    report = result.report
    assert (result.code, report["status"]) == (0, "Success"), report["message"]
    assert report["library_versions"]["torch"] == "2.7.1"
