"""End to end against the real engine: every status path of `numerai-sandbox run`."""

from __future__ import annotations

import time

import pytest

from conftest import run_cli

# model -> (status, reason, subcode)
VERDICTS = {
    "good_1arg": ("Success", None, None),
    "good_2arg": ("Success", None, None),
    "good_default_param": ("Success", None, None),
    "good_probability": ("Success", None, None),
    "good_with_extra_ids": ("Success", None, None),
    "lambda_1arg": ("Success", None, None),
    "prints_then_predicts": ("Success", None, None),
    "data_at_load": ("Success", None, None),
    "raises": ("Failed", "model_exception", None),
    "returns_none": ("Failed", "invalid_output", "returned_none"),
    "returns_series": ("Failed", "invalid_output", "not_dataframe"),
    "returns_ndarray": ("Failed", "invalid_output", "not_dataframe"),
    "empty_frame": ("Failed", "invalid_output", "empty"),
    "nan_output": ("Failed", "invalid_output", "nan"),
    "out_of_range": ("Failed", "invalid_output", "out_of_range"),
    "constant": ("Failed", "invalid_output", "constant"),
    "missing_ids": ("Failed", "invalid_output", "missing_ids"),
    "duplicate_ids": ("Failed", "invalid_output", "duplicate_ids"),
    "wrong_header": ("Failed", "invalid_output", "bad_headers"),
    "unnamed_index": ("Failed", "invalid_output", "bad_headers"),
    "two_columns": ("Failed", "invalid_output", "bad_headers"),
    "string_predictions": ("Failed", "invalid_output", "not_numeric"),
    "zero_args": ("Failed", "bad_signature", None),
    "three_args": ("Failed", "bad_signature", None),
    "not_callable": ("Failed", "bad_signature", None),
    "truncated": ("Failed", "invalid_pickle", None),
    "empty": ("Failed", "invalid_pickle", None),
    "csv_file": ("Failed", "invalid_pickle", None),
    "html_page": ("Failed", "invalid_pickle", None),
}
EXIT = {"Success": 0, "Failed": 1, "Error": 3}


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_verdict(models, name):
    status, reason, subcode = VERDICTS[name]
    result = run_cli("run", models[name], "--json", "--timeout", "2m")
    report = result.report
    assert (report["status"], report["reason"], report["subcode"]) == (status, reason, subcode), report["message"]
    assert result.code == EXIT[status]
    assert "Traceback" not in result.stderr  # never a traceback of ours on the terminal
    statuses = [entry["status"] for entry in report["timeline"]]
    assert statuses[0] == "Pending" and statuses[-1] == status
    if status == "Success":
        assert statuses == ["Pending", "Running", "Validating", "Success"]
        assert report["n_predictions"] >= report["data"]["rows"]
        assert all(c["passed"] is not False or not c["blocking"] for c in report["checks"])
    else:
        assert report["message"] and report["action"]


def test_report_fields(models):
    report = run_cli("run", models["good_2arg"], "--json").report
    for field in ("status", "reason", "message", "checks", "timeline", "durations", "peak_memory_bytes", "limits",
                  "python", "image", "library_versions", "n_predictions", "predictions_path", "logs_tail"):
        assert field in report
    assert report["python"] == "3.11"
    for dist in ("pandas", "numpy", "pyarrow", "scipy", "scikit-learn", "lightgbm", "xgboost", "cloudpickle"):
        assert report["library_versions"][dist]
    assert report["limits"]["memory_bytes"] == 4 * 1024**3 and report["limits"]["cpus"] == 1
    assert report["limits"]["network"] == "none" and report["limits"]["timeout_seconds"] == 600
    assert report["model"]["parameters"] == ["live_features", "live_benchmark_models"]
    assert report["peak_memory_bytes"] > 50 * 1024**2
    assert report["durations"]["phases"]["predicting"] >= 0
    assert [e["status"] for e in report["timeline"]] == ["Pending", "Running", "Validating", "Success"]
    rules = [c["rule"] for c in report["checks"]]
    assert rules[:6] == ["returned_none", "not_dataframe", "empty", "nan", "not_numeric", "out_of_range"]
    assert "constant" in rules and "missing_ids" in rules


@pytest.mark.parametrize("name, phases", [
    ("good_1arg", ["starting", "loading", "reading_data", "predicting"]),
    ("good_2arg", ["starting", "loading", "reading_data", "reading_benchmarks", "predicting"]),
    ("three_args", ["starting", "loading", "reading_data", "reading_benchmarks", "predicting"]),
    ("zero_args", ["starting", "loading", "reading_data", "predicting"]),
])
def test_phases_follow_numerai_predicts_order(models, name, phases):
    """numerai-predict's order in a cold sandbox: the pickle, its parameters counted, the live data, the
    benchmark models for more than one parameter (3 too, as predict.py reads them for num_args > 1), then the
    call (where a wrong count fails); the memory samples run through the phases in that order."""
    cold = run_cli("run", models[name], "--json", env={"NUMERAI_SANDBOX_WARM": "0"}).report
    assert cold["status"] == ("Success" if name.startswith("good") else "Failed") and not cold["container"]["prestarted"]
    assert [p["phase"] for p in cold["phase_times"]][:len(phases)] == phases
    assert ("reading_benchmarks" in cold["durations"]["phases"]) == (len(phases) == 5)
    starts = [p["start"] for p in cold["phase_times"]]
    assert starts == sorted(starts)
    samples = [t for t, _ in cold["memory_samples"]]
    assert samples == sorted(samples) and samples[0] <= cold["phase_times"][-1]["start"]
    log = [line.removeprefix("numerai-sandbox harness: ") for line in cold["logs_tail"].splitlines()]
    assert log.index("Loading model /input/model.pkl") < log.index("Loading live features /input/live.parquet")


def test_the_pickle_loads_before_the_data_is_read(models):
    """On Numerai the live data is not in memory while the pickle loads; a model sees that from inside its own
    unpickling (any DataFrame alive then?)."""
    report = run_cli("run", models["data_at_load"], "--json", env={"NUMERAI_SANDBOX_WARM": "0"}).report
    assert report["status"] == "Success", report["message"]
    assert "DATA IN MEMORY WHILE LOADING: False" in report["logs_tail"]


def test_nan_rule_named_with_examples(models):
    result = run_cli("run", models["nan_output"], "--json")
    report = result.report
    assert (result.code, report["status"], report["reason"], report["subcode"]) == (1, "Failed", "invalid_output", "nan")
    nan = next(c for c in report["checks"] if c["rule"] == "nan")
    assert nan["passed"] is False and nan["count"] == 672 and len(nan["examples"]) == 5


def test_human_output_lists_statuses_live(models):
    result = run_cli("run", models["good_1arg"])
    assert result.code == 0
    lines = result.stdout.splitlines()
    seen = [s for line in lines for s in ("Pending", "Running", "Validating", "Success") if f"s  {s}" in line]
    assert seen == ["Pending", "Running", "Validating", "Success"]


def test_out_of_memory_under_default_limit(models):
    result = run_cli("run", models["allocate_6gb"], "--json")
    report = result.report
    assert (report["status"], report["reason"]) == ("Failed", "out_of_memory"), report["message"]
    assert report["evidence"]["limit_bytes"] == 4 * 1024**3
    assert "4 GiB memory limit" in report["message"] and report["phase"] == "predicting"


def test_timeout_kills_within_limit(models):
    started = time.monotonic()
    result = run_cli("run", models["sleep_forever"], "--timeout", "20s", "--json")
    elapsed = time.monotonic() - started
    report = result.report
    assert (report["status"], report["reason"], report["phase"]) == ("Failed", "timeout", "predicting")
    assert report["evidence"]["limit_seconds"] == 20
    assert elapsed < 30


def test_docker_unreachable_is_error(models, tmp_path):
    result = run_cli("run", models["good_1arg"], env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert result.code == 3
    assert "Error (docker_unavailable)" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    json_result = run_cli("run", models["good_1arg"], "--json", env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert json_result.code == 3 and json_result.report["reason"] == "docker_unavailable"


def test_output_written_csv_and_parquet(models, tmp_path):
    import pandas as pd

    csv = tmp_path / "preds.csv"
    report = run_cli("run", models["good_1arg"], "--output", csv, "--json").report
    assert report["predictions_path"] == str(csv)
    frame = pd.read_csv(csv)
    assert list(frame.columns) == ["id", "prediction"] and len(frame) == report["n_predictions"]
    parquet = tmp_path / "preds.parquet"
    run_cli("run", models["good_1arg"], "--output", parquet)
    assert pd.read_parquet(parquet).index.name == "id"


def test_failed_run_writes_no_predictions(models, tmp_path):
    out = tmp_path / "preds.csv"
    report = run_cli("run", models["nan_output"], "--output", out, "--json").report
    assert report["predictions_path"] is None and not out.exists()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_rejected_predictions_are_written_only_where_asked(models, tmp_path, suffix):
    import pandas as pd

    accepted, rejected = tmp_path / f"accepted{suffix}", tmp_path / f"rejected{suffix}"
    result = run_cli("run", models["nan_output"], "--output", accepted, "--output-rejected", rejected, "--json")
    report = result.report
    assert (result.code, report["reason"], report["subcode"]) == (1, "invalid_output", "nan")
    assert report["predictions_path"] is None and not accepted.exists()
    assert report["rejected_predictions_path"] == str(rejected)
    frame = pd.read_parquet(rejected).reset_index() if suffix == ".parquet" else pd.read_csv(rejected)
    assert list(frame.columns) == ["id", "prediction"] and len(frame) == report["data"]["rows"]
    assert frame["prediction"].isna().sum() == next(c for c in report["checks"] if c["rule"] == "nan")["count"]
    good = run_cli("run", models["good_1arg"], "--output-rejected", tmp_path / "never.csv", "--json").report
    assert good["status"] == "Success" and good["rejected_predictions_path"] is None
    assert not (tmp_path / "never.csv").exists()


# `run` with the modules it imported written out at exit: the host's run path (read live.parquet's ids, receive
# the CSV, validate, write the predictions) runs on pyarrow and numpy alone.
WATCHED_RUN = """
import atexit, json, os, sys
atexit.register(lambda: open(os.environ["MODULES_OUT"], "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["numerai-sandbox", *sys.argv[1:]]
from runner.cli.main import main
main()
"""


@pytest.mark.parametrize("model, options, status", [
    ("good_1arg", ("--output", "preds.parquet"), "Success"),
    ("good_with_extra_ids", ("--output", "preds.csv"), "Success"),
    ("nan_output", ("--output-rejected", "rejected.csv"), "Failed"),
])
def test_the_run_path_imports_neither_pandas_nor_numerai_tools(models, tmp_path, model, options, status):
    import json
    import os
    import subprocess
    import sys

    from conftest import ROOT

    modules = tmp_path / "modules.json"
    args = [str(tmp_path / a) if a.endswith((".csv", ".parquet")) else a for a in options]
    proc = subprocess.run([sys.executable, "-c", WATCHED_RUN, "run", str(models[model]), "--json", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=dict(os.environ, MODULES_OUT=str(modules)))
    assert json.loads(proc.stdout)["status"] == status, proc.stdout + proc.stderr
    assert (tmp_path / args[-1]).stat().st_size > 0
    imported = {name.split(".")[0] for name in json.loads(modules.read_text())}
    assert {"pyarrow", "numpy"} <= imported
    assert not imported & {"pandas", "numerai_tools", "scipy", "sklearn"}
    assert not list(tmp_path.glob(".numerai-sandbox-*"))  # the CSV's bytes waited beside the output, then went


def test_report_file_and_debug(models, tmp_path):
    path = tmp_path / "report.json"
    result = run_cli("run", models["raises"], "--report", path, "--debug")
    assert result.code == 1
    assert "the model is broken on purpose" in result.stdout  # the full traceback, with --debug
    import json

    assert json.loads(path.read_text())["reason"] == "model_exception"


def test_model_output_captured(models):
    report = run_cli("run", models["prints_then_predicts"], "--json").report
    assert "hello from the model on stdout" in report["logs_tail"]
    assert "and a warning on stderr" in report["logs_tail"]


def test_inputs_untouched(models, tmp_path):
    import hashlib

    before = hashlib.sha256(models["good_1arg"].read_bytes()).hexdigest()
    mtime = models["good_1arg"].stat().st_mtime_ns
    run_cli("run", models["good_1arg"])
    assert hashlib.sha256(models["good_1arg"].read_bytes()).hexdigest() == before
    assert models["good_1arg"].stat().st_mtime_ns == mtime


def test_keep_leaves_container_until_clean(client, models):
    report = run_cli("run", models["good_1arg"], "--keep", "--json").report
    name = report["container"]["name"]
    assert client.containers.get(name).labels["numerai-sandbox.keep"] == "1"
    result = run_cli("clean")
    assert name in result.stdout
    assert not [c for c in client.api.containers(all=True, filters={"name": name})]


def test_numerapi_dataset_offline_is_error(models):
    """A numerapi dataset name downloads when online and fails clearly (Error/data_unavailable) when not
    (conftest points NUMERAI_API_URL at a closed local port: offline, whatever this machine can reach)."""
    result = run_cli("run", models["good_1arg"], "--data", "v5.2/live.parquet", "--json")
    report = result.report
    assert result.code == 3 and (report["status"], report["reason"]) == ("Error", "data_unavailable")
    assert "v5.2/live.parquet" in report["message"] and "unreachable" in report["message"]
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr


def test_internal_error_keeps_traceback_off_the_terminal(models, monkeypatch, capsys):
    """A bug of ours is Error/internal_error: traceback in the report, a hint on the terminal."""
    from runner.run import RunRequest
    from runner.run.run import execute
    from runner.verdict import validate
    from runner.support.console import Console

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in numerai-sandbox")

    monkeypatch.setattr(validate, "validate", broken)
    report = execute(RunRequest(model=models["good_1arg"]), Console())
    assert (report.status.value, report.reason, report.exit_code) == ("Error", "internal_error", 3)
    assert "RuntimeError: a bug in numerai-sandbox" in report.traceback
    assert "Traceback" not in capsys.readouterr().out
    assert [e["status"] for e in report.timeline] == ["Pending", "Running", "Validating", "Error"]
