"""Many distinct small models, cloudpickled inside a numerai-sandbox image (tests/test_prestart_bound.py).

    python make_many.py --features features.json --out DIR --count 15 --prefix py311_
Each model ranks a different slice of the features; they differ in the modules they name too (none,
numpy, scipy, scikit-learn), so their pre-started sandboxes differ as real users' do.
"""

import argparse
import os

import cloudpickle
import numpy as np
import pandas as pd
import scipy.stats
import sklearn.preprocessing


def model(index: int):
    """The index-th model: its own slice of the features, and (by index % 4) its own module."""
    width = 5 + index

    def plain(live_features):
        values = live_features.filter(like="feature_").iloc[:, :width].sum(axis=1)
        return values.rank(pct=True, method="first").to_frame("prediction")

    def with_numpy(live_features):
        values = live_features.filter(like="feature_").iloc[:, :width].sum(axis=1)
        return pd.DataFrame({"prediction": np.log1p(values.to_numpy(dtype="float64"))},
                            index=values.index).rank(pct=True, method="first")

    def with_scipy(live_features):
        values = live_features.filter(like="feature_").iloc[:, :width].sum(axis=1)
        return pd.DataFrame({"prediction": scipy.stats.rankdata(values, method="ordinal") / len(values)},
                            index=values.index)

    def with_sklearn(live_features):
        values = live_features.filter(like="feature_").iloc[:, :width].sum(axis=1)
        scaled = sklearn.preprocessing.minmax_scale(values.to_numpy(dtype="float64"))
        return pd.DataFrame({"prediction": scaled}, index=values.index).rank(pct=True, method="first")

    return (plain, with_numpy, with_scipy, with_sklearn)[index % 4]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--count", type=int, default=15)
    parser.add_argument("--prefix", default="")
    args = parser.parse_args()
    for index in range(args.count):
        path = os.path.join(args.out, f"{args.prefix}{index:02d}.pkl")
        with open(path, "wb") as handle:
            cloudpickle.dump(model(index), handle)
        os.chmod(path, 0o644)


if __name__ == "__main__":
    main()
