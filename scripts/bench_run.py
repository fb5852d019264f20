#!/usr/bin/env python3
"""Measure the runner's overhead: a run's total wall time minus the model's own predict time.

    python scripts/bench_run.py [--python 3.11] [--runs 5] [--model examples/build/py3.11/lgbm_1arg.pkl]

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


def one(model: Path, python: str) -> dict:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "runner", "run", str(model), "--python", python, "--json"],
                          capture_output=True, text=True, cwd=ROOT)
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
    args = parser.parse_args()
    model = args.model or ROOT / "examples" / "build" / f"py{args.python}" / "lgbm_1arg.pkl"
    one(model, args.python)  # warm-up: image lookup, synthetic data, page cache
    rows = [one(model, args.python) for _ in range(args.runs)]
    keys = list(rows[0])
    print("run  " + "  ".join(f"{k:>12}" for k in keys))
    for i, row in enumerate(rows, 1):
        print(f"{i:<4} " + "  ".join(f"{row[k]:12.3f}" for k in keys))
    print("med  " + "  ".join(f"{statistics.median(r[k] for r in rows):12.3f}" for k in keys))
    print(f"\nmedian overhead (wall - predict): {statistics.median(r['overhead'] for r in rows):.2f}s "
          f"over {args.runs} runs of {model.name} on Python {args.python}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
