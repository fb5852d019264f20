"""Pickles made by another CPython, for the python_version_mismatch cases.

    pythonX.Y make_cross_python.py --features features.json --out DIR

Runs under any CPython 3.8+ with only the standard library and cloudpickle importable
(tests/test_corpus.py puts a copy of cloudpickle on PYTHONPATH: no network, no venv).
Writes pyXY_<case>.pkl, each a working model under the Python that made it: a plain
function, a lambda, a closure with helpers, a callable instance of a class pickled by
value, and a function rebuilt from marshal data (how some tools ship code).
"""

import argparse
import json
import marshal
import os
import sys
import types

import cloudpickle


class Reduce:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.features) as handle:
        features = json.load(handle)["feature_sets"]["small"]
    tag = "py%d%d" % sys.version_info[:2]

    def function(live_features):
        ranks = live_features[features].sum(axis=1).rank(pct=True, method="first")
        return ranks.to_frame("prediction")

    def make_closure():
        weights = {name: 1.0 + i / 100 for i, name in enumerate(features)}

        def weighted(frame):
            return sum(frame[name] * weight for name, weight in weights.items())

        def predict(live_features):
            chosen = [c for c in live_features.columns if c in weights]
            ranks = weighted(live_features[chosen]).rank(pct=True, method="first")
            return ranks.to_frame("prediction")
        return predict

    class Model:
        def __init__(self, columns):
            self.columns = columns

        def __call__(self, live_features):
            return live_features[self.columns].mean(axis=1).rank(pct=True, method="first").to_frame("prediction")

    source = ("def predict(live_features):\n"
              "    cols = [c for c in live_features.columns if c.startswith('feature')][:20]\n"
              "    return live_features[cols].sum(axis=1).rank(pct=True, method='first').to_frame('prediction')\n")
    module_code = compile(source, "marshalled.py", "exec")
    function_code = next(c for c in module_code.co_consts if isinstance(c, types.CodeType))
    marshalled = Reduce(types.FunctionType, Reduce(marshal.loads, marshal.dumps(function_code)),
                        Reduce(dict))

    cases = {
        "function": function,
        "lambda": lambda live_features: live_features[features].mean(axis=1).rank(pct=True).to_frame("prediction"),
        "closure": make_closure(),
        "instance": Model(features),
        "marshal": marshalled,
    }
    os.makedirs(args.out, exist_ok=True)
    for name, obj in cases.items():
        with open(os.path.join(args.out, f"{tag}_{name}.pkl"), "wb") as handle:
            cloudpickle.dump(obj, handle)
    print(f"{sys.version.split()[0]}: wrote {len(cases)} cases")


if __name__ == "__main__":
    main()
