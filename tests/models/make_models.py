"""Test models, cloudpickled inside a numerai-sandbox image so their versions match it.

    python make_models.py --features features.json --out DIR
Each function is one way a model behaves; tests/test_run.py names the verdict each must get.
Runs with the image's Python and libraries only.
"""

import argparse
import json
import os
import pickle
import time

import cloudpickle
import numpy as np
import pandas as pd


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.features) as handle:
        features = json.load(handle)["feature_sets"]["small"]

    def score(live):
        return live[features].sum(axis=1).rank(pct=True, method="first")

    def good_1arg(live_features):
        return score(live_features).to_frame("prediction")

    def good_2arg(live_features, live_benchmark_models):
        bench = live_benchmark_models.select_dtypes("number").mean(axis=1)
        return ((score(live_features) + bench.rank(pct=True)) / 2).to_frame("prediction")

    def good_default_param(live_features, live_benchmark_models=None):
        # Numerai counts 2 parameters here and passes the benchmarks.
        assert live_benchmark_models is not None, "expected the benchmark models"
        return score(live_features).to_frame("prediction")

    def good_probability(live_features):
        return score(live_features).to_frame("probability")

    def good_with_extra_ids(live_features):
        out = score(live_features).to_frame("prediction")
        extra = pd.DataFrame({"prediction": [0.5]}, index=pd.Index(["n_not_a_live_id"], name="id"))
        return pd.concat([out, extra])

    def raises(live_features):
        raise ValueError("the model is broken on purpose")

    def returns_none(live_features):
        score(live_features)

    def returns_series(live_features):
        return score(live_features)

    def returns_ndarray(live_features):
        return score(live_features).to_numpy()

    def empty_frame(live_features):
        return score(live_features).to_frame("prediction").iloc[:0]

    def nan_output(live_features):
        out = score(live_features).to_frame("prediction")
        out.iloc[::10, 0] = np.nan
        return out

    def out_of_range(live_features):
        return (score(live_features) * 3 - 1).to_frame("prediction")

    def constant(live_features):
        return pd.DataFrame({"prediction": 0.5}, index=live_features.index)

    def missing_ids(live_features):
        return score(live_features).to_frame("prediction").iloc[: len(live_features) // 2]

    def duplicate_ids(live_features):
        out = score(live_features).to_frame("prediction")
        return pd.concat([out, out.iloc[:7]])

    def wrong_header(live_features):
        return score(live_features).to_frame("pred")

    def unnamed_index(live_features):
        out = score(live_features).to_frame("prediction")
        out.index.name = None
        return out

    def two_columns(live_features):
        out = score(live_features).to_frame("prediction")
        out["confidence"] = 1.0
        return out

    def string_predictions(live_features):
        return score(live_features).astype(str).to_frame("prediction")

    def sleep_forever(live_features):
        while True:
            time.sleep(1)

    def allocate_6gb(live_features):
        blocks = []
        for _ in range(48):  # 48 x 128 MiB, every page touched
            blocks.append(np.ones(128 * 1024 * 1024 // 8))
        return score(live_features).to_frame("prediction")

    def zero_args():
        return None

    def three_args(live_features, live_benchmark_models, extra):
        return None

    def prints_then_predicts(live_features):
        print("hello from the model on stdout")
        import sys
        print("and a warning on stderr", file=sys.stderr)
        return score(live_features).to_frame("prediction")

    def probe_sandbox(live_features):
        """Reports what the model can see and do, on stderr, then predicts normally."""
        import socket
        import resource
        facts = {"uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd(), "home": os.environ.get("HOME")}
        for label, path in (("write_root", "/probe"), ("write_input", "/input/model.pkl"),
                            ("write_opt", "/opt/venv/probe"), ("write_tmp", "/tmp/probe"),
                            ("write_var_tmp", "/var/tmp/probe")):  # world-writable, on the root filesystem
            try:
                with open(path, "a") as handle:
                    handle.write("x")
                facts[label] = True
            except OSError as exc:
                facts[label] = exc.strerror
        facts["input_mounts"] = [l.split()[3].split(",")[0] for l in open("/proc/self/mounts") if " /input/" in l]
        facts["root_mount"] = next(l.split()[3].split(",")[0] for l in open("/proc/self/mounts") if l.split()[1] == "/")
        facts["tmp_mount"] = next(l.split()[3] for l in open("/proc/self/mounts") if l.split()[1] == "/tmp")
        facts["kernel"] = os.uname().release
        facts["mem_total"] = next(int(l.split()[1]) * 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal:"))
        status = open("/proc/self/status").read()
        facts["cap_eff"] = next(l.split()[1] for l in status.splitlines() if l.startswith("CapEff"))
        import ctypes  # prctl(PR_GET_NO_NEW_PRIVS): gVisor's /proc/self/status has no NoNewPrivs line
        facts["no_new_privs"] = str(ctypes.CDLL(None, use_errno=True).prctl(39, 0, 0, 0, 0))
        facts["interfaces"] = sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:])
        facts["nofile"] = resource.getrlimit(resource.RLIMIT_NOFILE)
        facts["visible_cpus"] = len(os.sched_getaffinity(0))
        stat = os.statvfs("/tmp")
        facts["tmp_bytes"] = stat.f_blocks * stat.f_frsize
        try:
            socket.create_connection(("1.1.1.1", 80), timeout=3)
            facts["connect"] = "connected"
        except OSError as exc:
            facts["connect"] = f"{type(exc).__name__}: {exc}"
        for label, path in (("memory_limit", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
                            ("memsw_limit", "/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
                            ("memory_max_v2", "/sys/fs/cgroup/memory.max"), ("swap_max_v2", "/sys/fs/cgroup/memory.swap.max"),
                            ("cpu_quota", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), ("cpu_period", "/sys/fs/cgroup/cpu/cpu.cfs_period_us"),
                            ("cpu_max_v2", "/sys/fs/cgroup/cpu.max"),
                            ("pids_max", "/sys/fs/cgroup/pids/pids.max"), ("pids_max_v2", "/sys/fs/cgroup/pids.max")):
            try:
                facts[label] = open(path).read().strip()
            except OSError:
                pass
        import sys
        for key, value in facts.items():
            print(f"PROBE {key} {json.dumps(value)}", file=sys.stderr)
        return score(live_features).to_frame("prediction")

    def spawn_then_sleep(live_features):
        import subprocess
        subprocess.Popen(["sleep", "1000"])
        while True:
            time.sleep(1)

    class DataAtLoad:
        """Says, from inside its own unpickling, whether any DataFrame (the live data) was in memory then."""

        def __setstate__(self, state):
            import gc
            self.__dict__.update(state)
            self.seen = any(isinstance(o, pd.DataFrame) for o in gc.get_objects())

        def __call__(self, live_features):
            import sys
            print(f"DATA IN MEMORY WHILE LOADING: {self.seen}", file=sys.stderr)
            return score(live_features).to_frame("prediction")

    probe = DataAtLoad()
    probe.seen = None
    made = {name: fn for name, fn in locals().items() if callable(fn) and name not in ("score", "main")
            and not name.startswith("_") and name not in ("parser", "args", "handle", "DataAtLoad", "probe")}
    made["data_at_load"] = probe
    made["lambda_1arg"] = lambda live_features: score(live_features).to_frame("prediction")
    os.makedirs(args.out, exist_ok=True)
    for name, fn in made.items():
        with open(os.path.join(args.out, f"{name}.pkl"), "wb") as handle:
            cloudpickle.dump(fn, handle)
    with open(os.path.join(args.out, "not_callable.pkl"), "wb") as handle:
        pickle.dump({"weights": [1, 2, 3]}, handle)
    good = cloudpickle.dumps(good_1arg)
    with open(os.path.join(args.out, "truncated.pkl"), "wb") as handle:
        handle.write(good[: len(good) // 2])
    with open(os.path.join(args.out, "empty.pkl"), "wb") as handle:
        pass
    with open(os.path.join(args.out, "csv_file.pkl"), "w") as handle:
        handle.write("id,prediction\nn0001,0.5\nn0002,0.25\n")
    with open(os.path.join(args.out, "html_page.pkl"), "w") as handle:
        handle.write("<!DOCTYPE html><html><body>403 Forbidden</body></html>\n")
    print(f"wrote {len(made) + 5} pickles")


if __name__ == "__main__":
    main()
