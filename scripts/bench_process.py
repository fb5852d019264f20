#!/usr/bin/env python3
"""Measure the process sandbox: its environment's build and reuse, and each test model's run beside a container's.

    python scripts/bench_process.py [--python 3.11] [--interpreter PATH] [--timeout 20] [--json FILE]

1. The environment (runner.images.venv) for the standard pins, made in an empty cache whose wheels
   are this machine's wheelhouse (so: "when its wheels are cached"), then found again (reuse).
2. Every model of tests/models/make_models.py, pickled in the image of that Python (needs the Docker
   engine and the image), run in a container and in the process sandbox with the same limits (Numerai's,
   the clock shortened to --timeout for the models that sleep): exit code, how it ended, the harness's
   error kind, whether the frames and predictions are the same, run time and peak memory on each side.
Prints markdown tables. The machine's load is printed too: the times mean little on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def frames(stream: bytes) -> list[tuple[str, bytes]]:
    out, at = [], 0
    while at < len(stream):
        newline = stream.find(b"\n", at)
        if newline < 0:
            break
        parts = stream[at:newline].split(b" ")
        if len(parts) != 3 or parts[0] != b"NSBX1":
            break
        length = int(parts[2])
        out.append((parts[1].decode(), bytes(stream[newline + 1:newline + 1 + length])))
        at = newline + 1 + length
    return out


def facts(outcome, out: bytes) -> dict:
    found = frames(out)
    error = next((json.loads(p) for k, p in reversed(found) if k == "error"), None)
    return {"exit": outcome.exit_code, "oom": outcome.oom_killed, "timeout": outcome.timed_out,
            "error": error and error.get("kind"), "kinds": [k for k, _ in found],
            "predictions": next((p for k, p in reversed(found) if k == "predictions"), None),
            "seconds": outcome.run_seconds, "peak": outcome.peak_memory_bytes or 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--interpreter", type=Path, help="a CPython of that version (default: the running one)")
    parser.add_argument("--timeout", type=float, default=20.0, help="the clock for both sides (sleeping models)")
    parser.add_argument("--json", type=Path, help="also write the measurements here")
    args = parser.parse_args()

    from runner import data
    from runner.images import store, venv, wheelhouse
    from runner.images.pins import pin_set
    from runner.sandbox import engine
    from runner.sandbox.docker import DockerBackend
    from runner.sandbox import process
    from runner.sandbox.backend import ContainerSpec, Limits, Mount, StreamSink

    class Collected(StreamSink):
        def __init__(self):
            self.out = bytearray()

        def stdout(self, chunk: bytes) -> None:
            self.out += chunk

    print(f"load average: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")
    pins = pin_set(args.python, "standard")
    interpreter = venv.interpreter(args.interpreter)
    scratch = Path(tempfile.mkdtemp(prefix="numerai-sandbox-bench-"))
    (scratch / "wheels").mkdir()
    (scratch / "wheels" / f"py{args.python}").symlink_to(wheelhouse.wheel_dir(args.python))
    real_cache = os.environ.get("NUMERAI_SANDBOX_CACHE")
    os.environ["NUMERAI_SANDBOX_CACHE"] = str(scratch)
    try:
        started = time.monotonic()
        made = venv.ensure(pins, interpreter)
        build = time.monotonic() - started
        started = time.monotonic()
        venv.ensure(pins, venv.interpreter(args.interpreter))
        reuse = time.monotonic() - started
        size = sum(p.stat().st_size for p in made.path.rglob("*") if p.is_file() and not p.is_symlink())
        print(f"\n| environment | Python {interpreter.version} | made from the cached wheels | found again | size |\n"
              f"|---|---|---|---|---|\n| {made.path.name} | {interpreter.executable} | {build:.1f} s | "
              f"{reuse:.2f} s | {size / 1024**2:.0f} MiB |")
        os.environ.pop("NUMERAI_SANDBOX_CACHE")
        if real_cache:
            os.environ["NUMERAI_SANDBOX_CACHE"] = real_cache
        live = data.synthetic_default()
        client = engine.connect()
        image = store.ensure(client, pins, progress=lambda line: None)
        models = scratch / "models"
        models.mkdir()
        code, output = engine.run_script(
            client, image.id, ["/scripts/make_models.py", "--features", "/data/features.json", "--out", "/out"],
            [Mount(ROOT / "tests" / "models", "/scripts"), Mount(live.features_json, "/data/features.json"),
             Mount(models, "/out", writable=True)])
        if code != 0:
            raise SystemExit(output)
        limits = Limits(timeout_seconds=args.timeout)
        command = ["--max-output-bytes", str(limits.max_output_bytes), "--exit-on-stdin-eof"]
        environment = {"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib"}
        backend = DockerBackend(client)
        rows = []
        print("\n| model | container: exit, end, error | process: exit, end, error | same frames | same predictions "
              "| seconds (container / process) | peak MiB (container / process) |\n|---|---|---|---|---|---|---|")
        for model in sorted(models.glob("*.pkl")):
            mounts = [Mount(model, "/input/model.pkl"), Mount(live.live, "/input/live.parquet"),
                      Mount(live.benchmarks, "/input/live_benchmark_models.parquet")]
            spec = ContainerSpec(image=image.id, name=f"numerai-sandbox-bench-{os.getpid()}", command=command,
                                 mounts=mounts, limits=limits, user=f"{os.getuid()}:{os.getgid()}",
                                 environment=environment)
            sink = Collected()
            container = facts(backend.run(spec, sink), sink.out)
            sink = Collected()
            here = facts(process.run(made.python, command, mounts, limits, sink, environment=environment).outcome,
                         sink.out)
            row = {"model": model.stem, "container": container, "process": here}
            rows.append(row)

            def ending(f: dict) -> str:
                end = "oom" if f["oom"] else "timeout" if f["timeout"] else "exit"
                return f"{f['exit']}, {end}, {f['error'] or '-'}"

            print(f"| {model.stem} | {ending(container)} | {ending(here)} | "
                  f"{'yes' if container['kinds'] == here['kinds'] else 'NO'} | "
                  f"{'yes' if container['predictions'] == here['predictions'] else 'NO'} | "
                  f"{container['seconds']:.1f} / {here['seconds']:.1f} | "
                  f"{container['peak'] / 1024**2:.0f} / {here['peak'] / 1024**2:.0f} |", flush=True)
        if args.json:
            for row in rows:
                for side in ("container", "process"):
                    row[side]["predictions"] = row[side]["predictions"] is not None
            args.json.write_text(json.dumps({"build_seconds": build, "reuse_seconds": reuse, "rows": rows},
                                            indent=1))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
