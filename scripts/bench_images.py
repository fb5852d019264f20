#!/usr/bin/env python3
"""Measure image build times and sizes: network fetch, cold offline build, cached rebuild.

    python scripts/bench_images.py [--pythons 3.10 3.11 3.12 3.13 3.14] [--fetch] [--update-readme]

cold build: our images for that Python removed (base, env, runtime), the cache kept, then
`images build` (network disabled). cached: the same command again with nothing changed.
--fetch also times `images fetch` into an empty cache (debootstrap + wheels: uses the network; for
3.14 also compiling scikit-learn 1.6.1 from source, which takes most of it).
Prints a markdown table; --update-readme writes it into README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def cli(*args: str, env: dict | None = None) -> float:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "runner", *args], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, **(env or {})))
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.monotonic() - started


def size_of(python: str) -> int:
    listed = json.loads(subprocess.run([sys.executable, "-m", "runner", "images", "list", "--json"],
                                       capture_output=True, text=True, cwd=ROOT, check=True).stdout)
    return next(i["size_bytes"] for i in listed if i["python"] == python and i["profile"] == "standard")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pythons", nargs="+", default=["3.10", "3.11", "3.12", "3.13", "3.14"])
    parser.add_argument("--fetch", action="store_true", help="also time images fetch into an empty cache")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    rows = []
    for python in args.pythons:
        fetch = None
        if args.fetch:
            scratch = tempfile.mkdtemp(prefix="numerai-sandbox-bench-")
            try:
                fetch = cli("images", "fetch", "--python", python,  # no pip HTTP cache: a real download
                            env={"NUMERAI_SANDBOX_CACHE": scratch, "PIP_NO_CACHE_DIR": "1"})
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        cli("images", "fetch", "--python", python)  # the real cache is complete (a no-op when it is)
        cli("images", "rm", "--python", python, "--all")
        cold = cli("images", "build", "--python", python)
        cached = cli("images", "build", "--python", python)
        rows.append((python, fetch, cold, cached, size_of(python)))
        print(f"py{python}: fetch {fetch}, cold build {cold:.0f}s, cached {cached:.1f}s, size {rows[-1][4] / 1e9:.2f} GB",
              flush=True)
    table = ["| image | fetch (network, empty cache) | cold build (offline) | cached rebuild | size |",
             "|---|---|---|---|---|"]
    for python, fetch, cold, cached, size in rows:
        fetched = f"{fetch:.0f} s" if fetch is not None else "not measured"
        table.append(f"| `numerai-sandbox:py{python}-standard` | {fetched} | {cold:.0f} s | {cached:.1f} s | "
                     f"{size / 1e9:.2f} GB ({size / 2**30:.2f} GiB) |")
    text = "\n".join(table)
    print(text)
    if args.update_readme:
        readme = ROOT / "README.md"
        note = (f"Measured with `python scripts/bench_images.py{' --fetch' if args.fetch else ''}` "
                f"on a 2-core machine ({time.strftime('%Y-%m-%d')}):\n\n")
        body = readme.read_text()
        body = re.sub(r"(<!-- images:start -->\n).*?(<!-- images:end -->)",
                      lambda m: m.group(1) + note + text + "\n" + m.group(2), body, flags=re.S)
        readme.write_text(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
