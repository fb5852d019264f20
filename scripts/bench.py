#!/usr/bin/env python3
"""numerai-sandbox against the floor: what it costs beyond running the model itself.

    python scripts/bench.py [--python 3.11] [--runs 7] [--model PKL] [--only floor,rss,validation,check]
                            [--update-readme]

- floor: `docker run --rm` of the same image with the same limits and mounts, running
  scripts/bench_floor.py (read live.parquet, unpickle, predict, write CSV), timed from process
  start to exit; alternated with `numerai-sandbox run` (cold: a new container per run, the image
  and the data cached), medians and their ratio, and where the runner's time goes; then the same
  model run again and again on a terminal with pre-starting at its defaults, back to back (a shell
  loop) and 2 s apart (a person re-running): the first, the second (which leaves a pre-started
  sandbox) and the median of the second and later;
- rss: the runner's own peak RSS for the example model and for models returning 250,000 and 1,000,000 rows;
- validation: the host's validation alone at 6,720, 250,000 and 1,000,000 rows;
- check: `check` of 10 pickles against the sum of their cold single runs.
The machine's own load shows in every number: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CLI = [sys.executable, "-m", "runner"]


# A child's ru_maxrss also counts its parent's RSS at the fork (Linux records the forked copy's high-water
# mark when the child execs), and this script holds pandas and million-row frames: the command is started
# by a small intermediate Python, which reports the command's own peak.
PEAK = ("import os, sys\n"
        "pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)\n"
        "_, status, usage = os.wait4(pid, 0)\n"
        "open(sys.argv[1], 'w').write(str(usage.ru_maxrss * 1024))\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n")


def timed(command: list[str], peak: bool = False, terminal: bool = False, **kwargs) -> tuple[float, int, str, int]:
    """(wall seconds, exit code, stdout, peak RSS bytes of the command itself, when `peak`) of one command;
    with `terminal`, its stdin is a pseudo-terminal (as when a person runs it)."""
    tty = os.openpty() if terminal else None
    with tempfile.NamedTemporaryFile("r", prefix="numerai-sandbox-bench-") as report:
        if peak:
            command = [sys.executable, "-c", PEAK, report.name, *command]
        try:
            started = time.monotonic()
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT,
                                    stdin=tty[1] if tty else None, **kwargs)
            out = proc.stdout.read()
            code = proc.wait()
            wall = time.monotonic() - started
        finally:
            for fd in tty or ():
                os.close(fd)
        rss = int(report.read() or 0) if peak else 0
    return wall, code, out.decode(), rss


def floor_command(image: str, model: Path, live: Path, bench: Path) -> list[str]:
    mounts = [(model, "/input/model.pkl"), (live, "/input/live.parquet"), (bench, "/input/live_benchmark_models.parquet"),
              (ROOT / "scripts" / "bench_floor.py", "/floor/floor.py")]
    return ["docker", "run", "--rm", "--network", "none", "--memory", "4g", "--memory-swap", "4g", "--cpus", "1",
            "--cpuset-cpus", "1" if (os.cpu_count() or 1) > 1 else "0", "--read-only", "--tmpfs",
            "/tmp:rw,nosuid,nodev,size=1073741824,mode=1777", "--user", "1000:1000", "--cap-drop", "ALL",
            "--security-opt", "no-new-privileges", "--pids-limit", "512", "--init",
            *[a for source, target in mounts for a in ("-v", f"{source}:{target}:ro")],
            "--entrypoint", "/opt/venv/bin/python", "-w", "/tmp", image, "-I", "/floor/floor.py"]


PAUSE = 2.0  # seconds between the runs of a person re-running a model
COLD = dict(os.environ, NUMERAI_SANDBOX_WARM="0")
WARM = dict(os.environ, NUMERAI_SANDBOX_WARM="1")
# A person at a terminal, outside CI, with pre-starting as it is by default.
DEFAULTS = {k: v for k, v in os.environ.items() if k not in ("NUMERAI_SANDBOX_WARM", "NUMERAI_SANDBOX_WARM_MAX", "CI")}


def run_report(model: Path, *extra: str, env: dict | None = None, peak: bool = False,
               terminal: bool = False) -> tuple[float, dict, int]:
    wall, code, out, rss = timed([*CLI, "run", str(model), "--json", *extra], peak=peak,
                                 env=env or COLD, terminal=terminal)
    report = json.loads(out)
    if report["status"] != "Success":
        raise SystemExit(f"the benchmark model did not succeed: {report['reason']}: {report['message']}")
    return wall, report, rss


def median(values) -> float:
    return statistics.median(list(values))


def bench_floor(model: Path, python: str, runs: int) -> list[tuple[str, str]]:
    from runner.data import synthetic

    data = synthetic.default_dir()
    image = f"numerai-sandbox:py{python}-standard"
    floor = floor_command(image, model.resolve(), data / "live.parquet", data / "live_benchmark_models.parquet")
    run_report(model)  # warm-up: image lookup, synthetic data, page cache
    subprocess.run(floor, check=True, capture_output=True)
    subprocess.run([*CLI, "clean"], env=COLD, capture_output=True)  # no pre-started sandbox from before
    floors, runners, reports = [], [], []
    for _ in range(runs):
        wall, code, _, _ = timed(floor)
        if code != 0:
            raise SystemExit(f"the floor container failed (exit {code}): {' '.join(floor)}")
        wall_cold, report, _ = run_report(model, env=COLD)
        floors.append(wall)
        runners.append(wall_cold)
        reports.append(report)
    f, r = median(floors), median(runners)
    rows = [("bare `docker run --rm` (the floor)", f"{f:.2f} s"),
            ("`numerai-sandbox run`, cold", f"{r:.2f} s"),
            ("**runner / floor, cold**", f"**{r / f:.2f}**")]
    d = [rep["durations"] for rep in reports]
    phases = [rep["durations"].get("phases", {}) for rep in reports]
    rows += [("— cold: Pending (inspect, engine, image, data, create)", f"{median(x['Pending'] for x in d):.2f} s"),
             ("— Running (container start to exit)", f"{median(x['Running'] for x in d):.2f} s"),
             ("— — Python and pandas start in the image", f"{median(p.get('starting', 0) for p in phases):.2f} s"),
             ("— — unpickling", f"{median(p.get('loading', 0) for p in phases):.2f} s"),
             ("— — reading live.parquet", f"{median(p.get('reading_data', 0) for p in phases):.2f} s"),
             ("— — the model's predict", f"{median(p.get('predicting', 0) for p in phases):.2f} s"),
             ("— Validating", f"{median(x['Validating'] for x in d):.2f} s"),
             ("— the CLI process outside the statuses (start, imports, exit)",
              f"{median(w - x['total'] for w, x in zip(runners, d)):.2f} s")]
    for pause, how in ((0.0, "back to back (a shell loop)"), (PAUSE, f"{PAUSE:g} s apart (a person re-running)")):
        loop = repeated_runs(model, runs + 1, pause)
        later = [wall for wall, _ in loop[1:]]
        warm = sum(prestarted for _, prestarted in loop[1:])
        rows += [(f"the same model run {len(loop)} times {how}, on a terminal, defaults: the first, the second",
                  f"{loop[0][0]:.2f} s, {loop[1][0]:.2f} s"),
                 (f"— **the second and later runs** ({warm} of {len(later)} pre-started)",
                  f"**{median(later):.2f} s**"),
                 ("— **second and later / cold**", f"**{median(later) / r:.2f}**")]
    return rows


def repeated_runs(model: Path, count: int, pause: float) -> list[tuple[float, bool]]:
    """The same model `count` times in a row, `pause` seconds apart, as a person at a terminal runs it,
    pre-starting at its defaults (a run leaves a sandbox once a model ran in that image shortly before):
    (wall seconds, pre-started) each. Starts and ends with no pre-started sandbox, and with no record of a
    recent run (the first run is a first, as in a new loop)."""
    from runner.sandbox import pool

    subprocess.run([*CLI, "clean"], env=COLD, capture_output=True)
    pool.recent_record().unlink(missing_ok=True)
    out = []
    for _ in range(count):
        wall, report, _ = run_report(model, env=DEFAULTS, terminal=True)
        out.append((wall, bool(report["container"].get("prestarted"))))
        time.sleep(pause)
    subprocess.run([*CLI, "clean"], env=COLD, capture_output=True)  # the last one left behind
    return out


def bench_rss(model: Path) -> list[tuple[str, str]]:
    """The runner's own peak RSS: the example model, then models returning 250,000 and 1,000,000 rows (each on
    live data of that many ids; a first run builds that data's benchmarks, the measured one finds them)."""
    import cloudpickle
    import numpy as np
    import pandas as pd

    from runner.data.synthetic import write_parquet

    rows = [("runner peak RSS, the example model", f"{run_report(model, peak=True)[2] / 2**20:.0f} MiB")]
    work = Path(tempfile.mkdtemp(prefix="numerai-sandbox-bench-"))
    try:
        def predict(live_features):
            return live_features.iloc[:, 1:].sum(axis=1).rank(pct=True, method="first").to_frame("prediction")

        (work / "ranks.pkl").write_bytes(cloudpickle.dumps(predict))
        for n in (250_000, 1_000_000):
            rng = np.random.default_rng(0)
            ids = pd.Index([f"n{v:015x}" for v in rng.choice(16**15, size=n, replace=False)], name="id")
            live = pd.DataFrame({"era": np.array(["X"] * n, dtype=object)}, index=ids)
            for i in range(5):
                live[f"feature_bench_column_{'abcde'[i]}"] = rng.integers(0, 5, n, dtype=np.int8)
            data = work / f"live_{n}.parquet"
            write_parquet(live, data)
            os.chmod(work, 0o755)
            for path in work.iterdir():
                os.chmod(path, 0o644)
            run_report(work / "ranks.pkl", "--data", str(data))  # builds the benchmark predictions for these ids
            _, report, rss = run_report(work / "ranks.pkl", "--data", str(data), peak=True)
            rows.append((f"runner peak RSS, {report['n_predictions']:,} predictions", f"{rss / 2**20:.0f} MiB"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def bench_validation() -> list[tuple[str, str]]:
    """The host's validation alone (reading the CSV, every rule, the summary), on CSV bytes as the harness
    writes them and live ids as the run reads them (an Arrow string array)."""
    import numpy as np
    import pandas as pd

    from runner.sandbox.protocol import Returned
    from runner.support import arrow
    from runner.verdict import validate

    rows = []
    for n in (6720, 250_000, 1_000_000):
        rng = np.random.default_rng(1)
        ids = [f"n{v:015x}" for v in rng.choice(16**15, size=n, replace=False)]
        frame = pd.DataFrame({"prediction": rng.random(n)}, index=pd.Index(ids, name="id"))
        payload = frame.to_csv().encode()
        facts = Returned.parse({"returned_type": "pandas.core.frame.DataFrame", "exact_dataframe": True,
                                "index_levels": 1, "rows": n, "first_column_dtype": "float64"})  # as the harness says
        live = arrow.strings(ids)
        times = []
        for _ in range(7 if n < 100_000 else 3):
            started = time.perf_counter()
            result = validate.validate(facts, payload, live)
            times.append(time.perf_counter() - started)
            assert result.passed
        value = median(times)
        rows.append((f"validation alone, {n:,} rows", f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"))
    return rows


def bench_check(model: Path, count: int = 10) -> list[tuple[str, str]]:
    work = Path(tempfile.mkdtemp(prefix="numerai-sandbox-bench-"))
    try:
        for i in range(count):
            shutil.copyfile(model, work / f"model_{i:02d}.pkl")
        os.chmod(work, 0o755)
        singles = [run_report(p)[0] for p in sorted(work.glob("*.pkl"))]
        wall, code, out, _ = timed([*CLI, "check", str(work), "--quiet"], env=WARM)
        if code != 0:
            raise SystemExit(f"check failed (exit {code}): {out[-500:]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = sum(singles)
    return [(f"{count} single cold runs, one after another", f"{total:.1f} s"),
            (f"`check` of the same {count} pickles", f"{wall:.1f} s"),
            ("**check / sum of single runs**", f"**{wall / total:.2f}**")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--only", default="floor,rss,validation,check")
    parser.add_argument("--update-readme", action="store_true")
    args = parser.parse_args()
    from runner.support.memory import return_memory_promptly

    return_memory_promptly()  # validation is measured under the CLI's allocators
    model = args.model or ROOT / "examples" / "build" / f"py{args.python}" / "lgbm_1arg.pkl"
    if not model.exists():
        raise SystemExit(f"{model} is missing: `make examples` builds it")
    wanted = args.only.split(",")
    rows: list[tuple[str, str]] = []
    for name, function in (("floor", lambda: bench_floor(model, args.python, args.runs)),
                           ("rss", lambda: bench_rss(model)), ("validation", bench_validation),
                           ("check", lambda: bench_check(model))):
        if name in wanted:
            print(f"measuring {name}...", file=sys.stderr)
            rows += function()
    table = ["| | median |", "|---|---|"] + [f"| {label} | {value} |" for label, value in rows]
    command = f"python scripts/bench.py --runs {args.runs}" + (f" --only {args.only}" if args.only != parser.get_default("only") else "")
    note = (f"Measured with `{command}` (`make bench`) on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}, "
            f"the example model ({model.name}, Python {args.python}, 6,720 x 2,748 synthetic rows):")
    print(note + "\n\n" + "\n".join(table))
    if args.update_readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        block = f"<!-- bench:start -->\n{note}\n\n" + "\n".join(table) + "\n<!-- bench:end -->"
        new = re.sub(r"<!-- bench:start -->.*?<!-- bench:end -->", block, text, flags=re.S)
        readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
