"""Train the example models and cloudpickle their predict functions (runs inside a numerai-sandbox image).

It runs with the image's own Python and libraries, so the pickles always match the
image they are tested in - the rule Numerai's upload enforces. Feature names come
from features.json, as a real Numerai training script would read them.

    python train.py --features features.json --out DIR
writes lgbm_1arg.pkl, lgbm_2arg.pkl, sklearn_1arg.pkl (scikit-learn's
HistGradientBoostingRegressor) and the broken models bad_nan.pkl, bad_range.pkl,
bad_raises.pkl and bad_type.pkl.
"""

import argparse
import json
import os

import cloudpickle
import lightgbm as lgb
import numpy as np
import pandas as pd


def train(features, seed=0, rows=4000):
    """A small LightGBM regressor on synthetic eras: the target leans on the first few features."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.integers(0, 5, size=(rows, len(features)), dtype=np.int8), columns=features)
    signal = X.iloc[:, :8].mean(axis=1) / 4
    y = (signal + rng.normal(0, 0.15, rows)).clip(0, 1)
    model = lgb.LGBMRegressor(n_estimators=60, learning_rate=0.1, num_leaves=15, verbose=-1)
    model.fit(X, y)
    return model


def train_sklearn(features, seed=1, rows=4000):
    """The same task with scikit-learn's own gradient boosting (compiled code: Cython and OpenMP)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.integers(0, 5, size=(rows, len(features)), dtype=np.int8), columns=features)
    y = (X.iloc[:, :8].mean(axis=1) / 4 + rng.normal(0, 0.15, rows)).clip(0, 1)
    return HistGradientBoostingRegressor(max_iter=60, learning_rate=0.1, max_leaf_nodes=15).fit(X, y)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True, help="features.json of the live data")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    with open(args.features) as handle:
        features = json.load(handle)["feature_sets"]["small"]
    model = train(features)
    sklearn_model = train_sklearn(features)

    def predict(live_features: pd.DataFrame) -> pd.DataFrame:
        raw = pd.Series(model.predict(live_features[features]), index=live_features.index)
        return raw.rank(pct=True).to_frame("prediction")

    def predict_with_benchmarks(live_features: pd.DataFrame, live_benchmark_models: pd.DataFrame) -> pd.DataFrame:
        own = pd.Series(model.predict(live_features[features]), index=live_features.index).rank(pct=True)
        benchmark = live_benchmark_models.select_dtypes("number").mean(axis=1).reindex(own.index)
        return (0.7 * own + 0.3 * benchmark.rank(pct=True)).rank(pct=True).to_frame("prediction")

    def predict_sklearn(live_features: pd.DataFrame) -> pd.DataFrame:
        raw = pd.Series(sklearn_model.predict(live_features[features]), index=live_features.index)
        return raw.rank(pct=True).to_frame("prediction")

    def bad_nan(live_features):
        out = predict(live_features)
        out.iloc[::50, 0] = np.nan  # a feature engineering bug: every 50th row has no value
        return out

    def bad_range(live_features):
        return predict(live_features) * 2  # forgot to rank: values up to 2

    def bad_raises(live_features):
        return pd.DataFrame({"prediction": model.predict(live_features[features + ["feature_from_v6"]])},
                            index=live_features.index)

    def bad_type(live_features):
        return model.predict(live_features[features])  # a numpy array, not a DataFrame

    made = {"lgbm_1arg.pkl": predict, "lgbm_2arg.pkl": predict_with_benchmarks, "sklearn_1arg.pkl": predict_sklearn,
            "bad_nan.pkl": bad_nan,
            "bad_range.pkl": bad_range, "bad_raises.pkl": bad_raises, "bad_type.pkl": bad_type}
    os.makedirs(args.out, exist_ok=True)
    for name, function in made.items():
        with open(os.path.join(args.out, name), "wb") as handle:
            cloudpickle.dump(function, handle)
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
