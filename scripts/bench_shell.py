#!/usr/bin/env python3
"""Measure `numerai-sandbox shell` as a person feels it: from the command to the prompt, and from exit() to gone.

    python scripts/bench_shell.py [--sessions 5] [--model examples/build/py3.11/lgbm_1arg.pkl]

Each session is the real CLI on a pseudo-terminal (pexpect, from the test extra), on the default
synthetic live data, with a warm image. Also times `numerai-sandbox doctor`. Prints each session
and the medians.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one(model: Path) -> dict:
    import pexpect

    started = time.monotonic()
    child = pexpect.spawn(sys.executable, ["-m", "runner", "shell", str(model)], cwd=str(ROOT), encoding="utf-8",
                          timeout=300)
    child.expect(">>> ")
    prompt = time.monotonic() - started
    child.sendline("predict(live_features).shape")
    child.expect(">>> ")
    exiting = time.monotonic()
    child.sendline("exit()")
    child.expect(pexpect.EOF)
    child.close()
    if child.exitstatus != 0:
        raise SystemExit(f"the shell ended with exit code {child.exitstatus}")
    return {"to_prompt": prompt, "exit_to_gone": time.monotonic() - exiting}


def doctor_seconds() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "runner", "doctor", "--json"], capture_output=True, cwd=ROOT)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--model", type=Path, default=ROOT / "examples" / "build" / "py3.11" / "lgbm_1arg.pkl")
    args = parser.parse_args()
    one(args.model)  # warm: the image's harness layer, the fitted data
    sessions = [one(args.model) for _ in range(args.sessions)]
    for number, session in enumerate(sessions, 1):
        print(f"session {number}: prompt after {session['to_prompt']:.2f}s, exit() to gone {session['exit_to_gone']:.2f}s")
    doctors = [doctor_seconds() for _ in range(args.sessions)]
    print(f"median: prompt after {statistics.median(s['to_prompt'] for s in sessions):.2f}s, exit() to gone "
          f"{statistics.median(s['exit_to_gone'] for s in sessions):.2f}s; doctor {statistics.median(doctors):.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
