"""Load that changes nothing (`make load`): 8 runs of different pickles and 2 checks at once, against the same
runs one at a time.

    python scripts/load.py [--python 3.11] [--out load-figures.json]

Each run and check is the real command line (`run --json`, `check --json`), each its own process, as eight
terminals and two CI jobs would start them on one machine. Alone first, one after another; then all ten at
once, while the engine is asked every 0.1 s which cores each running sandbox of theirs holds (the cpuset the
engine enforces, read back with `docker inspect`, not what we meant to give). Prints, and writes to --out:
the verdicts alone and together (they must be identical), the largest number of sandboxes running at once,
any core held by two running sandboxes at the same moment (there must be none), each model's peak memory
alone and together, the wall time of both phases, and what was left behind (containers of these processes,
temp dirs of ours): nothing. Exits 1 when any of these does not hold.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

RUN_MODELS = ("good_1arg", "good_2arg", "good_probability", "raises", "nan_output", "out_of_range",
              "returns_series", "missing_ids")
CHECKS = (("sklearn_1arg", "bad_nan"), ("lgbm_1arg", "bad_range"))  # example pickles, two per check


def pickles(python: str, out: Path) -> dict[str, Path]:
    """The test models (made inside the image, as the tests make them) and the example pickles."""
    from conftest import make_pickles
    from runner.images import store
    from runner.images.pins import pin_set
    from runner.sandbox import engine

    client = engine.connect()
    image = store.ensure(client, pin_set(python, "standard"), progress=lambda line: None)
    made = make_pickles(client, image, ROOT / "tests" / "models" / "make_models.py", out)
    made.update({p.stem: p for p in (ROOT / "examples" / "build" / f"py{python}").glob("*.pkl")})
    client.close()
    return made


def commands(found: dict[str, Path], python: str) -> dict[str, list[str]]:
    jobs = {f"run {name}": ["run", str(found[name]), "--python", python, "--json"] for name in RUN_MODELS}
    for pair in CHECKS:
        jobs[f"check {'+'.join(pair)}"] = ["check", *(str(found[n]) for n in pair), "--python", python, "--json"]
    return jobs


def verdicts(name: str, stdout: str) -> list:
    """(status, reason, subcode, peak memory) of the run, or of each of the check's runs."""
    try:
        found = json.loads(stdout)
    except ValueError:
        return [("unreadable output", stdout[-300:], None, None)]
    reports = (found.get("reports") or [found]) if isinstance(found, dict) else found
    return [(r.get("status"), r.get("reason"), r.get("subcode"), r.get("peak_memory_bytes")) for r in reports]


def start(argv: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "runner", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)


class CoreWatch(threading.Thread):
    """Every 0.1 s: the running sandboxes whose owner is one of `pids`, and the cores the engine gave each."""

    def __init__(self, pids: set[int]):
        super().__init__(daemon=True)
        self.pids, self.stop, self.samples, self.shared, self.most = pids, threading.Event(), 0, [], 0

    def run(self) -> None:
        from runner.sandbox import engine

        client = engine.connect()
        while not self.stop.is_set():
            held: dict[int, str] = {}
            running = 0
            for info in client.api.containers(filters={"label": "numerai-sandbox.owner", "status": "running"}):
                owner = (info.get("Labels") or {}).get("numerai-sandbox.owner", "").rsplit("/", 2)
                if len(owner) < 3 or not owner[1].isdigit() or int(owner[1]) not in self.pids:
                    continue
                try:
                    cpuset = client.api.inspect_container(info["Id"])["HostConfig"].get("CpusetCpus") or ""
                except Exception:  # noqa: BLE001 - it ended between the list and the inspect
                    continue
                running += 1
                for core in parse_cpuset(cpuset) if cpuset else [-1]:
                    if core in held:
                        self.shared.append({"core": core, "sandboxes": [held[core], info["Names"][0]]})
                    held[core] = info["Names"][0]
            self.samples += 1
            self.most = max(self.most, running)
            time.sleep(0.1)
        client.close()


def parse_cpuset(text: str) -> list[int]:
    """The engine's "0,2-3" as [0, 2, 3]."""
    cores = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        cores += list(range(int(low), int(high or low) + 1))
    return cores


def leftovers(pids: set[int]) -> dict[str, list[str]]:
    from runner.sandbox import engine

    client = engine.connect()
    containers = [c["Names"][0] for c in client.api.containers(all=True, filters={"label": "numerai-sandbox.owner"})
                  if (o := (c.get("Labels") or {}).get("numerai-sandbox.owner", "").rsplit("/", 2))[1:2]
                  and o[1].isdigit() and int(o[1]) in pids]
    client.close()
    temp = [p.name for p in Path(tempfile.gettempdir()).glob("numerai-sandbox-*")
            if any(str(pid) in p.name.split("-") for pid in pids)]
    return {"containers": containers, "temp_dirs": temp}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--out", type=Path, default=Path("load-figures.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="load-"))
    env = dict(os.environ, NUMERAI_SANDBOX_WARM="0", NUMERAI_SANDBOX_HISTORY_DIR=str(work / "history"))
    jobs = commands(pickles(args.python, work / "models"), args.python)
    pids: set[int] = set()

    alone, took = {}, time.monotonic()
    for name, argv in jobs.items():
        proc = start(argv, env)
        pids.add(proc.pid)
        alone[name] = verdicts(name, proc.communicate()[0])
    alone_seconds = time.monotonic() - took

    procs = {name: start(argv, env) for name, argv in jobs.items()}
    pids |= {p.pid for p in procs.values()}
    watch = CoreWatch({p.pid for p in procs.values()})
    watch.start()
    took = time.monotonic()
    together = {name: verdicts(name, proc.communicate()[0]) for name, proc in procs.items()}
    together_seconds = time.monotonic() - took
    watch.stop.set()
    watch.join()
    time.sleep(1)
    left = leftovers(pids)

    differ = {n: {"alone": alone[n], "together": together[n]} for n in jobs
              if [v[:3] for v in alone[n]] != [v[:3] for v in together[n]]}
    figures = {
        "runs": len(RUN_MODELS), "checks": len(CHECKS), "python": args.python,
        "alone_seconds": round(alone_seconds, 1), "together_seconds": round(together_seconds, 1),
        "verdicts": {n: [list(v[:3]) for v in together[n]] for n in jobs}, "verdicts_differ": differ,
        "peak_memory_mib": {n: {"alone": [v[3] and round(v[3] / 2**20) for v in alone[n]],
                                "together": [v[3] and round(v[3] / 2**20) for v in together[n]]} for n in jobs},
        "peak_memory_largest_change": max((abs(t[3] - a[3]) / a[3] for n in jobs for a, t in zip(alone[n], together[n])
                                           if a[3] and t[3]), default=None),
        "most_running_at_once": watch.most, "core_samples": watch.samples, "cores_shared": watch.shared[:20],
        "left_behind": left,
    }
    args.out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    ok = not differ and not watch.shared and not left["containers"] and not left["temp_dirs"]
    print(f"load: {'OK' if ok else 'FAILED'}: {len(jobs)} commands alone in {alone_seconds:.1f}s, together in "
          f"{together_seconds:.1f}s; verdicts {'identical' if not differ else 'DIFFER'}; at most {watch.most} "
          f"sandboxes running at once over {watch.samples} samples, {len(watch.shared)} shared cores; "
          f"left behind: {sum(map(len, left.values()))}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
