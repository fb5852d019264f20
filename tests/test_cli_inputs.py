"""Bad inputs: a clear, specific message and a non-zero exit, before anything runs; nothing overwritten."""

from __future__ import annotations

import os

import pytest

from conftest import run_cli


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x05N.")
    return path


@pytest.mark.parametrize("args,message", [
    (["run", "/nonexistent/model.pkl"], "does not exist"),
    (["run", "{file}", "--memory", "lots"], "not a memory size"),
    (["run", "{file}", "--memory", "1m"], "below the 64m minimum"),
    (["run", "{file}", "--timeout", "soon"], "not a duration"),
    (["run", "{file}", "--cpus", "0"], "from 0.01 to"),
    (["run", "{file}", "--cpus", "0.001"], "from 0.01 to"),
    (["run", "{file}", "--cpus", "100"], f"from 0.01 to {os.cpu_count()} (the cores of this machine)"),
    (["run", "{file}", "--memory", "100000g"], "is more than this machine's memory"),
    (["run", "{file}", "--python", "3.9"], "'3.9' is not one of"),
    (["run", "{file}", "--data", "/nonexistent/live.parquet"], "no such file or directory"),
    (["run", "{file}", "--data", "{dir}/v5.2/live.parquet"], "no such file in the local directory"),
    (["run", "{file}", "--data", "{dir}"], "live.parquet does not exist"),
    (["run", "{file}", "--data-version", "5.3"], "not a dataset version"),
    (["run", "{file}", "--benchmarks", "{dir}"], "is a directory"),
    (["run", "{file}", "--data", "{file}"], "not a readable parquet file"),
    (["run", "{file}", "--output", "{file}"], "is one of the inputs"),
    (["run", "{file}", "--report", "/nonexistent-dir/r.json"], "does not exist"),
    (["run", "{file}", "--output-rejected", "{file}"], "is one of the inputs"),
    (["run", "{file}", "--output-rejected", "/nonexistent-dir/rejected.csv"], "does not exist"),
    (["run", "{file}", "--output", "{dir}/p.csv", "--output-rejected", "{dir}/p.csv"], "name the same file"),
    (["run", "{file}", "--output-rejected", "{dir}/p.csv", "--report", "{dir}/p.csv"], "name the same file"),
    (["images", "build", "--python", "3.11", "--extra-requirements", "{bad_pins}"], "not an exact pin"),
])
def test_usage_errors(a_file, tmp_path, args, message):
    bad_pins = tmp_path / "extra.txt"
    bad_pins.write_text("numpy>=1\n")
    (tmp_path / "v5.2").mkdir()
    argv = [a.format(file=a_file, bad_pins=bad_pins, dir=tmp_path) for a in args]
    before = a_file.read_bytes()
    result = run_cli(*argv)
    assert result.code == 2, result.stdout + result.stderr
    assert message in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert a_file.read_bytes() == before


def test_data_synth_writes_v5_shape_and_refuses_to_overwrite(tmp_path):
    import json

    import pandas as pd

    result = run_cli("data", "synth", "--out", tmp_path, "--rows", "300", "--features", "50", "--seed", "3")
    assert result.code == 0, result.stderr
    live = pd.read_parquet(tmp_path / "live.parquet")
    assert live.index.name == "id" and len(live) == 300 and live.index.is_unique
    features = [c for c in live.columns if c.startswith("feature_")]
    assert len(features) == 50 and set(live[features].dtypes) == {pd.Int8Dtype().numpy_dtype}
    assert live[features].isin(range(5)).all().all()
    assert "era" in live.columns and live.filter(like="target").isna().all().all()
    sets = json.loads((tmp_path / "features.json").read_text())["feature_sets"]
    assert sets["all"] == features and len(sets["small"]) == 42
    bench = pd.read_parquet(tmp_path / "live_benchmark_models.parquet")
    assert (bench.index == live.index).all() and "v52_lgbm_ender20" in bench.columns
    assert bench.select_dtypes("number").stack().between(0, 1).all()
    again = run_cli("data", "synth", "--out", tmp_path)
    assert again.code == 2 and "--force" in again.stderr


def test_synthetic_data_is_deterministic(tmp_path):
    from runner.data.synthetic import synthesize

    a = synthesize(tmp_path / "a", rows=100, n_features=20, seed=7)
    b = synthesize(tmp_path / "b", rows=100, n_features=20, seed=7)
    c = synthesize(tmp_path / "c", rows=100, n_features=20, seed=8)
    import pandas as pd

    assert pd.read_parquet(a / "live.parquet").equals(pd.read_parquet(b / "live.parquet"))
    assert not pd.read_parquet(a / "live.parquet").equals(pd.read_parquet(c / "live.parquet"))


def test_help_documents_exit_codes():
    result = run_cli("run", "--help")
    for line in ("0  Success", "1  Failed", "2  usage", "3  Error"):
        assert line in result.stdout
