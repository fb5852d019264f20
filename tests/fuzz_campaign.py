"""A fuzzing campaign: hypothesis drives the mutators of fuzz_inputs into the targets of fuzz_targets, and
every input's verdict is tallied.

The same code runs the small seeded sample in `make test` (tests/test_fuzz.py: derandomized, a few hundred
inputs per target) and the nightly-size campaign (scripts/fuzz.py: 200,000 inputs and more, two worker
processes, hypothesis seeds of its own). An input without an ordinary verdict (fuzz_targets.NotOrdinary) is
shrunk by hypothesis, saved under the findings directory, and counted; the campaign goes on.
"""

from __future__ import annotations

import contextlib
import json
import random
import resource
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

import fuzz_inputs as inputs
import fuzz_targets as targets

FINDINGS = Path(__file__).resolve().parent / "fuzz_findings"


class Context:
    """What the targets share within one process: a scratch directory, the seeds, the live ids, and (for the
    whole-run target) the engine."""

    def __init__(self, workdir: Path | None = None, client=None):
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="numerai-sandbox-fuzz-"))
        self.client = client
        self.warm: set[str] = set()  # targets whose modules are imported: their first input is not timed with that

    @cached_property
    def pickles(self) -> dict[str, tuple[int, bytes]]:
        return inputs.pickle_seeds()

    @cached_property
    def ids(self) -> list[str]:
        return targets.live_ids()

    @cached_property
    def parquet(self) -> bytes:
        return inputs.live_parquet_seed()

    @cached_property
    def host(self) -> targets.ReplayHost:
        if self.client is None:
            from runner.sandbox import engine

            self.client = engine.connect()
        return targets.ReplayHost(self.client, self.workdir)


@dataclass(frozen=True)
class Target:
    """One fuzzing target: how an input is made, judged, labelled (for the figures) and saved (a finding)."""

    make: Callable[[Any, Context], Any]
    judge: Callable[[Any, Context], targets.Verdict]
    label: Callable[[Any], str]
    save: Callable[[Any], tuple[bytes, dict]]
    engine: bool = False  # needs the Docker engine (an image is found as a run finds it)


def _output_facts(out: inputs.ContainerOutput) -> dict:
    return {"cuts": out.cuts, "stderr": out.stderr.decode("latin-1"), "exit_code": out.exit_code,
            "oom_killed": out.oom_killed, "timed_out": out.timed_out, "peak_memory_bytes": out.peak_memory_bytes,
            "steps": out.steps}


TARGETS: dict[str, Target] = {
    "inspect": Target(lambda rng, c: inputs.mutate_pickle(rng, c.pickles),
                      lambda item, c: targets.inspect_bytes(item.data, c.workdir),
                      lambda item: f"protocol {item.protocol}" if item.protocol >= 0 else "random bytes",
                      lambda item: (item.data, {"seed": item.seed, "steps": item.steps})),
    "output": Target(lambda rng, c: inputs.mutate_output(rng, c.ids),
                     lambda item, c: targets.read_output(item),
                     lambda item: item.steps[0],
                     lambda item: (item.stdout, _output_facts(item))),
    "run": Target(lambda rng, c: inputs.mutate_output(rng, c.ids),
                  lambda item, c: targets.judge_output(item, c.host),
                  lambda item: item.steps[0],
                  lambda item: (item.stdout, _output_facts(item)), engine=True),
    "predictions": Target(lambda rng, c: inputs.mutate_predictions(rng, c.ids),
                          lambda item, c: targets.read_predictions(item, c.workdir),
                          lambda item: "csv" if item[:2] != b"PA" else "parquet",
                          lambda item: (item, {})),
    "data": Target(lambda rng, c: inputs.mutate_parquet(rng, c.parquet),
                   lambda item, c: targets.read_live_data(item, c.workdir),
                   lambda item: "parquet",
                   lambda item: (item, {})),
}


@dataclass
class Tally:
    """The figures of one target: inputs tried, verdicts, the slowest input, the findings."""

    target: str
    inputs: int = 0
    exits: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    slowest: float = 0.0
    findings: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    peak_rss_bytes: int = 0
    slow_once: int = 0  # over the time budget once, within it when judged again at once (a busy machine)

    def add(self, verdict: targets.Verdict, label: str) -> None:
        self.exits[verdict.exit_code] += 1
        self.reasons[_reason_key(verdict.reason)] += 1
        self.labels[label] += 1
        self.slowest = max(self.slowest, verdict.seconds)

    def merge(self, other: "Tally") -> None:
        self.inputs += other.inputs
        self.exits.update(other.exits)
        self.reasons.update(other.reasons)
        self.labels.update(other.labels)
        self.slowest = max(self.slowest, other.slowest)
        self.slow_once += other.slow_once
        self.findings += other.findings
        self.seconds = max(self.seconds, other.seconds)
        self.peak_rss_bytes = max(self.peak_rss_bytes, other.peak_rss_bytes)

    def to_dict(self) -> dict:
        return {"target": self.target, "inputs": self.inputs, "exits": {str(k): v for k, v in sorted(self.exits.items())},
                "reasons": dict(self.reasons.most_common(25)), "labels": dict(sorted(self.labels.items())),
                "slowest_seconds": round(self.slowest, 3), "findings": self.findings,
                "seconds": round(self.seconds, 1), "peak_rss_bytes": self.peak_rss_bytes, "slow_once": self.slow_once}

    @classmethod
    def from_dict(cls, data: dict) -> "Tally":
        return cls(data["target"], data["inputs"], Counter({int(k): v for k, v in data["exits"].items()}),
                   Counter(data["reasons"]), Counter(data["labels"]), data["slowest_seconds"], data["findings"],
                   data["seconds"], data["peak_rss_bytes"], data.get("slow_once", 0))


def _reason_key(reason: str) -> str:
    """A reason code as is; a sentence (inspect's problems, --data's errors) by its opening words, numbers out."""
    if reason.replace("_", "").isalpha() or not reason:
        return reason or "(success)"
    words = [w for w in reason.split() if not any(ch.isdigit() for ch in w)][:6]
    return " ".join(words)


def campaign(name: str, examples: int, context: Context, seed: int | None = None,
             findings: Path | None = None) -> Tally:
    """`examples` inputs of one target, made by hypothesis (derandomized when `seed` is None: the same inputs
    every time, as `make test` wants); a finding is shrunk, saved under `findings` and tallied."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    target = TARGETS[name]
    tally = Tally(name)
    failed: dict[str, Any] = {}
    if name not in context.warm:  # imports (pyarrow, the Docker SDK) are the process's cost, not an input's
        with contextlib.suppress(targets.NotOrdinary):
            target.judge(target.make(random.Random(0), context), context)
        context.warm.add(name)
    started = time.monotonic()

    @settings(max_examples=examples, database=None, deadline=None, derandomize=seed is None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink],
              report_multiple_bugs=False, print_blob=False)
    @given(st.randoms(use_true_random=True))  # hypothesis' own random leans on 0.0: every roll would pick the first case
    def one(rng):
        item = target.make(rng, context)
        tally.inputs += 1
        try:
            try:
                verdict = target.judge(item, context)
            except targets.NotOrdinary as exc:
                if exc.what != "slow":
                    raise
                verdict = target.judge(item, context)  # again at once: the input's cost, or a busy machine's pause?
                tally.slow_once += 1
        except targets.NotOrdinary as exc:
            failed.update(item=item, error=exc)
            raise
        tally.add(verdict, target.label(item))

    if seed is not None:
        one = hypothesis_seed(seed)(one)
    try:
        one()
    except Exception as exc:  # noqa: BLE001 - NotOrdinary, or hypothesis' Flaky when the replay passed
        if "item" not in failed:
            raise
        error = failed["error"]
        if not isinstance(exc, targets.NotOrdinary):  # slow once, not on its replay: still worth a look
            error = targets.NotOrdinary(f"{error.what} (once; not when replayed)", error.detail)
        tally.findings.append(save_finding(name, failed["item"], error, findings))
    tally.seconds = time.monotonic() - started
    tally.peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return tally


def save_finding(name: str, item: Any, error: targets.NotOrdinary, where: Path | None) -> dict:
    """The shrunk input that had no ordinary verdict, written where it can become a regression test."""
    data, facts = TARGETS[name].save(item)
    import hashlib

    digest = hashlib.sha256(data).hexdigest()[:12]
    found = {"target": name, "what": error.what, "detail": error.detail[-2000:], "input": f"{name}-{digest}.bin",
             "facts": facts}
    if where is not None:
        where.mkdir(parents=True, exist_ok=True)
        (where / found["input"]).write_bytes(data)
        (where / f"{name}-{digest}.json").write_text(json.dumps(found, indent=1) + "\n")
    return found


# ---------------------------------------------------------------- the committed findings

def committed_findings() -> list[dict]:
    """Every finding kept as a regression test: tests/fuzz_findings/index.json, each with its input file."""
    return json.loads((FINDINGS / "index.json").read_text())


def replay(finding: dict, context: Context) -> targets.Verdict:
    """A committed finding's input through its target again (it must now get an ordinary verdict)."""
    data = (FINDINGS / finding["input"]).read_bytes()
    name = finding["target"]
    if name == "inspect":
        return targets.inspect_bytes(data, context.workdir)
    if name == "data":
        return targets.read_live_data(data, context.workdir)
    if name == "predictions":
        return targets.read_predictions(data, context.workdir)
    facts = finding.get("facts") or {}
    output = inputs.ContainerOutput(data, facts.get("cuts", []), facts.get("stderr", "").encode("latin-1"),
                                    facts.get("exit_code", 0), facts.get("oom_killed", False),
                                    facts.get("timed_out", False), facts.get("peak_memory_bytes"))
    return targets.judge_output(output, context.host) if name == "run" else targets.read_output(output)
