"""Real models pass on the default data: synthetic live data carries the columns the pickle names.

Models built the way Numerai's example notebooks build them (tests/models/make_numerai_models.py,
made inside each image under test, network off) select columns named like Numerai's features from
a fixture list the synthetic generator never produces; `run` with no data option must give
Numerai's verdict. Then the data sources: a cached real features.json, Numerai's rounds fetched by
`data fetch` (numerapi talking to a local Numerai API, tests/numerai_server.py, since Numerai's
own cannot be reached here), local directories, and what a mistyped path means.
"""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, image_for, make_pickles, pythons_under_test, run_cli

MODELS = ROOT / "tests" / "models"
NAMES = [line.strip() for line in (MODELS / "numerai_feature_names.txt").read_text().splitlines()
         if line.strip() and not line.startswith("#")]

# model -> (status, reason)
VERDICTS = {
    "hello_numerai": ("Success", None),
    "example_model": ("Success", None),
    "feature_neutralization": ("Success", None),
    "target_ensemble": ("Success", None),
    "lgb_booster": ("Success", None),
    "xgboost": ("Success", None),
    "catboost": ("Success", None),
    "sklearn_pipeline": ("Success", None),
    "name_list": ("Success", None),
    "class_instance": ("Success", None),
    "benchmark_blend": ("Success", None),
    "own_keyerror": ("Failed", "model_exception"),
    "runtime_name": ("Error", "unverifiable_columns"),
    "not_numerai_name": ("Failed", "missing_columns"),
}
EXIT = {"Success": 0, "Failed": 1, "Error": 3}


@pytest.fixture(scope="module")
def numerai_models(client, tmp_path_factory):
    """{python: {name: pickle}}, made inside each image under test."""
    made = {}
    for python in pythons_under_test():
        out = tmp_path_factory.mktemp(f"numerai-models-{python}")
        made[python] = make_pickles(client, image_for(client, python), MODELS / "make_numerai_models.py", out,
                                    "--names", "/scripts/numerai_feature_names.txt")
    return made


# ---------------------------------------------------------------- pure logic

def test_the_base_synthetic_set_holds_none_of_the_fixture_names():
    from runner.data import synthetic

    base = set(synthetic.base_layout().features)
    assert len(NAMES) == 160 and not base & set(NAMES)


def test_fitting_keeps_the_count_and_the_names_the_model_uses():
    from runner.data import synthetic

    base = synthetic.base_layout(50)
    used_base = base.features[45]
    fitted = synthetic.fit_to_model(base, NAMES[:10] + [used_base], ["target_cyrusd_20", "target_new_20"],
                                    ["v53_lgbm_new20"])
    assert len(fitted.features) == 50 and set(NAMES[:10]) <= set(fitted.features)
    assert used_base in fitted.features  # a base name the model uses is never the one replaced
    assert fitted.features[:10] == base.features[:10]  # replaced from the end
    assert "target_new_20" in fitted.targets and "v53_lgbm_new20" in fitted.benchmarks
    assert fitted.from_pickle == 10 + 1 + 1 and fitted.named_by_pickle == 11
    same = synthetic.fit_to_model(base, list(base.features[:5]), [], [])
    assert same.features == base.features and same.key(10, 0) == base.key(10, 0)  # no new data to make


def test_real_names_are_never_extended():
    from runner.data import synthetic

    real = synthetic.real_layout({"feature_sets": {"all": NAMES[:20]}, "targets": ["target"]}, "v5.3")
    fitted = synthetic.fit_to_model(real, NAMES[:25], ["target_x_20"], [])
    assert fitted.features == tuple(NAMES[:20]) and fitted.targets == ("target",) and fitted.real_names == "v5.3"


def test_column_scan_finds_names_in_every_format(tmp_path):
    """Pickled strings (protocols 2-5), a LightGBM-style model string beyond the walker's payload limit,
    UBJSON and flatbuffers-style length prefixes, numpy unicode arrays; never partial or merged names."""
    import pickle

    import numpy as np

    from runner.inspection.columns import scan_columns

    model_text = ("tree\nversion=v4\nfeature_names=" + " ".join(NAMES[:30]) + "\nfeature_infos=[0:4]\n"
                  + "Tree=0\nsplit_feature=1 2\nleaf_value=0.1\n" * 20000 + "parameters:\n[feature_fraction: 0.5]\n")
    ubjson = (b"".join(b"SU" + bytes([len(n)]) + n.encode() for n in NAMES[30:32]) + b"SL"
              + len(NAMES[32]).to_bytes(8, "big") + NAMES[32].encode() + b"SL")  # XGBoost writes int64 lengths
    flat = b"".join(len(n).to_bytes(4, "little") + n.encode() + b"\0" for n in NAMES[33:35])
    state = {"model": model_text, "ubjson": ubjson, "flat": flat, "array": np.array(NAMES[35:38]),
             "loose": NAMES[38], "targets": ["target_cyrusd_20", "multi_target_x"],
             "bench": "v52_lgbm_ender20", "params": {"feature_fraction_bynode": 1}}
    for protocol in (2, 4, 5):
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(pickle.dumps(state, protocol=protocol))
        found = scan_columns(path)
        assert found.features == NAMES[:39], protocol
        assert found.targets == ["target_cyrusd_20"] and found.benchmarks == ["v52_lgbm_ender20"]
        assert "feature_fraction" in found.other and not any(n.startswith("feature_infos") for n in found.features)


def test_inspect_lists_the_columns(tmp_path):
    from test_inspection import _pickled_predict

    chosen = NAMES[:3] + ["feature_that_does_not_exist"]
    path = _pickled_predict(tmp_path / "m.pkl", f"chosen = {chosen!r}\n"
                            "def predict(live_features):\n    return live_features[chosen]\n")
    result = run_cli("inspect", path)
    assert "3 Numerai-shaped feature names" in result.stdout
    assert "not Numerai column names (never invented): feature_that_does_not_exist" in result.stdout
    data = json.loads(run_cli("inspect", path, "--json").stdout)
    assert data["columns"]["features"] == NAMES[:3]


# ---------------------------------------------------------------- real runs, default data

CASES = [(python, name) for python in pythons_under_test() for name in VERDICTS]


@pytest.fixture(scope="module")
def default_data_cache(tmp_path_factory):
    """A cache of their own: the default data must be the synthetic default, whatever rounds this machine
    has fetched (the images come from the engine; the synthetic shapes are made once for the module)."""
    return {"NUMERAI_SANDBOX_CACHE": str(tmp_path_factory.mktemp("default-data-cache"))}


@pytest.mark.parametrize("python,name", CASES, ids=[f"{p}-{n}" for p, n in CASES])
def test_models_named_like_numerais_pass_on_the_default_data(numerai_models, default_data_cache, python, name):
    status, reason = VERDICTS[name]
    result = run_cli("run", numerai_models[python][name], "--json", "--timeout", "5m", env=default_data_cache)
    report = result.report
    assert (report["status"], report["reason"]) == (status, reason), report["message"]
    assert result.code == EXIT[status] and report["python"] == python
    data = report["data"]
    assert data["source"] == "synthetic" and data["features_named_by_pickle"] > 0
    if status == "Success":
        assert data["names_checked"] is False and data["columns_from_pickle"] > 0
        assert any("not checked against Numerai's data" in n for n in report["notes"])
        assert "not checked against Numerai's data" in result.stderr  # on the verdict line
    if reason in ("missing_columns", "unverifiable_columns"):
        missing = report["evidence"]["missing_columns"]
        assert missing and all(m in report["message"] for m in missing)
    if name == "runtime_name":
        assert report["evidence"]["missing_columns"] == ["feature_zealous_ornate_quillwort"]
        assert "data fetch" in report["action"]
    if name == "not_numerai_name":
        assert report["evidence"]["missing_columns"] == ["feature_that_does_not_exist"]


def test_the_pickle_names_are_found_where_only_the_model_stores_them(numerai_models):
    from runner.inspection import inspect_pickle

    python = pythons_under_test()[0]
    for name, expected in (("lgb_booster", NAMES[:120]), ("xgboost", NAMES[40:90]), ("catboost", NAMES[60:100]),
                           ("sklearn_pipeline", NAMES[100:150])):
        found = inspect_pickle(numerai_models[python][name]).columns
        assert set(expected) <= set(found.features), name
    booster = inspect_pickle(numerai_models[python]["lgb_booster"])
    assert booster.stats["payloads_skipped"] >= 1  # the model string is beyond what the walker keeps


def test_a_cached_real_features_json_gives_real_names_and_judges_missing_columns(numerai_models, tmp_path):
    """Numerai's real names known: nothing is invented, and a column Numerai lacks is the model's problem."""
    cache = tmp_path / "cache"
    version = cache / "numerai" / "v5.3"
    version.mkdir(parents=True)
    (version / "features.json").write_text(json.dumps({
        "feature_sets": {"small": NAMES[:42], "medium": NAMES[:120], "all": NAMES[:159]},
        "targets": ["target", "target_cyrusd_20", "target_teager2b_20"]}))
    python = pythons_under_test()[0]
    env = {"NUMERAI_SANDBOX_CACHE": str(cache)}
    retired = run_cli("run", numerai_models[python]["retired_feature"], "--json", env=env)
    report = retired.report
    assert (report["status"], report["reason"]) == ("Failed", "missing_columns"), report["message"]
    assert report["evidence"]["missing_columns"] == [NAMES[-1]] and NAMES[-1] in report["message"]
    assert "Numerai's real feature names" in report["message"]
    good = run_cli("run", numerai_models[python]["hello_numerai"], "--json", env=env).report
    assert good["status"] == "Success" and good["data"]["names_checked"] is True
    assert "Numerai's v5.3 feature names" in good["data"]["description"]
    assert not any("not checked" in n for n in good["notes"])


# ---------------------------------------------------------------- Numerai's rounds, from a local Numerai API

@pytest.fixture
def numerai_rounds(numerai, tmp_path):
    """The local Numerai API (tests/numerai_server.py) serving v5.2 and v5.3 rounds (the base synthetic files as
    their content); numerapi reaches it through NUMERAI_API_URL. No API key: downloads need none."""
    from numerai_server import served_folder

    numerai.datasets = served_folder(tmp_path / "served")
    env = {"NUMERAI_API_URL": numerai.url, "NUMERAI_SANDBOX_CACHE": str(tmp_path / "cache")}
    return numerai, env


def test_data_fetch_caches_the_newest_round_and_run_uses_it(numerai_rounds, models):
    numerai, env = numerai_rounds
    fetched = run_cli("data", "fetch", env=env)
    assert fetched.code == 0, fetched.stderr
    assert "fetched Numerai's v5.3 live data, round 1234" in fetched.stdout
    again = run_cli("data", "fetch", env=env)
    assert again.code == 0 and "already cached" in again.stdout
    assert sorted(numerai.downloads) == ["v5.3/features.json", "v5.3/live.parquet",
                                         "v5.3/live_benchmark_models.parquet"]
    result = run_cli("run", models["good_2arg"], "--json", env=env)
    report = result.report
    assert report["status"] == "Success", report["message"]
    assert (report["data"]["source"], report["data"]["round"], report["data"]["version"]) == ("round", 1234, "v5.3")
    assert "round 1234 (fetched" in result.stderr and report["data"]["names_checked"] is True
    numerai.current_round = 1235
    assert run_cli("data", "fetch", "--dataset-version", "v5.2", env=env).code == 0
    newest = run_cli("run", models["good_1arg"], "--json", env=env).report["data"]
    assert (newest["round"], newest["version"]) == (1235, "v5.2")
    pinned = run_cli("run", models["good_1arg"], "--json", "--data-version", "v5.3", env=env).report["data"]
    assert (pinned["round"], pinned["version"]) == (1234, "v5.3")


def test_data_fetch_of_a_version_numerai_does_not_publish_is_an_error(numerai_rounds):
    _, env = numerai_rounds
    result = run_cli("data", "fetch", "--dataset-version", "v9.9", env=env)
    assert result.code == 3 and "available: v5.3, v5.2" in result.stderr and "Traceback" not in result.stderr


def test_data_fetch_says_what_numerai_answered(numerai_rounds):
    """An HTTP error of Numerai's API is one line with its status, exit 3, no traceback, no log noise."""
    numerai, env = numerai_rounds
    numerai.http_status = 404
    result = run_cli("data", "fetch", env=env)
    assert result.code == 3 and "data_unavailable" in result.stderr and "404 Client Error" in result.stderr
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr


def test_data_fetch_offline_is_data_unavailable(tmp_path):
    """Offline (NUMERAI_API_URL at a closed local port), `data fetch` fails within seconds, in one line."""
    result = run_cli("data", "fetch", env={"NUMERAI_SANDBOX_CACHE": str(tmp_path),
                                           "NUMERAI_API_URL": "http://127.0.0.1:1/"}, timeout=60)
    assert result.code == 3 and "data_unavailable" in result.stderr and "Traceback" not in result.stderr
    assert "127.0.0.1:1 is unreachable" in result.stderr


def test_a_local_directory_is_data(models, tmp_path):
    from runner.data import synthetic

    folder = tmp_path / "round"
    folder.mkdir()
    for name in ("live.parquet", "live_benchmark_models.parquet"):
        (folder / name).write_bytes((synthetic.default_dir() / name).read_bytes())
    report = run_cli("run", models["good_2arg"], "--data", folder, "--json").report
    assert report["status"] == "Success", report["message"]
    assert report["data"]["source"] == "local" and report["data"]["benchmarks"].endswith(
        "round/live_benchmark_models.parquet")


def test_a_local_file_alone_gets_synthetic_benchmarks_for_its_ids(models, tmp_path):
    """--data FILE with no benchmarks beside it: a 2-argument model gets synthetic benchmarks on the file's ids."""
    import pandas as pd

    from runner.data import synthetic

    live = tmp_path / "my_live.parquet"
    live.write_bytes((synthetic.default_dir() / "live.parquet").read_bytes())
    report = run_cli("run", models["good_2arg"], "--data", live, "--json").report
    assert report["status"] == "Success", report["message"]
    bench = pd.read_parquet(report["data"]["benchmarks"])
    assert list(bench.index) == list(pd.read_parquet(live, columns=["era"]).index)


def test_column_scan_sees_names_cut_by_its_chunks(tmp_path):
    """Names standing across the scan's chunk boundaries (and its overlap) are found whole, once."""
    from runner.inspection import columns

    edges = (columns.CHUNK - columns.OVERLAP, columns.CHUNK, 2 * columns.CHUNK - columns.OVERLAP)
    data = bytearray(b" " * (2 * columns.CHUNK + 4096))
    placed = []
    for i, edge in enumerate(edges):
        for j, shift in enumerate(range(-45, 10, 5)):
            name = NAMES[(i * 12 + j) % len(NAMES)]
            start = edge + shift + 60 * j  # spread so names never overlap each other
            data[start:start + len(name)] = name.encode()
            placed.append(name)
    path = tmp_path / "raw.bin"
    path.write_bytes(bytes(data))
    found = columns.scan_columns(path)
    assert set(found.features) == set(placed) and len(found.features) == len(set(placed))


def test_a_kubernetes_dry_run_mounts_the_data_fitted_to_each_pickle(tmp_path, monkeypatch):
    """`check --backend kubernetes --dry-run` names the inputs a real run would get: data fitted per pickle."""
    import yaml
    from test_inspection import _pickled_predict

    from runner.data import sources
    from runner.images import store
    from runner.images.pins import pin_set
    from runner.run import RunRequest
    from runner.run.plan import kubernetes_manifests
    from runner.run.spec import sandbox_spec
    from runner.sandbox.kubernetes_manifests import inputs_digest

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")  # no engine: the image goes by its tag
    named = _pickled_predict(tmp_path / "named.pkl", f"chosen = {NAMES[:3]!r}\n"
                             "def predict(live_features):\n    return live_features[chosen]\n")
    plain = _pickled_predict(tmp_path / "plain.pkl", "def predict(live_features):\n    return live_features\n")
    text = kubernetes_manifests([named, plain], "127.0.0.1:5000", python="3.11")
    images = [doc["spec"]["template"]["spec"]["containers"][0]["image"]
              for doc in yaml.safe_load_all(text) if doc and doc["kind"] == "Job"]
    tag = store.runtime_tag(pin_set("3.11", "standard"))
    fitted = sources.resolve(None, None, None, sources.Wanted(tuple(NAMES[:3]), (), ()))
    expected = [sandbox_spec(RunRequest(model=model, python="3.11"), tag, "3.11", data)
                for model, data in ((named, fitted), (plain, sources.resolve(None, None)))]
    assert fitted.live != sources.resolve(None, None).live
    assert [image.rsplit("-", 1)[1] for image in images] == [inputs_digest(spec)[:16] for spec in expected]
