"""`upload` sends Numerai only what passes, into the image of the Python it passed in; `uploads` reads back
what Numerai made of it. Numerai is a real HTTP server on 127.0.0.1 (tests/numerai_server.py) answering
GraphQL; numerapi, unchanged, talks to it through NUMERAI_API_URL. Nothing here reaches Numerai itself.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from conftest import image_for, pickle_with, run_cli
from test_images import CLOUDPICKLE

KEY_VARS = ("NUMERAI_PUBLIC_ID", "NUMERAI_SECRET_KEY")


def upload(numerai, model, *args, env=None):
    return run_cli("upload", model, "--model", "alpha", "--yes", "--json", *args, env={**numerai.env(), **(env or {})})


def sent(numerai) -> list[str]:
    """The requests that would change something on Numerai: PUTs and mutations."""
    return [r.method for r in numerai.requests if r.method == "PUT" or "mutation" in (r.query or "")]


@pytest.fixture(scope="module")
def made_by_312(client, cpython_venv, tmp_path_factory):
    """A 1-argument pickle made by pyenv's CPython 3.12 (the 3.12 image runs it)."""
    image_for(client, "3.12")
    return pickle_with(cpython_venv("3.12", CLOUDPICKLE["3.12"]), tmp_path_factory.mktemp("py312") / "made_by_312.pkl")


# ---------------------------------------------------------------- uploads that go

def test_a_311_pickle_uploads_with_python_311_and_is_recorded(models, numerai, runs_dir):
    model = models["good_1arg"]
    result = upload(numerai, model)
    assert result.code == 0, result.stderr
    report = result.report
    record = report["upload"]
    assert report["status"] == "Success" and report["python"] == "3.11"
    assert record["outcome"] == "uploaded" and record["exit_code"] == 0
    [mutation] = numerai.mutations
    expected_version = report["data"].get("version") or "v5.3"  # synthetic data names none: Numerai's default
    assert mutation == {"filename": mutation["filename"], "tournament": 8, "modelId": numerai.model("alpha")["id"],
                        "dockerImageId": numerai.image_named("Python 3.11")["id"],
                        "dataVersionId": numerai.version_named(expected_version)["id"]}
    assert numerai.uploaded == {mutation["filename"]: model.read_bytes()}  # the very bytes judged
    assert record["upload_id"] == numerai.model("alpha")["computePickleUpload"]["id"]
    assert record["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest() == report["model"]["sha256"]
    assert f"uploaded to alpha: upload id {record['upload_id']}" in result.stderr
    assert 'image "Python 3.11"' in result.stderr and "Traceback" not in result.stderr
    # Numerai's limits, a fresh sandbox, none left behind.
    assert report["limits"]["numerai"] is True and report["container"]["prestarted"] is False
    shown = run_cli("runs", "show", report["history_id"])
    assert f"upload id {record['upload_id']}" in shown.stdout and "model alpha · Python 3.11" in shown.stdout
    # What Numerai says next, beside this run: found by the sha256 of the file sent.
    numerai.fail_upload("alpha", "Python 3.11", "Pickle function returned invalid predictions. Ensure values are "
                        "between 0 and 1.")
    status = run_cli("uploads", "--model", "alpha", "--json", env=numerai.env())
    assert status.code == 0, status.stderr
    [entry] = json.loads(status.stdout)
    assert entry["numerai"]["status"] == "Failed" and entry["local"]["status"] == "Success"
    assert entry["local"]["run_id"] == report["history_id"] and entry["local"]["matched_by"] == "sha256"
    assert entry["agree"] is False and entry["advice"]


def test_a_312_pickle_uploads_with_python_312(made_by_312, numerai, runs_dir):
    result = upload(numerai, made_by_312)
    assert result.code == 0, result.stderr
    assert result.report["python"] == "3.12"
    [mutation] = numerai.mutations
    assert mutation["dockerImageId"] == numerai.image_named("Python 3.12")["id"]
    assert result.report["upload"]["docker_image"] == "Python 3.12"


def test_dry_run_checks_everything_and_sends_nothing(models, numerai, runs_dir):
    result = upload(numerai, models["good_1arg"], "--dry-run")
    assert result.code == 0, result.stderr
    assert result.report["upload"]["outcome"] == "dry_run" and result.report["upload"]["docker_image"] == "Python 3.11"
    assert sent(numerai) == [] and numerai.requests, "the dry run asked Numerai, and sent nothing"
    assert "nothing sent" in result.stderr


def test_an_experimental_image_warns_and_goes(models, numerai, runs_dir):
    numerai.image_named("Python 3.11")["experimental"] = True
    result = upload(numerai, models["good_1arg"])
    assert result.code == 0, result.stderr
    assert "warning: Numerai marks its Python 3.11 image experimental" in result.stderr
    assert sent(numerai) == ["PUT", "POST"]


@pytest.mark.parametrize("answer", ["y", "n"])
def test_a_terminal_is_asked_before_sending(models, numerai, runs_dir, answer):
    import os
    import sys

    pexpect = pytest.importorskip("pexpect")
    from conftest import ROOT

    child = pexpect.spawn(sys.executable, ["-m", "runner", "upload", str(models["good_1arg"]), "--model", "alpha"],
                          cwd=str(ROOT), env={**os.environ, **numerai.env()}, encoding="utf-8", timeout=300)
    child.expect(r"Upload good_1arg\.pkl to alpha\? \[y/N\]")
    assert sent(numerai) == []
    child.sendline(answer)
    child.expect(pexpect.EOF, timeout=60)
    child.close()
    if answer == "y":
        assert child.exitstatus == 0 and "uploaded to alpha: upload id" in child.before
        assert sent(numerai) == ["PUT", "POST"]
    else:
        assert child.exitstatus == 1 and "not uploaded: declined" in child.before
        assert sent(numerai) == []
        shown = run_cli("runs", "show")
        assert "not uploaded: declined" in shown.stdout


# ---------------------------------------------------------------- refused: nothing sent

def test_a_failed_pickle_sends_no_request_at_all(models, numerai, runs_dir):
    result = upload(numerai, models["raises"])
    assert result.code == 1
    assert result.report["status"] == "Failed" and result.report["upload"]["outcome"] == "refused"
    assert "not uploaded: the verdict is Failed (model_exception)" in result.stderr
    assert numerai.requests == []


def test_an_error_verdict_is_refused_with_exit_3(models, numerai, runs_dir):
    """Error (here: live data that cannot be downloaded) is not the model's fault, and nothing goes either."""
    result = upload(numerai, models["good_1arg"], "--data", "v5.2/live.parquet",
                    env={"NUMERAI_API_URL": "http://127.0.0.1:1/"})
    assert result.code == 3 and result.report["reason"] == "data_unavailable"
    assert result.report["upload"]["outcome"] == "refused" and numerai.requests == []


@pytest.mark.parametrize("change, words", [
    ("deprecated", "Numerai's image for Python 3.11 (Python 3.11) is deprecated"),
    ("missing", "Numerai lists no image for Python 3.11 (Numerai offers Python 3.10, Python 3.12, Python 3.13, "
                "Python 3.14)"),
])
def test_no_current_image_for_the_python_is_refused(models, numerai, runs_dir, change, words):
    if change == "deprecated":
        numerai.image_named("Python 3.11")["deprecated"] = True
    else:
        numerai.images.remove(numerai.image_named("Python 3.11"))
    result = upload(numerai, models["good_1arg"])
    assert result.code == 1, result.stderr
    assert words in result.stderr and "nothing was sent" in result.stderr
    assert sent(numerai) == []


def test_an_unknown_model_lists_the_accounts_models(models, numerai, runs_dir):
    result = run_cli("upload", models["good_1arg"], "--model", "gamma", "--yes", env=numerai.env())
    assert result.code == 2
    assert "this account has no model named 'gamma'; its models: alpha, beta" in result.stdout
    assert sent(numerai) == []


# ---------------------------------------------------------------- errors a user can act on

def test_a_refused_put_is_an_error_never_uploaded(models, numerai, runs_dir):
    numerai.put_status = 403
    result = upload(numerai, models["good_1arg"])
    assert result.code == 3
    record = result.report["upload"]
    assert record["outcome"] == "failed" and "upload_id" not in record
    assert "Numerai's storage refused the pickle: HTTP 403" in result.stderr and "AccessDenied" in result.stderr
    assert "uploaded to" not in result.stderr and "Traceback" not in result.stderr
    assert numerai.mutations == [] and numerai.uploaded == {}, "Numerai was never told of a file it does not have"


@pytest.mark.parametrize("failure", ["rejected_key", "graphql_error", "http_500"])
def test_numerais_refusals_after_a_success_are_errors_with_its_message(models, numerai, runs_dir, failure):
    env = {}
    if failure == "rejected_key":
        env = {"NUMERAI_SECRET_KEY": "not-the-key"}
    elif failure == "graphql_error":
        numerai.graphql_error = "Model upload is temporarily disabled"
    else:
        numerai.http_status = 500
    result = upload(numerai, models["good_1arg"], env=env)
    assert result.code == 3, result.stderr
    assert result.report["status"] == "Success" and result.report["upload"]["outcome"] == "failed"
    message = {"rejected_key": f"Numerai answered: {numerai.auth_message}",
               "graphql_error": "Numerai answered: Model upload is temporarily disabled",
               "http_500": "Http Error: 500 Server Error"}[failure]
    assert message in result.stderr and "Traceback" not in result.stderr and "ERROR" not in result.stderr
    assert sent(numerai) == []


@pytest.mark.parametrize("failure", ["rejected_key", "graphql_error", "http_500", "no_network"])
def test_uploads_errors_are_exit_3_with_numerais_message(numerai, failure):
    env = numerai.env()
    if failure == "rejected_key":
        env["NUMERAI_PUBLIC_ID"] = "someone-else"
    elif failure == "graphql_error":
        numerai.graphql_error = "Something went wrong on our side"
    elif failure == "http_500":
        numerai.http_status = 500
    else:
        env["NUMERAI_API_URL"] = "http://127.0.0.1:1/graphql"
    result = run_cli("uploads", env=env)
    assert result.code == 3
    expected = {"rejected_key": numerai.auth_message, "graphql_error": "Something went wrong on our side",
                "http_500": "500 Server Error", "no_network": "127.0.0.1:1 is unreachable"}[failure]
    assert expected in result.stderr and "Traceback" not in result.stderr
    if failure == "rejected_key":
        assert "check NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY" in result.stderr


@pytest.mark.parametrize("missing", KEY_VARS)
def test_missing_credentials_are_a_usage_error_before_anything_runs(tmp_path, numerai, missing):
    model = tmp_path / "model.pkl"
    model.write_bytes(b"not run")
    env = {**numerai.env(), missing: ""}
    for args in (["upload", model, "--model", "alpha"], ["uploads"]):
        result = run_cli(*args, env=env)
        assert result.code == 2, result.stderr
        assert missing in result.stderr and all(name in result.stderr for name in KEY_VARS)
        assert "Pending" not in result.stdout + result.stderr
    assert numerai.requests == []


def test_a_malformed_api_url_and_a_non_pkl_file_are_usage_errors(tmp_path, numerai):
    model = tmp_path / "model.pkl"
    model.write_bytes(b"x")
    bad = run_cli("uploads", env=numerai.env(NUMERAI_API_URL="127.0.0.1:8080"))
    assert bad.code == 2 and "NUMERAI_API_URL='127.0.0.1:8080' is not an http(s) URL" in bad.stderr
    other = tmp_path / "model.pickle"
    other.write_bytes(b"x")
    named = run_cli("upload", other, "--model", "alpha", env=numerai.env())
    assert named.code == 2 and "Numerai takes model files ending in .pkl" in named.stderr


def test_uploads_unknown_model_lists_the_accounts_models(numerai):
    result = run_cli("uploads", "--model", "nope", env=numerai.env())
    assert result.code == 2 and "its models: alpha, beta" in result.stderr


# ---------------------------------------------------------------- What did Numerai say?

def _recorded_run(tmp_path, name="model.pkl", python="3.11"):
    """A Success of a file made by `python`, recorded in the history as a run records it."""
    from runner.usecases import history
    from runner.verdict.lifecycle import Status
    from runner.verdict.report import Report

    path = tmp_path / name
    path.write_bytes(b"pickle bytes")
    report = Report(Status.SUCCESS, None, "", python=python, pickle={"python": python},
                    model={"path": str(path), "size_bytes": 12, "sha256": hashlib.sha256(b"pickle bytes").hexdigest()},
                    data={"source": "synthetic", "description": "synthetic v5-shaped live data"},
                    limits={"relaxed": []}, timeline=[{"status": "Success", "at": "2026-12-01T09:00:00+00:00",
                                                       "elapsed": 2.0}])
    return history.record(report)


def test_uploads_shows_numerais_failure_beside_this_machines_verdict(numerai, runs_dir, tmp_path):
    run_id = _recorded_run(tmp_path)
    numerai.set_upload("alpha", "model.pkl", dockerImageName="Python 3.12")  # numerapi's default image, by hand
    numerai.fail_upload("alpha", "Python 3.12", "⚠️ Segmentation fault! Ensure python and library versions match "
                        "our environment.")
    result = run_cli("uploads", "--model", "alpha", env=numerai.env())
    assert result.code == 0, result.stderr
    out = result.stdout
    assert "alpha · model.pkl" in out and "image Python 3.12" in out
    assert "Numerai:      Failed (validation Failed, trigger Failed)" in out
    assert "Segmentation fault! Ensure python and library versions match our environment." in out
    assert "2026-12-01T10:00:00Z" in out and "Resources are being provisioned" in out
    assert f"this machine: Success · run {run_id}" in out and "matched by file name" in out
    assert ("they differ: Numerai ran it in Python 3.12; it was made by 3.11: `numerai-sandbox upload model.pkl "
            "--model alpha` picks 3.11") in out
    [entry] = json.loads(run_cli("uploads", "--model", "alpha", "--json", env=numerai.env()).stdout)
    assert entry["numerai"]["docker_image"] == "Python 3.12" and entry["local"]["made_by"] == "3.11"
    assert [s["status"] for s in entry["numerai"]["triggers"][0]["statuses"]] == ["pending", "running", "failed"]


def test_uploads_lists_every_model_of_the_tournament(numerai, runs_dir, tmp_path):
    _recorded_run(tmp_path)
    numerai.set_upload("alpha", "model.pkl", dockerImageName="Python 3.11", validationStatus="succeeded")
    result = run_cli("uploads", "--json", env=numerai.env())
    entries = {e["model"]: e for e in json.loads(result.stdout)}
    assert set(entries) == {"alpha", "beta"}  # not the Signals model
    assert entries["alpha"]["agree"] is True and entries["alpha"]["numerai"]["status"] == "Success"
    assert entries["beta"]["numerai"] is None and "no pickle uploaded for beta" in entries["beta"]["advice"][0]


# ---------------------------------------------------------------- the local Numerai speaks numerapi's dialect

def test_the_local_numerai_answers_numerapis_own_calls(numerai, tmp_path, monkeypatch):
    """numerapi's own methods, unchanged, against the server: its exact queries validate against the schema and
    its parsing reads the answers. It also shows why `upload` makes the calls itself: numerapi's model_upload
    sends no image unless told one, and reports a pickle Numerai never received as uploaded."""
    import numerapi
    from numerapi import base_api

    monkeypatch.setattr(base_api, "API_TOURNAMENT_URL", numerai.url)
    api = numerapi.NumerAPI(numerai.public_id, numerai.secret_key, show_progress_bars=False)
    assert api.get_models() == {"alpha": numerai.model("alpha")["id"], "beta": numerai.model("beta")["id"]}
    assert api.model_upload_docker_images()["Python 3.11"] == numerai.image_named("Python 3.11")["id"]
    assert set(api.model_upload_data_versions()) == {"v5.2", "v5.3"}
    assert api.get_current_round() == 1234
    pickle = tmp_path / "model.pkl"
    pickle.write_bytes(b"bytes")
    upload_id = api.model_upload(str(pickle), model_id=numerai.model("alpha")["id"])
    assert numerai.mutations[-1]["dockerImageId"] is None and upload_id
    numerai.put_status = 403
    assert api.model_upload(str(pickle), model_id=numerai.model("alpha")["id"], docker_image="Python 3.11")
    assert len(numerai.mutations) == 2 and len(numerai.uploaded) == 1, "numerapi announced a file the PUT refused"


# ---------------------------------------------------------------- the decisions, as pure logic

def test_image_choice():
    from runner.numerai_api import DockerImage
    from runner.usecases.upload import Refused, image_for

    images = [DockerImage("a", "Python 3.11"), DockerImage("b", "Python 3.12", default=True),
              DockerImage("c", "Python 3.14", experimental=True), DockerImage("d", "Python 3.9", deprecated=True),
              DockerImage("e", "", image="numerai_predict_py_3_13:abc")]
    assert image_for(images, "3.11") == (images[0], [])
    assert image_for(images, "3.13")[0].id == "e"
    assert image_for(images, "3.14")[1] == ["Numerai marks its Python 3.14 image experimental"]
    for python, words in (("3.9", "deprecated"), ("3.10", "lists no image for Python 3.10"), (None, "Python ?")):
        with pytest.raises(Refused, match=words) as refused:
            image_for(images, python)
        assert refused.value.exit_code == 1


def test_data_version_choice():
    from runner.numerai_api import DataVersion
    from runner.usecases.upload import Refused, data_version_for

    versions = [DataVersion("1", "v5.2"), DataVersion("2", "v5.3", default=True)]
    assert data_version_for(versions, {"source": "round", "version": "v5.2"}, None) == (versions[0], "the run's data")
    assert data_version_for(versions, {"source": "synthetic", "real_names": "v5.2"}, None)[0] == versions[0]
    assert data_version_for(versions, {"source": "local"}, "v5.2") == (versions[0], "asked with --data-version")
    assert data_version_for(versions, {"source": "synthetic"}, None)[0] == versions[1]
    assert data_version_for([DataVersion("1", "v5.2")], {"source": "synthetic"}, None)[0] is None
    with pytest.raises(Refused, match="judged on data v4.3, which Numerai does not offer") as refused:
        data_version_for(versions, {"source": "round", "version": "v4.3"}, None)
    assert refused.value.exit_code == 2


def test_model_choice_and_file_name():
    from pathlib import Path

    from runner.numerai_api import Model
    from runner.usecases.upload import Refused, find_model, numerai_filename

    models = [Model("1", "alpha"), Model("2", "Beta")]
    assert find_model(models, "alpha").id == "1" and find_model(models, "beta").id == "2"
    with pytest.raises(Refused, match="its models: Beta, alpha"):
        find_model(models, "gamma")
    with pytest.raises(Refused, match="no model to upload to"):
        find_model([], "gamma")
    assert numerai_filename(Path("/x/model.pkl")) == "model.pkl"
    with pytest.raises(ValueError, match="rename it"):
        numerai_filename(Path("model.pickle"))


def test_numerais_status_words():
    from runner.usecases.uploads import status_of

    assert [status_of(w) for w in ("succeeded", "FAILED", "invalid", "error", "pending", "running", "validating",
                                   None, "something new")] == [
        "Success", "Failed", "Failed", "Error", "Pending", "Running", "Validating", None, "something new"]
