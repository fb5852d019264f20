"""The engine's facts about how the model's process ended: the clock, the memory limit, a signal, an exit.

These facts cannot be forged by the model (the host's own kill at the time limit, the kernel's OOM
flag, the exit status); the harness's frames only say where the process was when it happened.
"""

from __future__ import annotations

import signal as signals

from ..sandbox.backend import Outcome
from ..sandbox.protocol import EXIT_CHANNEL_LOST, WORK_PHASES, Frames, doing
from ..support.units import human_bytes
from .context import Context
from .mismatch import pick_image, versions_text
from .reasons import Verdict

NATIVE_SIGNALS = {signals.SIGSEGV: "a segmentation fault", signals.SIGILL: "an illegal instruction",
                  signals.SIGBUS: "a bus error", signals.SIGABRT: "an abort", signals.SIGFPE: "a floating-point trap"}
HARNESS_NOT_STARTED = (125, 126, 127)  # the engine's codes for a command that could not run


def signal_name(number: int) -> str:
    """SIGSEGV for 11; "signal 99" for a number that names no signal."""
    try:
        return signals.Signals(number).name
    except ValueError:
        return f"signal {number}"


def duration_words(seconds: float) -> str:
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def timed_out(frames: Frames, ctx: Context) -> Verdict:
    """The host killed the container at the time limit."""
    phase = frames.phase
    limit = duration_words(ctx.limits.timeout_seconds)
    evidence = {"limit_seconds": ctx.limits.timeout_seconds, "phase": phase}
    if frames.finished:
        return Verdict("timeout", f"The model returned, but its process did not exit (a thread or "
                       f"subprocess it started kept it alive) and was killed at the {limit} limit.", phase=phase,
                       evidence=evidence | {"returned": True})
    return Verdict("timeout", f"The model ran past the {limit} limit while {doing(phase)} and was killed.",
                   phase=phase, evidence=evidence)


def out_of_memory(outcome: Outcome, frames: Frames, ctx: Context) -> Verdict:
    """The kernel killed the process at the memory limit."""
    phase, peak, limit = frames.phase, outcome.peak_memory_bytes, ctx.limits.memory_bytes
    sampled = (f" Memory is sampled while the model runs: the highest sample was {human_bytes(peak)}, so the "
               "allocation that crossed the limit came after the last sample." if peak and peak < limit else "")
    return Verdict("out_of_memory", f"The model reached the {human_bytes(limit)} memory limit while "
                   f"{doing(phase)} and the kernel killed it.{sampled}", phase=phase,
                   evidence={"limit_bytes": limit, "peak_bytes": peak, "peak_is_sampled": True, "phase": phase})


def over_output_cap(frames: Frames, ctx: Context) -> Verdict:
    """The predictions sent (or about to be) were over the output cap: the host stopped reading."""
    size = frames.oversized
    return Verdict("invalid_output", f"The predictions are {human_bytes(size)}, over the "
                   f"{human_bytes(ctx.limits.max_output_bytes)} output cap.", subcode="output_too_large",
                   phase=frames.phase, evidence={"bytes": size})


def ended_without_result(outcome: Outcome, frames: Frames, ctx: Context) -> Verdict:
    """The process ended without an error or a result: the harness could not start, a signal killed it, or
    it exited on its own (the report channel taken from it, or not)."""
    phase, sig = frames.phase, outcome.signal
    evidence = {"exit_code": outcome.exit_code, "phase": phase}
    if not frames.harness_started and outcome.exit_code in HARNESS_NOT_STARTED:
        return Verdict("internal_error", f"The image's harness could not start (exit {outcome.exit_code}).",
                       evidence=evidence)
    if sig is not None:
        return killed_by_signal(sig, phase, ctx, evidence)
    if outcome.exit_code == EXIT_CHANNEL_LOST and not frames.broken:
        return Verdict("no_output", f"The model's process ended while {doing(phase)} without producing "
                       "predictions: the model closed or replaced the sandbox's report channel (a file descriptor "
                       "the harness holds), so nothing it did could be reported.", phase=phase,
                       evidence=evidence | {"channel": "closed by the model"})
    why = ("its report channel was corrupted (the model wrote to a file descriptor it does not own)"
           if frames.broken else f"it exited with code {outcome.exit_code} before returning (os._exit, "
           "sys.exit from a thread, or exec of another program)")
    return Verdict("no_output", f"The model's process ended while {doing(phase)} without producing predictions: "
                   f"{why}.", phase=phase,
                   evidence=evidence | ({"channel": frames.broken} if frames.broken else {}))


def killed_by_signal(sig: int, phase: str | None, ctx: Context, evidence: dict) -> Verdict:
    """crashed, with what the signal means; a native crash while working may be another Python's bytecode."""
    name = signal_name(sig)
    where = doing(phase)
    evidence["signal"] = name
    what = f" ({NATIVE_SIGNALS[sig]})" if sig in NATIVE_SIGNALS else ""
    hint = ""
    if sig in NATIVE_SIGNALS and phase in WORK_PHASES:
        made_by, differs = ctx.made_by()
        if differs:
            return Verdict("python_version_mismatch",
                           f"The model crashed with {name}{what} while {where}: the pickle was made by Python "
                           f"{made_by}, and this image runs Python {ctx.python}, which cannot run that Python's "
                           f"bytecode. {pick_image(made_by)}", phase=phase,
                           evidence=evidence | {"image_python": ctx.python, "pickle_python": made_by})
        libraries = ctx.library_differences()
        if libraries:
            evidence["library_versions"] = {n: {"pickle": p, "image": i} for n, (p, i) in libraries.items()}
            hint = (f" The pickle was made with {versions_text(libraries)}: a native library of another "
                    "version is the likely cause; train and pickle with the image's versions.")
        else:
            hint = (f" A native crash while {where} usually means native code (a compiled library, or ctypes) "
                    f"was given something it cannot handle, or the pickle was made with another Python or "
                    f"native library version than the image's (Python {ctx.python}).")
    elif sig == signals.SIGKILL:
        hint = " Something in the container killed it (not the memory limit, not the time limit)."
    return Verdict("crashed", f"The model's process was killed by {name}{what} while {where}.{hint}",
                   phase=phase, evidence=evidence)
