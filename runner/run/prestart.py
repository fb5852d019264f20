"""Pre-started sandboxes as a run sees them: which modules one may import ahead, and the cold confirmation.

A pre-started sandbox (runner/sandbox/pool.py, behind the Docker backend) has read the live data before
the pickle arrived; on Numerai the data is read after the pickle loads. Running out of memory (the
kernel's kill, or a MemoryError) and a crash while loading may come from that difference alone, so
such an ending is not a verdict until a cold run in Numerai's order has ended the same way: the cold
run's facts are the verdict's, and the report keeps what the first one saw.
"""

from __future__ import annotations

from typing import Any

from ..inspection import Inspection
from ..sandbox.backend import Outcome
from ..sandbox.protocol import Frames, doing
from ..verdict.ended import signal_name
from ..verdict.reasons import Verdict
from ..verdict.tracebacks import is_memory_error, root_cause


def preload(inspection: Inspection | None) -> tuple[str, ...]:
    """The third-party modules the pickle needs (static inspection): what a pre-started sandbox imports
    ahead, exactly those unpickling would import anyway."""
    if inspection is None:
        return ()
    return tuple(sorted(u.package for u in inspection.modules
                        if u.kind == "third-party" and u.package.isidentifier()))


def doubt_of_prestarted(outcome: Outcome, frames: Frames) -> dict[str, Any] | None:
    """What a pre-started sandbox's run ended with that a cold run must confirm, or None."""
    if not outcome.prestarted:
        return None
    phase = frames.phase
    error = frames.error
    memory_error = error is not None and error.has_exception and is_memory_error(root_cause(error.exception))
    if outcome.oom_killed or memory_error:
        return {"reason": "out_of_memory", "phase": phase, "peak_memory_bytes": outcome.peak_memory_bytes,
                "what": f"out of memory while {doing(phase)}"}
    if outcome.signal is not None and not outcome.timed_out and phase == "loading":
        return {"reason": "crashed", "phase": phase, "signal": signal_name(outcome.signal),
                "what": f"a crash ({signal_name(outcome.signal)}) while loading the pickle"}
    return None


def confirming(doubt: dict[str, Any]) -> str:
    """What Pending/Running says while the cold run confirms."""
    return (f"{doubt['what']} in a pre-started sandbox, which read the live data before the pickle loaded: "
            "confirming with a cold run in Numerai's order...")


def confirmed(first: dict[str, Any], verdict: Verdict) -> tuple[dict[str, Any], str]:
    """(the report's container facts, its note) for a verdict a cold run confirmed (or ended otherwise)."""
    facts = {"confirmed_cold": True, "prestarted_first": {k: v for k, v in first.items() if k != "what"}}
    if verdict.reason == first["reason"] or (first["reason"] == "crashed" and "signal" in verdict.evidence):
        return facts, (f"{first['what']} first happened in a pre-started sandbox (its live data read before the "
                       "pickle loaded, unlike Numerai); a cold run in Numerai's order ended the same way, and is the "
                       "verdict")
    return facts, (f"{first['what']} happened in a pre-started sandbox (its live data read before the pickle "
                   "loaded, unlike Numerai) but not in a cold run in Numerai's order: the verdict is the cold run's")


def leave_for_next(backend, request, contained):
    """`run`'s next run of the same model, likely soon: the backend leaves a pre-started sandbox for it, in the
    background while this run is validated (a handle with `join` and `note`), sized from this run's memory."""
    from ..sandbox import idle

    if not request.leave_prestarted:
        return None
    estimate = idle.estimate(contained.outcome.memory_samples, contained.phase_times, contained.peak_memory_bytes)
    return backend.leave_for_next(contained.spec, estimate)
