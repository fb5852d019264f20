#!/usr/bin/env python3
"""Measure the HTML report: page size (and how much of it is Vega's JavaScript), render time, import cost.

    python scripts/bench_html.py REPORT.json [--runs 5]
REPORT.json is a run's JSON report (`run MODEL --report REPORT.json`). "cold" renders with an
empty cache (Vega's script is bundled by vl-convert, then cached); "warm" reads it from the cache.
Each render runs in a fresh interpreter, so the numbers include importing altair and vl-convert.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RENDER = ("import json, sys; from pathlib import Path; from runner.verdict import html; "
          "html.write(Path(sys.argv[2]), [json.load(open(sys.argv[1]))])")
IMPORT = "import time; t = time.perf_counter(); import altair, vl_convert, jinja2; print(time.perf_counter() - t)"


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, cwd=ROOT, env=env)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-html-") as scratch:
        page = Path(scratch) / "report.html"
        cold, warm = [], []
        for run in range(args.runs):
            env = dict(os.environ, NUMERAI_SANDBOX_CACHE=str(Path(scratch) / f"cache{run}"))
            cold.append(timed([sys.executable, "-c", RENDER, str(args.report), str(page)], env))
            warm.append(timed([sys.executable, "-c", RENDER, str(args.report), str(page)], env))
        imports = [float(subprocess.run([sys.executable, "-c", IMPORT], capture_output=True, text=True,
                                        check=True).stdout) for _ in range(args.runs)]
        text = page.read_text(encoding="utf-8")
        script = max(text.split("<script>")[1:], key=len).split("</script>")[0]
    report = json.loads(args.report.read_text())
    print(json.dumps({
        "page_bytes": len(text.encode()),
        "vega_script_bytes": len(script.encode()),
        "rest_bytes": len(text.encode()) - len(script.encode()),
        "memory_samples": len(report.get("memory_samples") or []),
        "render_cold_seconds_median": round(statistics.median(cold), 2),
        "render_warm_seconds_median": round(statistics.median(warm), 2),
        "import_altair_vl_convert_jinja2_seconds_median": round(statistics.median(imports), 2),
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
