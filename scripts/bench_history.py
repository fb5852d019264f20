#!/usr/bin/env python3
"""Measure what the run history costs: recording a run, listing and showing runs, the disk it takes.

    scripts/bench_history.py [--runs 500] [--samples 3000] [--report REPORT.json] [--repeat 20]

A temporary history is filled with --runs records of one report (by default a synthetic one
with --samples memory samples: 3,000 is a 10-minute run, the most a report holds; or a real
report given with --report), then:
  record      one more run recorded into the full history, pruning included (the cap is --runs)
  entries     history.entries() over all records, in-process
  runs list   the command's own work (in process), and `numerai-sandbox runs list` (20 rows) and
              `--limit 0` as a user runs them (a fresh process: start-up and the root group's engine sweep)
  runs show   `numerai-sandbox runs show last`
Medians of --repeat; the temporary history is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def synthetic_report(samples: int):
    from runner.verdict.lifecycle import Status
    from runner.verdict.report import Report

    return Report(Status.SUCCESS, None, "", python="3.11", python_full="3.11.2",
                  model={"path": "/models/lgbm_1arg.pkl", "size_bytes": 98304, "sha256": "ab" * 32},
                  durations={"total": 612.0, "phases": {"predicting": 590.0}}, peak_memory_bytes=3 * 1024**3,
                  memory_samples=[[round(i * 0.2, 3), 200 * 1024**2 + i * 1024**2] for i in range(samples)],
                  logs_tail="\n".join(f"[LightGBM] [Info] line {i} of the model's output" for i in range(40)),
                  checks=[{"rule": f"rule_{i}", "source": "numerai-predict", "passed": True, "blocking": True,
                           "count": 0, "examples": [], "detail": ""} for i in range(13)],
                  n_predictions=6720, limits={"memory_bytes": 4 * 1024**3, "cpus": 1.0, "timeout_seconds": 600})


def timed(action, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--report", type=Path)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    from runner.usecases import history
    from runner.verdict.report import Report

    with tempfile.TemporaryDirectory(prefix="numerai-sandbox-bench-history-") as where:
        os.environ[history.ENV_DIR] = where
        os.environ.pop(history.ENV_OFF, None)
        history.KEEP_RUNS = args.runs
        report = (Report.from_dict(json.loads(args.report.read_text())) if args.report
                  else synthetic_report(args.samples))
        now = datetime.now(timezone.utc)
        for i in range(args.runs):
            history.record(report, when=now - timedelta(minutes=args.runs - i))
        size = sum(f.stat().st_size for f in Path(where).rglob("*") if f.is_file())
        record = timed(lambda: history.record(report), args.repeat)
        assert len(history.ids()) == args.runs
        entries = timed(history.entries, args.repeat)
        cli = [sys.executable, "-m", "runner", "runs"]

        def run(*extra: str) -> None:
            subprocess.run([*cli, *extra], check=True, stdout=subprocess.DEVNULL, cwd=ROOT)

        from click.testing import CliRunner

        from runner.cli.history import runs_group

        in_process = timed(lambda: CliRunner().invoke(runs_group, ["list"], catch_exceptions=False), args.repeat)
        repeat = max(3, args.repeat // 4)
        listed = timed(lambda: run("list"), repeat)
        listed_all = timed(lambda: run("list", "--limit", "0"), repeat)
        shown = timed(lambda: run("show", "last"), repeat)
        baseline = timed(lambda: subprocess.run([sys.executable, "-m", "runner", "--version"], check=True,
                                                stdout=subprocess.DEVNULL, cwd=ROOT), repeat)
    one = len(report.to_json()) + 1
    print(f"history of {args.runs} runs, report {one / 1024:.1f} KiB ({len(report.memory_samples)} memory samples), "
          f"{size / 1024**2:.1f} MiB on disk")
    print(f"record one run (pruning included)       {record * 1000:7.1f} ms")
    print(f"history.entries(), all {args.runs}             {entries * 1000:7.1f} ms")
    print(f"runs list (20 rows), in process         {in_process * 1000:7.1f} ms")
    print(f"runs list (20 rows), fresh process      {listed * 1000:7.1f} ms")
    print(f"runs list --limit 0, fresh process      {listed_all * 1000:7.1f} ms")
    print(f"runs show last, fresh process           {shown * 1000:7.1f} ms")
    print(f"numerai-sandbox --version (the floor)   {baseline * 1000:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
