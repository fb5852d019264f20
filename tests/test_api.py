"""The Python API against the real engine: run_pickle's verdicts are the command line's, its runs are
recorded and shown by `runs list`/`runs show`, its options are judged before anything runs, and the
notebook example runs top to bottom."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_cli
from runner.usecases import history
from runner.api import BadInput, last_runs, load_run, run_pickle


def verdict(report: dict) -> tuple:
    return report["status"], report["reason"], report["subcode"], report["n_predictions"]


def test_run_pickle_gives_the_cli_verdict_and_is_recorded(models, runs_dir, tmp_path):
    page, predictions = tmp_path / "page.html", tmp_path / "predictions.csv"
    good = run_pickle(models["good_1arg"], timeout="2m", html=page, output=predictions)
    bad = run_pickle(models["nan_output"], timeout=120, memory=4 * 1024**3)
    assert good.ok and good.status.value == "Success" and good.n_predictions > 0
    assert (bad.ok, bad.reason, bad.subcode) == (False, "invalid_output", "nan") and bad.message and bad.action
    for report in (good, bad):  # a readable one-liner in a notebook, not every memory sample
        assert "\n" not in repr(report) and report.history_id in repr(report)

    cli_good = run_cli("run", models["good_1arg"], "--json", "--timeout", "2m")
    cli_bad = run_cli("run", models["nan_output"], "--json", "--timeout", "2m", "--no-history")
    assert (cli_good.code, cli_bad.code) == (0, 1)
    assert verdict(good.to_dict()) == verdict(cli_good.report)
    assert verdict(bad.to_dict()) == verdict(cli_bad.report)
    assert cli_good.report["history_id"] and cli_bad.report["history_id"] is None  # --no-history
    assert good.container["kept"] is False and cli_good.report["container"]["kept"] is False  # no --keep: none kept

    recorded = [e["id"] for e in json.loads(run_cli("runs", "list", "--json").stdout)]
    assert recorded == [cli_good.report["history_id"], bad.history_id, good.history_id]
    assert [e["id"] for e in last_runs()] == recorded
    table = run_cli("runs", "list").stdout.splitlines()
    row = next(line for line in table if line.startswith(bad.history_id))
    assert "nan_output.pkl" in row and "Failed invalid_output/nan" in row and "3.11" in row

    shown = run_cli("runs", "show", good.history_id)
    assert shown.code == 0, shown.stderr
    assert f"run {good.history_id}" in shown.stdout and str(models["good_1arg"]) in shown.stdout
    assert f"Success: {good.n_predictions:,} predictions" in shown.stdout
    assert f"predictions  {predictions}" in shown.stdout and f"html         {page}" in shown.stdout
    stored = run_cli("runs", "show", bad.history_id, "--json").stdout
    assert json.loads(stored) == json.loads(bad.to_json())  # exactly the report run_pickle returned
    assert load_run("nan_output.pkl").to_dict() == bad.to_dict()


def test_history_false_records_nothing(models, runs_dir):
    report = run_pickle(models["good_1arg"], history=False)
    assert report.ok and report.history_id is None and history.ids() == []


@pytest.mark.parametrize("options,option,message", [
    ({"memory": "lots"}, "memory", "not a memory size"),
    ({"memory": "1m"}, "memory", "below the 64m minimum"),
    ({"timeout": "soon"}, "timeout", "not a duration"),
    ({"timeout": 0}, "timeout", "more than 0 seconds"),
    ({"cpus": 0}, "cpus", "more than 0"),
    ({"python": 3.10}, "python", "give it as a string"),
    ({"python": "3.9"}, "python", "not one of auto, 3.10"),
    ({"profile": "huge"}, "profile", "not one of auto, standard, full"),
    ({"data_version": "5.3"}, "data_version", "not a dataset version"),
    ({"data": "/nonexistent/live.parquet"}, "data", "no such file or directory"),
    ({"output": "{model}"}, "output", "is one of the inputs"),
    ({"report": "/nonexistent-dir/r.json"}, "report", "does not exist"),
])
def test_bad_options_raise_before_anything_runs(tmp_path, runs_dir, options, option, message):
    model = tmp_path / "model.pkl"
    model.write_bytes(b"\x80\x05N.")
    options = {k: v.format(model=model) if isinstance(v, str) else v for k, v in options.items()}
    with pytest.raises(BadInput, match=message) as raised:
        run_pickle(model, **options)
    assert raised.value.option == option and isinstance(raised.value, ValueError)
    assert model.read_bytes() == b"\x80\x05N." and history.ids() == []


def test_a_missing_model_names_the_model(tmp_path):
    with pytest.raises(BadInput, match="does not exist") as raised:
        run_pickle(tmp_path / "nope.pkl")
    assert raised.value.option == "model"


def test_the_notebook_example_runs_top_to_bottom(models, runs_dir):
    env = dict(os.environ, MODEL=str(models["good_1arg"]))
    done = subprocess.run([sys.executable, "examples/notebook_api.py"], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Success" in done.stdout and "reason: out_of_memory" in done.stdout
    assert "'memory' refused: memory='lots': 'lots' is not a memory size" in done.stdout
    assert "True out_of_memory" in done.stdout  # load_run("last") read the tight run back
    assert len(history.ids()) == 2


def test_check_gives_each_pickle_its_run_verdict_and_the_worst_exit_code(models, runs_dir, tmp_path):
    from runner.api import CheckResult, check

    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("good_1arg", "nan_output"):
        (folder / f"{name}.pkl").write_bytes(models[name].read_bytes())
    result = check(folder, jobs=2)
    assert isinstance(result, CheckResult) and len(result) == 2 and result.exit_code == 1 and not result.ok
    verdicts = {Path(str(r.model["path"])).stem: (r.status.value, r.reason, r.subcode) for r in result}
    assert verdicts == {"good_1arg": ("Success", None, None), "nan_output": ("Failed", "invalid_output", "nan")}
    assert check(folder / "good_1arg.pkl").ok
    batches = {e.get("batch") for e in last_runs(limit=0) if e["model"]["name"] == "nan_output.pkl"}
    assert any(b and b.startswith("check-") for b in batches)  # recorded under the check's batch id
    with pytest.raises(BadInput, match="jobs"):
        check(folder, jobs=0)
