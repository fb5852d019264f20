#!/usr/bin/env python3
"""Measure the runner's overhead: a run's total wall time minus the model's own predict time.

    python scripts/bench_run.py [--python 3.11] [--runs 5] [--model examples/build/py3.11/lgbm_1arg.pkl]
                                [--isolation runc|gvisor|both]

Each run is the real CLI in a subprocess (what a user or CI job pays), on the default
synthetic live data (6,720 rows x 2,748 features). Prints each run and the medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one(model: Path, python: str, isolation: str = "runc") -> dict:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "runner", "run", str(model), "--python", python, "--json",
                           "--isolation", isolation], capture_output=True, text=True, cwd=ROOT)
    wall = time.monotonic() - started
    report = json.loads(proc.stdout)
    if report["status"] != "Success":
        raise SystemExit(f"run failed: {report['reason']}: {report['message']}")
    phases = report["durations"]["phases"]
    return {"wall": wall, "predict": phases["predicting"], "overhead": wall - phases["predicting"],
            "pending": report["durations"]["Pending"], "running": report["durations"]["Running"],
            "validating": report["durations"]["Validating"], "starting": phases.get("starting", 0),
            "loading": phases.get("loading", 0), "reading_data": phases.get("reading_data", 0),
            "container": report["durations"]["container_seconds"], "peak_mib": report["peak_memory_bytes"] / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--isolation", choices=("runc", "gvisor", "both"), default="runc",
                        help="both: alternate runc and gvisor runs, and print gVisor's extra cost")
    args = parser.parse_args()
    model = args.model or ROOT / "examples" / "build" / f"py{args.python}" / "lgbm_1arg.pkl"
    isolations = ("runc", "gvisor") if args.isolation == "both" else (args.isolation,)
    for isolation in isolations:
        one(model, args.python, isolation)  # warm-up: image lookup, synthetic data, page cache
    rows: dict[str, list[dict]] = {isolation: [] for isolation in isolations}
    for _ in range(args.runs):  # interleaved, so a busy moment of the machine hits both alike
        for isolation in isolations:
            rows[isolation].append(one(model, args.python, isolation))
    medians = {}
    for isolation, runs in rows.items():
        keys = list(runs[0])
        print(f"\n{isolation}\nrun  " + "  ".join(f"{k:>12}" for k in keys))
        for i, row in enumerate(runs, 1):
            print(f"{i:<4} " + "  ".join(f"{row[k]:12.3f}" for k in keys))
        medians[isolation] = {k: statistics.median(r[k] for r in runs) for k in keys}
        print("med  " + "  ".join(f"{medians[isolation][k]:12.3f}" for k in keys))
        print(f"median overhead (wall - predict): {medians[isolation]['overhead']:.2f}s "
              f"over {args.runs} runs of {model.name} on Python {args.python} ({isolation})")
    if len(medians) == 2:
        extra = {k: medians["gvisor"][k] - medians["runc"][k] for k in medians["runc"]}
        print("\ngVisor's extra cost (median gvisor - median runc): "
              + ", ".join(f"{k} {v:+.2f}" for k, v in extra.items() if k != "peak_mib")
              + f"; peak memory {extra['peak_mib']:+.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
