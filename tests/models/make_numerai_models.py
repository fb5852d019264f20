"""Models built the way Numerai's example notebooks build them, pickled inside a numerai-sandbox image.

    python make_numerai_models.py --names numerai_feature_names.txt --out DIR

Trained on a small frame whose columns carry real-looking Numerai feature names (a fixture
list the synthetic generator never produces), each model selects its columns by name at
predict time, as users' models do: the notebooks' own predict functions (hello_numerai,
example_model, feature_neutralization, target_ensemble) and one model per library way of
storing names (LightGBM Booster, XGBoost, CatBoost, a scikit-learn pipeline, a plain list,
a class instance). Then the failures whose verdicts the column logic must get right.
Runs with the image's Python and libraries only, network off.
"""

import argparse
import os

import cloudpickle
import lightgbm as lgb
import numpy as np
import pandas as pd


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--names", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--features")  # accepted for the shared pickle-making helper; unused
    args = parser.parse_args()
    with open(args.names) as handle:
        names = [line.strip() for line in handle if line.strip() and not line.startswith("#")]

    rng = np.random.default_rng(0)
    rows = 2000
    train = pd.DataFrame(rng.integers(0, 5, size=(rows, len(names)), dtype=np.int8), columns=names)
    signal = (train[names[:10]].to_numpy(dtype=float).mean(axis=1) - 2) / 4
    for i, target in enumerate(["target", "target_cyrusd_20", "target_teager2b_20"]):
        raw = 0.5 + signal * (1 - 0.2 * i) + rng.normal(0, 0.1, rows)
        train[target] = np.clip(np.round(raw * 4) / 4, 0, 1)
    small, medium = names[:42], names[:120]
    serenity = names[30:40]  # the small features also in a "serenity" set
    out = args.out

    def save(name, function):
        with open(os.path.join(out, f"{name}.pkl"), "wb") as handle:
            cloudpickle.dump(function, handle)

    # ------------------------------------------------------------ the notebooks' predict functions

    hello_model = lgb.LGBMRegressor(n_estimators=60, learning_rate=0.05, num_leaves=15, colsample_bytree=0.5,
                                    verbose=-1)
    hello_model.fit(train[small], train["target"])

    def predict_hello(live_features: pd.DataFrame, live_benchmark_models: pd.DataFrame) -> pd.DataFrame:
        live_predictions = hello_model.predict(live_features[small])
        submission = pd.Series(live_predictions, index=live_features.index)
        return submission.rank(pct=True).to_frame("prediction")

    save("hello_numerai", predict_hello)

    example_model = lgb.LGBMRegressor(n_estimators=80, learning_rate=0.05, num_leaves=15, colsample_bytree=0.3,
                                      verbose=-1)
    example_model.fit(train[medium], train["target"])

    def predict_example(live_features: pd.DataFrame, live_benchmark_models: pd.DataFrame) -> pd.DataFrame:
        live_predictions = example_model.predict(live_features[medium])
        return pd.Series(live_predictions, index=live_features.index).rank(pct=True).to_frame("prediction")

    save("example_model", predict_example)

    def neutralize(df, neutralizers, proportion=1.0):
        scores = df.values.astype(np.float64)
        exposures = neutralizers.astype(np.float64)
        scores = scores - proportion * exposures.dot(np.linalg.pinv(exposures).dot(scores))
        return scores / scores.std()

    def predict_neutralized(live_features: pd.DataFrame, live_benchmark_models: pd.DataFrame) -> pd.DataFrame:
        predictions = pd.DataFrame({"prediction": hello_model.predict(live_features[small])},
                                   index=live_features.index)
        exposures = np.hstack([live_features[serenity].values, np.ones((len(live_features), 1))])
        neutral = neutralize(predictions, exposures, proportion=0.5)
        return pd.DataFrame(neutral, index=live_features.index, columns=["prediction"]).rank(pct=True)

    save("feature_neutralization", predict_neutralized)

    targets = ["target", "target_cyrusd_20", "target_teager2b_20"]
    ensemble = {}
    for target in targets:
        member = lgb.LGBMRegressor(n_estimators=40, learning_rate=0.05, num_leaves=15, verbose=-1)
        member.fit(train[small], train[target])
        ensemble[target] = member

    def predict_ensemble(live_features: pd.DataFrame, live_benchmark_models: pd.DataFrame) -> pd.DataFrame:
        ranks = pd.DataFrame(index=live_features.index)
        for target, member in ensemble.items():
            ranks[target] = pd.Series(member.predict(live_features[small]), index=live_features.index).rank(pct=True)
        ensembled = ranks.mean(axis=1).rank(pct=True, method="first")
        return ensembled.to_frame("prediction")

    save("target_ensemble", predict_ensemble)

    # ------------------------------------------------------------ one per way a library stores the names

    booster = lgb.train({"objective": "regression", "learning_rate": 0.05, "num_leaves": 15, "verbose": -1,
                         "feature_fraction": 0.5},
                        lgb.Dataset(train[medium], label=train["target"]), num_boost_round=300)

    def predict_booster(live_features):
        # The names exist only inside the Booster's model string (hundreds of kilobytes).
        values = booster.predict(live_features[booster.feature_name()])
        return pd.Series(values, index=live_features.index).rank(pct=True).to_frame("prediction")

    save("lgb_booster", predict_booster)

    import xgboost as xgb

    xgb_model = xgb.XGBRegressor(n_estimators=30, max_depth=3, learning_rate=0.1)
    xgb_model.fit(train[names[40:90]], train["target"])

    def predict_xgboost(live_features):
        columns = xgb_model.get_booster().feature_names
        return pd.Series(xgb_model.predict(live_features[columns]), index=live_features.index).rank(
            pct=True).to_frame("prediction")

    save("xgboost", predict_xgboost)

    from catboost import CatBoostRegressor

    cat_model = CatBoostRegressor(iterations=30, depth=4, verbose=0, allow_writing_files=False, thread_count=1)
    cat_model.fit(train[names[60:100]], train["target"])

    def predict_catboost(live_features):
        columns = cat_model.feature_names_
        return pd.Series(cat_model.predict(live_features[columns]), index=live_features.index).rank(
            pct=True).to_frame("prediction")

    save("catboost", predict_catboost)

    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    pipe.fit(train[names[100:150]], train["target"])

    def predict_pipeline(live_features):
        columns = list(pipe.feature_names_in_)
        return pd.Series(pipe.predict(live_features[columns]), index=live_features.index).rank(
            pct=True).to_frame("prediction")

    save("sklearn_pipeline", predict_pipeline)

    chosen = names[5:30]

    def predict_list(live_features):
        return live_features[chosen].mean(axis=1).rank(pct=True, method="first").to_frame("prediction")

    save("name_list", predict_list)

    class EqualWeights:
        """A callable instance: Numerai calls it like a function."""

        def __init__(self, columns):
            self.columns = columns

        def __call__(self, live_features):
            scores = live_features[self.columns].sum(axis=1)
            return scores.rank(pct=True, method="first").to_frame("prediction")

    save("class_instance", EqualWeights(names[120:145]))

    def predict_with_benchmark(live_features, live_benchmark_models):
        # A 2-argument model blending in a benchmark model the synthetic default does not have.
        own = live_features[chosen].mean(axis=1).rank(pct=True)
        bench = live_benchmark_models["v53_lgbm_nova20"].rank(pct=True)
        return ((own + bench) / 2).rank(pct=True, method="first").to_frame("prediction")

    save("benchmark_blend", predict_with_benchmark)

    # ------------------------------------------------------------ what the column logic must judge right

    weights = {"lgbm": 1.0}

    def predict_own_keyerror(live_features):
        scale = weights["xgb"]  # the model's own mistake: a dict lookup, not a column
        return (live_features[small].mean(axis=1) * scale).rank(pct=True).to_frame("prediction")

    save("own_keyerror", predict_own_keyerror)

    words = ["zealous", "ornate", "quillwort"]

    def predict_runtime_name(live_features):
        built = "feature_" + "_".join(words)  # never in the pickle as one string
        return live_features[small + [built]].mean(axis=1).rank(pct=True).to_frame("prediction")

    save("runtime_name", predict_runtime_name)

    def predict_not_numerai(live_features):
        return live_features[small + ["feature_that_does_not_exist"]].mean(axis=1).rank(pct=True).to_frame(
            "prediction")

    save("not_numerai_name", predict_not_numerai)

    retired = names[:41] + [names[-1]]  # the last fixture name: absent from the "real" features.json fixture

    def predict_retired(live_features):
        return live_features[retired].mean(axis=1).rank(pct=True, method="first").to_frame("prediction")

    save("retired_feature", predict_retired)


if __name__ == "__main__":
    main()
