"""A long-lived process that runs model after model (`make soak`): nothing of it may grow.

    python scripts/soak.py [--runs 500] [--python 3.11] [--out soak-figures.json]

One Python process calls the API (runner.api.run_pickle) `--runs` times in a loop, cycling through a
passing model, a failing one and one whose output Numerai rejects (the example pickles), as a notebook or a
CI service would. Every 25 runs it reads: the containers of ours on the engine (this process's), our temp
dirs, this process's open files (file descriptors), threads and resident memory. Prints, and writes to
--out, those readings and their growth from the first reading after warm-up to the last; exits 1 when a
verdict changed between rounds, or containers, temp dirs, open files or threads grew, or memory grew by more
than 50 MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("sklearn_1arg", "bad_raises", "bad_nan")
MEMORY_SLACK = 50 * 2**20


def reading(runs: int, started: float) -> dict:
    from runner.sandbox import engine

    me = psutil.Process()
    client = engine.connect()
    mine = [c for c in client.api.containers(all=True, filters={"label": "numerai-sandbox.owner"})
            if f"/{os.getpid()}/" in (c.get("Labels") or {}).get("numerai-sandbox.owner", "")]
    client.close()
    temp = [p for p in Path(tempfile.gettempdir()).glob("numerai-sandbox-*") if str(os.getpid()) in p.name]
    return {"runs": runs, "seconds": round(time.monotonic() - started, 1), "containers": len(mine),
            "temp_dirs": len(temp), "open_files": me.num_fds(), "threads": me.num_threads(),
            "thread_names": sorted(t.name for t in threading.enumerate()),
            "rss_mib": round(me.memory_info().rss / 2**20, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--every", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("soak-figures.json"))
    args = parser.parse_args()
    os.environ.setdefault("NUMERAI_SANDBOX_HISTORY_DIR", tempfile.mkdtemp(prefix="soak-history-"))
    from runner import api

    models = [ROOT / "examples" / "build" / f"py{args.python}" / f"{name}.pkl" for name in MODELS]
    missing = [str(m) for m in models if not m.exists()]
    if missing:
        sys.exit(f"soak: the example pickles are missing ({', '.join(missing)}): `make examples` makes them")
    started = time.monotonic()
    seen: dict[str, tuple] = {}
    changed, readings = [], []
    for i in range(args.runs):
        model = models[i % len(models)]
        report = api.run_pickle(model, python=args.python, history=False)
        verdict = (report.status.value, report.reason, report.subcode)
        if seen.setdefault(model.name, verdict) != verdict:
            changed.append({"run": i + 1, "model": model.name, "first": seen[model.name], "now": verdict,
                            "message": report.message})
        if (i + 1) % args.every == 0 or i + 1 == args.runs:
            readings.append(reading(i + 1, started))
            print(json.dumps(readings[-1]), flush=True)
    first, last = readings[min(1, len(readings) - 1)], readings[-1]  # the first reading after warm-up
    growth = {k: round(last[k] - first[k], 1) for k in ("containers", "temp_dirs", "open_files", "threads", "rss_mib")}
    figures = {"runs": args.runs, "python": args.python, "models": list(MODELS), "seconds": last["seconds"],
               "per_run_seconds": round(last["seconds"] / args.runs, 2), "verdicts": {k: list(v) for k, v in seen.items()},
               "verdict_changes": changed, "from": first, "to": last, "growth": growth, "readings": readings}
    args.out.write_text(json.dumps(figures, indent=2))
    ok = (not changed and last["containers"] == 0 and last["temp_dirs"] == 0 and growth["open_files"] <= 0
          and growth["threads"] <= 0 and growth["rss_mib"] * 2**20 <= MEMORY_SLACK)
    print(f"soak: {'OK' if ok else 'FAILED'}: {args.runs} runs in {last['seconds']}s; growth from run {first['runs']} "
          f"to {last['runs']}: {growth}; verdict changes: {len(changed)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
