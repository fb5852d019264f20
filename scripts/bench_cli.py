#!/usr/bin/env python3
"""Measure how long the commands that need no engine take, with a healthy engine and with a hung one.

    python scripts/bench_cli.py [--runs 5] [--checkout DIR]

Each command is the real CLI in a subprocess. "hung engine" points DOCKER_HOST at a unix socket
that accepts connections and never answers (a half-started engine): a command that reached for
the engine would wait for its connect timeout there. --checkout DIR measures another checkout of
numerai-sandbox (e.g. an older commit unpacked with `git archive`) with this interpreter.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def silent_engine(path: Path) -> socket.socket:
    """A unix socket that accepts every connection and answers nothing (closed when the script ends)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(64)
    held = []

    def accept_forever() -> None:
        while True:
            try:
                held.append(server.accept())
            except OSError:  # closed
                return

    threading.Thread(target=accept_forever, daemon=True).start()
    return server


def wall(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "runner", *argv], capture_output=True, env=env, cwd=cwd, timeout=120)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--checkout", type=Path, default=ROOT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="numerai-sandbox-bench-") as tmp:
        work = Path(tmp)
        model = work / "model.pkl"
        subprocess.run([sys.executable, "-c", "import cloudpickle, sys\n"
                        "def predict(live_features):\n    return live_features\n"
                        "open(sys.argv[1], 'wb').write(cloudpickle.dumps(predict))", str(model)], check=True)
        server = silent_engine(work / "engine.sock")
        commands = {"--help": ["--help"], "run --help": ["run", "--help"], "inspect": ["inspect", str(model)],
                    "data synth (100 rows)": ["data", "synth", "--out", str(work / "data"), "--rows", "100",
                                              "--features", "20", "--force"]}
        engines = {"engine": dict(os.environ), "hung engine": dict(os.environ, DOCKER_HOST=f"unix://{work}/engine.sock")}
        print(f"{'command':<24}" + "".join(f"{name:>14}" for name in engines) + f"   (median of {args.runs}, s)")
        for label, argv in commands.items():
            medians = [statistics.median(wall(argv, env, args.checkout) for _ in range(args.runs))
                       for env in engines.values()]
            print(f"{label:<24}" + "".join(f"{m:>14.2f}" for m in medians))
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
