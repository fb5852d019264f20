"""NUMERAI_SANDBOX_NAMESPACE keeps one user's (or CI job's, or test run's) images and sandboxes apart from
another's on one engine: an image of another namespace is never run, listed, pushed or removed.

The case that made this necessary: a machine whose engine held an auto image with torch (made by
`images fetch --for` and a run) turned a run that must say "fetch torch first" into a run of the
model. Here that image is in another namespace, and the run says what it must.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import (TEST_NAMESPACE_PREFIX, borrow_standard_environment, engine_tags, image_for, relabelled_image,
                      remove_dead_test_namespaces, run_cli, session_namespace)
from runner.support.paths import APP, NAMESPACE_ENV, BadNamespace, namespace, repository

NEEDS_TORCH = ("import sys, cloudpickle\ndef predict(live_features):\n    import torch\n    return live_features\n"
               "cloudpickle.dump(predict, open(sys.argv[1], 'wb'))")


@pytest.mark.parametrize("value, ok", [("", APP), ("ci-42", "ci-42"), ("team.a_b", "team.a_b"), ("a__b", "a__b"),
                                       ("CI", None), ("ci/42", None), ("-ci", None), ("ci-", None), ("a" * 101, None)])
def test_a_namespace_names_docker_images_or_is_refused(monkeypatch, value, ok):
    monkeypatch.setenv(NAMESPACE_ENV, value)
    if ok is None:
        with pytest.raises(BadNamespace):
            namespace()
        return
    assert namespace() == ok
    assert (repository("image"), repository("env"), repository("base")) == (ok, f"{ok}-env", f"{ok}-base")


def test_a_bad_namespace_is_a_usage_error_before_anything_runs():
    result = run_cli("images", "list", env={NAMESPACE_ENV: "Team/CI"})
    assert result.code == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (f"numerai-sandbox: error: {NAMESPACE_ENV}='Team/CI' cannot name Docker images: "
                                     "use lower-case letters and digits, separated by single '.', '_' or '-' "
                                     "(e.g. ci-job-42), at most 100 characters")


def test_an_auto_image_of_another_namespace_is_not_this_ones(client, own_namespace, own_cache, tmp_path,
                                                             monkeypatch):
    from runner.images import bases, store
    from test_auto import auto_pins

    model = tmp_path / "needs_torch.pkl"
    subprocess.run([sys.executable, "-c", NEEDS_TORCH, model], check=True)
    pins = auto_pins(model)
    # The other namespace (a user's, seen from here) holds the auto image this pickle runs in: torch's.
    theirs = f"{own_namespace}-user"
    monkeypatch.setenv(NAMESPACE_ENV, theirs)
    borrow_standard_environment(client, "3.11")
    standard = image_for(client, "3.11")
    tag = relabelled_image(client, standard, pins.tag_profile, lock=pins.digest(), added=json.dumps(pins.added),
                           env_digest=store.env_digest(bases.load("3.11"), pins))
    assert store.find(client, pins) is not None  # there, it is the image `run` uses...
    there = run_cli("run", model, "--json", env={"NUMERAI_SANDBOX_CACHE": str(own_cache)}).report
    assert there["image"]["ref"] == tag and there["reason"] != "packages_not_fetched"
    # ...and from this namespace it is not there at all.
    monkeypatch.setenv(NAMESPACE_ENV, own_namespace)
    here = run_cli("run", model, "--json", env={"NUMERAI_SANDBOX_CACHE": str(own_cache)}).report
    assert (here["status"], here["reason"]) == ("Error", "packages_not_fetched"), here["message"]
    assert tag not in run_cli("images", "list").stdout
    removed = run_cli("images", "rm", "--python", "3.11", "--profile", "auto", "--yes")
    assert removed.code == 0 and "nothing to remove" in removed.stdout
    assert client.images.get(tag)


def test_an_empty_namespace_says_where_it_looked(own_namespace):
    result = run_cli("images", "list")
    assert result.code == 0 and f"no numerai-sandbox images in the namespace {own_namespace} " in result.stdout


def test_what_a_killed_test_run_left_goes_and_a_running_ones_stays(client, image311):
    """A test run killed before its end leaves its namespace behind: the next run empties it (a test run that
    still goes, this one, keeps its own)."""
    host = session_namespace()[len(TEST_NAMESPACE_PREFIX):].split("-")[0]
    dead = f"{TEST_NAMESPACE_PREFIX}{host}-{2**22 + 1}-1"  # no process has this pid
    client.api.tag(image311.id, dead, "py3.11-standard")
    client.api.tag(image311.id, f"{dead}-env", "py3.11-standard-0123456789ab")
    removed = remove_dead_test_namespaces(client)
    assert {f"{dead}:py3.11-standard", f"{dead}-env:py3.11-standard-0123456789ab"} <= set(removed)
    assert not [t for t in engine_tags(client) if t.startswith(dead)]
    assert image311.ref in engine_tags(client) and image311.ref.startswith(session_namespace() + ":")
