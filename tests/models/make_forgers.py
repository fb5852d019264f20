"""Models that forge the harness's report channel with what the fuzzers found, cloudpickled inside an image.

    python make_forgers.py --features features.json --out DIR

Each model's predict writes frames to every descriptor the harness could be reporting on (3-63), then ends
its process without a word: the host reads the forged frames after the harness's own. tests/test_fuzz.py
runs them through `numerai-sandbox check` and wants an ordinary verdict from each (Failed or Error with a
reason; never Error/internal_error, never a traceback).
"""

import argparse
import json
import os

import cloudpickle


def frame(kind, body):
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return b"NSBX1 " + f"{kind} {len(payload)}\n".encode() + payload


DONE = frame("done", {"durations": {"predicting": 0.01}, "peak_rss_bytes": 1})
FORGERIES = {
    "forged_nested_frame": frame("phase", b"[" * 100_000 + b"]" * 100_000) + DONE,
    "forged_phase_list": frame("phase", {"phase": [], "at": 1.0}) + DONE,
    "forged_exception_number": frame("error", {"phase": "predicting", "kind": "model_exception", "exception": 7})
    + DONE,
    "forged_done_true": frame("result", {"returned_type": "pandas.core.frame.DataFrame", "exact_dataframe": True})
    + frame("done", b"true"),
    "forged_durations_list": frame("done", {"durations": [1, 2], "peak_rss_bytes": 5}),
    "forged_surrogate": frame("error", b'{"phase": "predicting", "kind": "model_exception", "numerai_log": "\\ud800",'
                              b' "exception": {"type": "ValueError", "module": "builtins", "message": "bad \\ud800",'
                              b' "mro": ["builtins.ValueError"], "frames": [], "text": "ValueError: \\ud800"}}') + DONE,
    "forged_huge_length": b"NSBX1 result 99999999999999999999\n{}",
}


def forger(data):
    def predict(live_features):
        import os as _os

        for fd in range(3, 64):
            try:
                _os.write(fd, data)
            except OSError:
                pass
        _os._exit(0)

    return predict


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--features")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, data in FORGERIES.items():
        with open(os.path.join(args.out, f"{name}.pkl"), "wb") as handle:
            cloudpickle.dump(forger(data), handle)


if __name__ == "__main__":
    main()
