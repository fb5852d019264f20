#!/usr/bin/env python3
"""Measure `inspect_pickle` on a large pickle: wall time and peak memory.

    scripts/bench_inspect.py [--mb 200] [--scenario numpy|text|objects|all]

numpy:   a cloudpickled function closing over a ~200 MB numpy array (the common big model)
text:    a cloudpickled function closing over a ~200 MB string (a LightGBM model string's shape)
objects: a plain pickle of many small objects (the worst case for an opcode walk: every
         object is opcodes, nothing can be skipped); sized to --objects-mb

Each pickle is written to a temporary directory and removed afterwards. The inspection runs
in a fresh process (and the pickle is built in another) so that the peak RSS measured (VmHWM)
is the inspection's own; the RSS after importing numerai-sandbox is reported as the baseline.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

MEASURE = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
from pathlib import Path
from runner.inspection import inspect_pickle

def status(field):  # Linux: VmRSS now, VmHWM the peak of this process image (ru_maxrss survives exec)
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

baseline = status("VmRSS")
started = time.perf_counter()
inspection = inspect_pickle(Path(sys.argv[1]))
wall = time.perf_counter() - started
peak = status("VmHWM")
print(json.dumps({"wall_seconds": wall, "walk_seconds": inspection.stats["seconds"],
                  "baseline_rss_kib": baseline, "peak_rss_kib": peak, "python": inspection.python.version,
                  "callable": inspection.callable.kind, "opcodes": inspection.stats["opcodes"],
                  "bytes_skipped": inspection.stats["bytes_skipped"], "problems": inspection.problems}))
"""


def build(scenario: str, mb: int, objects_mb: int, path: Path) -> None:
    import cloudpickle

    if scenario == "numpy":
        import numpy as np

        weights = np.random.default_rng(0).random(mb * 1024 * 1024 // 8)

        def predict(live_features):
            return live_features @ weights[: live_features.shape[1]]

        with open(path, "wb") as handle:
            cloudpickle.dump(predict, handle)
    elif scenario == "text":
        model = "tree\nversion=v4\n" + "Tree=0\nleaf_value=0.5 0.25\n" * (mb * 1024 * 1024 // 27)

        def predict(live_features):
            return len(model) + live_features

        with open(path, "wb") as handle:
            cloudpickle.dump(predict, handle)
    else:
        count = objects_mb * 1024 * 1024 // 40
        data = {f"id{i:09d}": (i, i * 0.5) for i in range(count)}
        with open(path, "wb") as handle:
            import pickle

            pickle.dump(data, handle, protocol=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=200, help="size of the big payload (numpy, text)")
    parser.add_argument("--objects-mb", type=int, default=50, help="size of the many-objects pickle")
    parser.add_argument("--scenario", default="numpy", choices=["numpy", "text", "objects", "all"])
    parser.add_argument("--build", help=argparse.SUPPRESS)  # internal: write one scenario's pickle here
    args = parser.parse_args()
    if args.build:
        build(args.scenario, args.mb, args.objects_mb, Path(args.build))
        return
    scenarios = ["numpy", "text", "objects"] if args.scenario == "all" else [args.scenario]
    with tempfile.TemporaryDirectory(prefix="nsbx-bench-") as tmp:
        for scenario in scenarios:
            started = time.perf_counter()
            path = Path(tmp) / f"{scenario}.pkl"
            subprocess.run([sys.executable, __file__, "--build", str(path), "--scenario", scenario, "--mb",
                            str(args.mb), "--objects-mb", str(args.objects_mb)], check=True)
            size = path.stat().st_size
            made = time.perf_counter() - started
            proc = subprocess.run([sys.executable, "-c", MEASURE, str(path), str(ROOT)], capture_output=True,
                                  text=True, check=True)
            result = json.loads(proc.stdout)
            path.unlink()
            print(f"{scenario}: {size / 1024**2:,.1f} MiB pickle (made in {made:.1f} s): inspect_pickle "
                  f"{result['wall_seconds']:.2f} s wall (opcode walk {result['walk_seconds']:.2f} s, "
                  f"{result['opcodes']:,} opcodes, {result['bytes_skipped'] / 1024**2:,.1f} MiB skipped), "
                  f"peak RSS {result['peak_rss_kib'] / 1024:.1f} MiB (baseline after imports "
                  f"{result['baseline_rss_kib'] / 1024:.1f} MiB, "
                  f"+{(result['peak_rss_kib'] - result['baseline_rss_kib']) / 1024:.1f} MiB); "
                  f"python {result['python']}, {result['callable']}"
                  + (f"; problems: {result['problems']}" if result["problems"] else ""))


if __name__ == "__main__":
    main()
