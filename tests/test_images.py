"""Per-Python images: Numerai's versions, built offline, cached, labelled, runnable."""

from __future__ import annotations

import json

import pytest

from conftest import image_for, numerai_reference_pins, pickle_made_by, pythons_under_test, run_cli
from runner.images.pins import SUBSTITUTES, normalize, standard_pins
from runner.support.paths import repository

CLOUDPICKLE = {"3.10": "cloudpickle==2.2.1", "3.11": "cloudpickle==3.1.1", "3.12": "cloudpickle==3.1.1",
               "3.13": "cloudpickle==3.1.2", "3.14": "cloudpickle==3.1.2"}




@pytest.mark.parametrize("python", ["3.10", "3.11", "3.12", "3.13", "3.14"])
def test_standard_pins_are_numerais_versions(python):
    """Every package the standard profile shares with Numerai's image has Numerai's exact version."""
    ours, theirs = standard_pins(python), numerai_reference_pins(python)
    shared = {name: SUBSTITUTES.get(name, name) for name in ours if SUBSTITUTES.get(name, name) in theirs}
    assert len(shared) >= 20
    mismatched = {n: (ours[n], theirs[t]) for n, t in shared.items() if ours[n] != theirs[t]}
    assert not mismatched
    for package in ("numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "lightgbm", "catboost", "cloudpickle",
                    "joblib", "polars"):
        assert ours[package] == theirs[package]
    assert ours.get("xgboost", ours.get("xgboost-cpu")) == theirs["xgboost"]


@pytest.mark.parametrize("python", pythons_under_test())
def test_image_matches_pins_and_runs_a_pickle_made_by_that_python(client, python, cpython_venv, tmp_path):
    image = image_for(client, python)
    assert image.python == python and image.python_full.startswith(python + ".")
    frozen = client.containers.run(image.id, ["-m", "pip", "freeze", "--all"], entrypoint=["/opt/venv/bin/python"],
                                   network_mode="none", remove=True).decode()
    installed = {normalize(line.split("==")[0]): line.split("==")[1] for line in frozen.split() if "==" in line}
    assert installed == standard_pins(python)  # exactly the profile's pins, nothing else
    theirs = numerai_reference_pins(python, required=False)
    for name, version in installed.items():
        numerai_name = SUBSTITUTES.get(name, name)
        if theirs and numerai_name in theirs:
            assert version == theirs[numerai_name], name
    model = pickle_made_by(client, python, CLOUDPICKLE[python], cpython_venv, tmp_path / "model.pkl")
    report = run_cli("run", model, "--python", python, "--json").report
    assert report["status"] == "Success", report["message"]
    assert report["python"] == python and report["python_full"] == image.python_full
    xgboost = standard_pins(python).get("xgboost", standard_pins(python).get("xgboost-cpu"))
    assert report["library_versions"]["xgboost"] == xgboost


def test_labels_describe_the_image(client, image311):
    labels = client.images.get(image311.id).labels
    for key in ("python", "python-full", "profile", "digest", "lock", "harness", "version", "built", "packages", "base"):
        assert labels[f"numerai-sandbox.{key}"], key
    assert json.loads(labels["numerai-sandbox.packages"]) == standard_pins("3.11")
    user = client.images.get(image311.id).attrs["Config"]["User"]
    assert user and not user.startswith("0")  # runs as non-root


def test_rebuild_with_same_inputs_is_skipped(client, image311):
    result = run_cli("images", "build", "--python", "3.11")
    assert result.code == 0 and image311.ref in result.stdout
    assert client.images.get(image311.ref).id == image311.id


def test_list_shows_python_profile_digest_size_age(image311):
    result = run_cli("images", "list")
    line = next(l for l in result.stdout.splitlines() if l.startswith(image311.ref + " "))
    assert image311.python_full in line and "standard" in line and image311.digest[:12] in line
    assert "GiB" in line and "ago" in line
    listed = json.loads(run_cli("images", "list", "--json").stdout)
    assert any(i["ref"] == image311.ref and i["size_bytes"] > 0 for i in listed)


def test_build_without_wheelhouse_names_fetch(client, tmp_path):
    """A missing cache is one clear line naming `images fetch`, never a pip traceback."""
    from runner.images.bases import base_dir

    cache = tmp_path / "cache"
    (cache / "bases").mkdir(parents=True)
    (cache / "bases" / "py3.11").symlink_to(base_dir("3.11"))  # the base is there, the wheels are not
    result = run_cli("images", "build", "--python", "3.11", "--force", env={"NUMERAI_SANDBOX_CACHE": str(cache)})
    assert result.code == 3
    errors = [l for l in result.stderr.splitlines() if l.strip()]
    assert len(errors) == 1 and "images fetch --python 3.11" in errors[0] and "lacks" in errors[0]
    assert "Traceback" not in result.stdout + result.stderr
    empty = run_cli("images", "build", "--python", "3.11", "--force",
                    env={"NUMERAI_SANDBOX_CACHE": str(tmp_path / "nothing")})
    assert empty.code == 3 and "images fetch --python 3.11" in empty.stderr and "Traceback" not in empty.stderr


def test_run_without_image_or_cache_is_image_unavailable(tmp_path, models):
    """Not the model's fault: Error/image_unavailable with the command that fixes it."""
    extra = tmp_path / "extra.txt"
    extra.write_text("tabulate==0.8.10\n")  # an image nobody has built, and no cache for it
    result = run_cli("run", models["good_1arg"], "--extra-requirements", extra, "--json",
                     env={"NUMERAI_SANDBOX_CACHE": str(tmp_path / "empty-cache")})
    report = result.report
    assert result.code == 3 and (report["status"], report["reason"]) == ("Error", "image_unavailable")
    assert "images fetch --python 3.11" in report["message"]


def test_extra_requirements_layer_and_report(client, models, tmp_path):
    extra = tmp_path / "extra.txt"
    extra.write_text("tabulate==0.9.0\n")
    fetched = run_cli("images", "fetch", "--python", "3.11", "--extra-requirements", extra, timeout=900)
    assert fetched.code == 0, fetched.stderr
    built = run_cli("images", "build", "--python", "3.11", "--extra-requirements", extra, timeout=1200)
    assert built.code == 0, built.stderr
    report = run_cli("run", models["good_1arg"], "--extra-requirements", extra, "--json").report
    assert report["status"] == "Success"
    assert report["image"]["extra"] == str(extra) and report["library_versions"]["tabulate"] == "0.9.0"
    tag = report["image"]["ref"]
    assert tag.startswith(f"{repository('image')}:py3.11-standard-x")
    removed = run_cli("images", "rm", "--python", "3.11", "--profile", tag.split("py3.11-")[1])
    assert tag in removed.stdout and f"{repository('env')}:py3.11-standard-x" in removed.stdout
    assert image_for(client, "3.11").ref == f"{repository('image')}:py3.11-standard"  # the plain image is untouched
    assert client.images.get(f"{repository('image')}:py3.11-standard")
