"""Model pickles made by whichever Python runs this file: the evidence behind the version table.

Standalone on purpose: it runs under every CPython from 3.8 on, in throwaway
environments, with nothing of numerai-sandbox importable. It needs cloudpickle;
numpy, scikit-learn, LightGBM and XGBoost are used when importable and skipped
(and said so in the manifest) when not.

    python evidence_models.py --out DIR

writes DIR/<case>.pkl and DIR/manifest.json describing each file: what it holds,
which kind of callable with which parameters, which Python and library versions
made it. The functions live in __main__ so cloudpickle pickles them by value, as
it does for a notebook's or a script's `predict`.
"""

import argparse
import json
import math
import os
import pickle
import sys


def predict(live_features):
    ranked = live_features.rank(pct=True)
    return ranked[["feature_a"]].rename(columns={"feature_a": "prediction"})


def predict_with_benchmarks(live_features, live_benchmark_models):
    return live_benchmark_models.mean(axis=1).to_frame("prediction")


def predict_with_defaults(live_features, live_benchmark_models=None, *, scale=1.0):
    return live_features.mean(axis=1).to_frame("prediction") * scale


def identity(x):
    return x


def predict_try(live_features):
    try:
        return live_features.rank(pct=True)
    except ValueError:
        return None


def predict_comprehension(live_features):
    columns = [c for c in live_features.columns if c.startswith("feature")]
    return live_features[columns].mean(axis=1).to_frame("prediction")


def scaled_sum(values):
    total = 0.0
    for value in values:
        if value is not None and value > 0:
            total += value * 2
    return total


def make_closure(weight):
    def predict(live_features):
        return (live_features * weight).mean(axis=1).to_frame("prediction")
    return predict


def make_nested():
    def helper(value):
        return math.sqrt(abs(value)) / (1 + math.sqrt(abs(value)))

    def predict(live_features):
        return live_features.applymap(helper).mean(axis=1).to_frame("prediction")
    return predict


class Model:
    def __init__(self, scale):
        self.scale = scale

    def predict(self, live_features):
        return (live_features * self.scale).mean(axis=1).to_frame("prediction")

    def __call__(self, live_features):
        return self.predict(live_features)


def model_closure(model, columns):
    def predict(live_features):
        import pandas as pd
        values = model.predict(live_features[columns])
        return pd.DataFrame({"prediction": values}, index=live_features.index).rank(pct=True)
    return predict


def library_models(cases, skipped):
    """Closures over small fitted models, and the models pickled plainly, where the libraries import."""
    try:
        import numpy as np
    except ImportError as exc:
        skipped["numpy"] = str(exc)
        return {}
    rng = np.random.RandomState(0)
    X = rng.randint(0, 5, size=(300, 5)).astype("float32") / 4
    y = (X[:, 0] * 0.6 + X[:, 1] * 0.4 + rng.rand(300) * 0.1).astype("float32")
    columns = [f"feature_{i}" for i in range(5)]
    versions = {"numpy": np.__version__}
    try:
        import sklearn
        from sklearn.linear_model import Ridge
        from sklearn.tree import DecisionTreeRegressor
        versions["scikit-learn"] = sklearn.__version__
        ridge = Ridge().fit(X, y)
        cases["sklearn_closure"] = ("cloudpickle", model_closure(ridge, columns), "function", ["live_features"])
        cases["sklearn_plain"] = ("pickle", ridge, "not callable", None)
        cases["sklearn_tree_plain"] = ("pickle", DecisionTreeRegressor(max_depth=3).fit(X, y), "not callable", None)
    except ImportError as exc:
        skipped["scikit-learn"] = str(exc)
    try:
        import lightgbm
        versions["lightgbm"] = lightgbm.__version__
        lgbm = lightgbm.LGBMRegressor(n_estimators=3, num_leaves=4, verbose=-1).fit(X, y)
        cases["lightgbm_closure"] = ("cloudpickle", model_closure(lgbm, columns), "function", ["live_features"])
        cases["lightgbm_plain"] = ("pickle", lgbm, "not callable", None)
        cases["lightgbm_booster_plain"] = ("pickle", lgbm.booster_, "not callable", None)
    except ImportError as exc:
        skipped["lightgbm"] = str(exc)
    try:
        import xgboost
        versions["xgboost"] = xgboost.__version__
        xgbm = xgboost.XGBRegressor(n_estimators=3, max_depth=2).fit(X, y)
        cases["xgboost_closure"] = ("cloudpickle", model_closure(xgbm, columns), "function", ["live_features"])
        cases["xgboost_plain"] = ("pickle", xgbm, "not callable", None)
    except ImportError as exc:
        skipped["xgboost"] = str(exc)
    return versions


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--no-libraries", action="store_true", help="functions only: skip numpy/sklearn/...")
    args = parser.parse_args()
    import cloudpickle

    cases = {
        # name: (serializer, object, callable kind, parameter names)
        "function": ("cloudpickle", predict, "function", ["live_features"]),
        "function_2_args": ("cloudpickle", predict_with_benchmarks, "function",
                            ["live_features", "live_benchmark_models"]),
        "function_defaults": ("cloudpickle", predict_with_defaults, "function",
                              ["live_features", "live_benchmark_models", "scale"]),
        "function_identity": ("cloudpickle", identity, "function", ["x"]),
        "function_try": ("cloudpickle", predict_try, "function", ["live_features"]),
        "function_comprehension": ("cloudpickle", predict_comprehension, "function", ["live_features"]),
        "closure": ("cloudpickle", make_closure(0.5), "function", ["live_features"]),
        "nested": ("cloudpickle", make_nested(), "function", ["live_features"]),
        "lambda_identity": ("cloudpickle", lambda live_features: live_features, "lambda", ["live_features"]),
        "lambda_call": ("cloudpickle", lambda live_features: live_features.rank(pct=True), "lambda",
                        ["live_features"]),
        "method": ("cloudpickle", Model(2.0).predict, "method", ["live_features"]),
        "callable_instance": ("cloudpickle", Model(2.0), "callable instance", ["live_features"]),
        "class": ("cloudpickle", Model, "class", ["scale"]),
        "plain_data": ("pickle", {"weights": [0.1, 0.2, 0.7], "name": "ensemble"}, "not callable", None),
        "plain_instance": ("pickle", Model(2.0), "unknown", None),  # its class is only named
        "plain_function_reference": ("pickle", identity, "function", None),
    }
    for _ in range(2000):  # run it first: specialised (3.11+) bytecode must still pickle as plain co_code
        scaled_sum([1.0, 2.0, None, -1.0])
    cases["function_executed"] = ("cloudpickle", scaled_sum, "function", ["values"])
    skipped = {}
    versions = {} if args.no_libraries else library_models(cases, skipped)
    versions["cloudpickle"] = cloudpickle.__version__
    os.makedirs(args.out, exist_ok=True)
    manifest = {"python": "%d.%d" % sys.version_info[:2], "python_full": sys.version.split()[0],
                "versions": versions, "skipped": skipped, "cases": {}}
    for name, (serializer, obj, kind, params) in sorted(cases.items()):
        if serializer == "cloudpickle":
            data = cloudpickle.dumps(obj)
        else:
            data = pickle.dumps(obj, protocol=pickle.DEFAULT_PROTOCOL)
        with open(os.path.join(args.out, name + ".pkl"), "wb") as handle:
            handle.write(data)
        manifest["cases"][name] = {"file": name + ".pkl", "serializer": serializer, "kind": kind,
                                   "params": params, "bytes": len(data)}
    with open(os.path.join(args.out, "manifest.json"), "w") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
