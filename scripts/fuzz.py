"""The nightly-size fuzzing campaign (`make fuzz`): 200,000 inputs or more through every target, in parallel.

    python scripts/fuzz.py [--inputs 200000] [--workers 2] [--seed 1] [--targets inspect,output,run,predictions,data]
                           [--out fuzz-figures.json] [--findings fuzz-findings/]

The same mutators and targets as the seeded sample of `make test` (tests/fuzz_campaign.py), with hypothesis
seeds of this campaign's own: each target's share of the inputs goes in chunks to worker processes, each
chunk a hypothesis run of its own seed. Prints, per target, the inputs tried, the exit codes, the commonest
reasons, the slowest input, the largest memory a worker process reached, and every finding (an input without
an ordinary verdict: shrunk, saved under --findings); exits 1 when there is one. The `run` target replays
container outputs into whole runs and needs the engine and the Python 3.11 standard image (`make images`).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

SHARES = {"inspect": 0.5, "output": 0.15, "run": 0.1, "predictions": 0.1, "data": 0.15}
MIB = 1024**2


def _chunk(job: tuple[str, int, int, str]) -> dict:
    """One chunk of one target in a worker: a hypothesis run of `examples` inputs from `seed`."""
    import fuzz_campaign

    name, examples, seed, findings = job
    context = _context()
    return fuzz_campaign.campaign(name, examples, context, seed=seed, findings=Path(findings)).to_dict()


_CONTEXT = None
SCRATCH_ENV = "NUMERAI_SANDBOX_FUZZ_SCRATCH"  # the campaign's directory, for its workers


def _context():
    """One per worker process: its scratch directory, its seeds, its engine connection."""
    global _CONTEXT
    if _CONTEXT is None:
        import fuzz_campaign

        # Inside the campaign's scratch directory, which the main process removes when it ends.
        scratch = os.environ.get(SCRATCH_ENV)
        _CONTEXT = fuzz_campaign.Context(Path(tempfile.mkdtemp(prefix="worker-", dir=scratch)))
    return _CONTEXT


def jobs(total: int, targets: list[str], chunk: int, seed: int, findings: Path) -> list[tuple[str, int, int, str]]:
    shares = {name: SHARES[name] for name in targets}
    scale = sum(shares.values())
    out = []
    for index, name in enumerate(targets):
        left = max(1, round(total * shares[name] / scale))
        part = 0
        while left > 0:
            size = min(chunk, left)
            out.append((name, size, seed * 1_000_000 + index * 10_000 + part, str(findings)))
            left -= size
            part += 1
    return sorted(out, key=lambda job: job[0] != "inspect")  # the long target first, the short ones fill in


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--targets", default=",".join(SHARES))
    parser.add_argument("--chunk", type=int, default=4000, help="inputs per hypothesis run")
    parser.add_argument("--out", type=Path, default=Path("fuzz-figures.json"))
    parser.add_argument("--findings", type=Path, default=Path("fuzz-findings"))
    args = parser.parse_args()
    targets = [t for t in args.targets.split(",") if t]
    unknown = set(targets) - set(SHARES)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {', '.join(SHARES)}")
    scratch = Path(tempfile.mkdtemp(prefix="numerai-sandbox-fuzz-"))
    try:
        return campaign(args, targets, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # every worker's directory and the history are inside


def campaign(args: argparse.Namespace, targets: list[str], scratch: Path) -> int:
    """The campaign proper; its workers (spawned, so they inherit the environment) work inside `scratch`."""
    os.environ[SCRATCH_ENV] = str(scratch)
    # The replayed runs record nothing in the user's history and leave no pre-started sandbox.
    os.environ.setdefault("NUMERAI_SANDBOX_HISTORY_DIR", str(scratch / "history"))
    os.environ["NUMERAI_SANDBOX_WARM"] = "0"
    import fuzz_campaign

    started = time.monotonic()
    tallies = {name: fuzz_campaign.Tally(name) for name in targets}
    planned = jobs(args.inputs, targets, args.chunk, args.seed, args.findings)
    print(f"fuzzing: {args.inputs:,} inputs over {', '.join(targets)} in {len(planned)} chunks, "
          f"{args.workers} worker(s), seed {args.seed}", flush=True)
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for done, result in enumerate(pool.imap_unordered(_chunk, planned), 1):
            tally = fuzz_campaign.Tally.from_dict(result)
            tallies[tally.target].merge(tally)
            tried = sum(t.inputs for t in tallies.values())
            print(f"  [{done}/{len(planned)}] {tally.target}: {tally.inputs:,} inputs in {tally.seconds:.0f}s"
                  f"{', ' + str(len(tally.findings)) + ' finding(s)' if tally.findings else ''} "
                  f"({tried:,} in all, {time.monotonic() - started:.0f}s)", flush=True)
    figures = {"inputs": sum(t.inputs for t in tallies.values()), "seed": args.seed, "workers": args.workers,
               "seconds": round(time.monotonic() - started), "targets": {n: t.to_dict() for n, t in tallies.items()}}
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    print_figures(figures)
    return 1 if any(t.findings for t in tallies.values()) else 0


def print_figures(figures: dict) -> None:
    print(f"\n{figures['inputs']:,} inputs in {figures['seconds']:,} s ({figures['workers']} workers):")
    print(f"{'target':<12} {'inputs':>9}  {'exit codes':<34} {'slowest':>8} {'peak RSS':>9} findings")
    for name, tally in figures["targets"].items():
        exits = ", ".join(f"{code}: {count:,}" for code, count in tally["exits"].items())
        print(f"{name:<12} {tally['inputs']:>9,}  {exits:<34} {tally['slowest_seconds']:>7.2f}s "
              f"{tally['peak_rss_bytes'] / MIB:>7.0f} MiB {len(tally['findings'])}")
    for name, tally in figures["targets"].items():
        common = ", ".join(f"{reason} ({count:,})" for reason, count in list(tally["reasons"].items())[:6])
        print(f"  {name}: {common}")
        if name == "inspect":
            print("    by protocol: " + ", ".join(f"{k}: {v:,}" for k, v in tally["labels"].items()))
        for finding in tally["findings"]:
            print(f"    FINDING {finding['what']}: {finding['input']} — {finding['detail'].strip().splitlines()[-1][:160]}")


if __name__ == "__main__":
    sys.exit(main())
