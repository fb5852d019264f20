"""The report, assembled once at the end of a run from the values its steps returned.

`Known` is what the run learned, step by step, each value as its step returned it (isolate-style: facts
recorded as they become known); `assemble` turns it, the verdict and the lifecycle's timeline into the
Report — the only place a Report of a run is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..sandbox.backend import ContainerSpec, Outcome
from ..verdict.lifecycle import Lifecycle, Status
from ..verdict.reasons import Verdict
from ..verdict.report import Report, unchecked_names_note
from .choose import Chosen
from .contain import Contained
from .data import Staged
from .image import Ready
from .judge import Judged
from .request import RunRequest
from .spec import container_facts
from .watch import Watch


@dataclass
class Known:
    """What one run (or shell) learned, in the order its steps returned it."""

    request: RunRequest
    notes: list[str] = field(default_factory=list)  # before any step: the machine (emulation)
    chosen: Chosen | None = None
    room: list[str] = field(default_factory=list)  # this machine's memory for the limit
    ready: Ready | None = None
    staged: Staged | None = None
    spec: ContainerSpec | None = None
    watch: Watch | None = None
    contained: Contained | None = None
    judged: Judged | None = None
    confirmed: tuple[dict[str, Any], str] | None = None  # a cold run's confirmation: container facts, note
    rejected: tuple[str | None, list[str]] | None = None  # --output-rejected: where, notes
    session: Outcome | None = None  # a shell's
    traceback: str | None = None  # ours: an internal error
    leaving: Any = None  # leaving a pre-started sandbox for the next run (a handle: join, note)
    left: str | None = None  # the one it left


def assemble(known: Known, verdict: Verdict, life: Lifecycle) -> Report:
    """The run's report, from what it knew and how it ended (the final status already entered)."""
    request, chosen, ready, contained, judged = known.request, known.chosen, known.ready, known.contained, known.judged
    status = life.status
    report = Report(status, verdict.reason, verdict.message, action=verdict.action, subcode=verdict.subcode,
                    numerai_log=verdict.numerai_log if status is Status.FAILED else None, evidence=verdict.evidence,
                    limits=request.limits.to_dict())
    report.timeline = [{"status": e.status.value, "at": e.at, "elapsed": e.elapsed} for e in life.timeline]
    if chosen is not None:
        report.model, report.pickle = chosen.model, chosen.pickle
        report.python = chosen.python if chosen.refused is not None and request.python != "auto" else None
    if ready is not None:
        image = ready.image
        report.image, report.python, report.python_full = ready.facts(), image.python, image.python_full
        report.library_versions = image.library_versions()
    if known.staged is not None:
        report.data = known.staged.data.to_report(None)
        if judged is not None and judged.rows is not None:
            report.data["rows"] = judged.rows
    if known.spec is not None:
        report.container = container_facts(known.spec, known.watch.sandbox_id if known.watch else None)
    if contained is not None:
        frames, outcome = contained.frames, contained.outcome
        report.durations.update(contained.durations())
        report.peak_memory_bytes, report.memory_samples = contained.peak_memory_bytes, outcome.memory_samples
        report.phase_times, report.container, report.phase = contained.phase_times, contained.container(), frames.phase
        if outcome.confinement:
            weaker(report, outcome.confinement)
        if frames.model is not None:
            model = frames.model
            report.model.update(kind=model.kind, type=model.type, parameters=model.parameter_names)
        if frames.error is not None and frames.error.has_exception:
            report.traceback = frames.error.exception.text
    if known.session is not None:
        session = known.session
        report.container.update(exit_code=session.exit_code, oom_killed=session.oom_killed, timed_out=session.timed_out)
        report.peak_memory_bytes = session.peak_memory_bytes
    logs = contained.watch.logs if contained is not None else known.watch.logs if known.watch is not None else None
    if logs is not None and (contained is not None or logs.total):
        report.logs_tail, report.logs_truncated = logs.last_lines(), logs.truncated if contained else False
    report.phase = verdict.phase or report.phase
    report.traceback = known.traceback or report.traceback
    if judged is not None:
        report.checks, report.predictions_summary = judged.checks, judged.summary
        report.n_predictions, report.predictions_path = judged.n_predictions, judged.predictions_path
    if known.confirmed is not None:
        report.container.update(known.confirmed[0])
    report.notes = notes(known, report)
    if known.rejected is not None:
        report.rejected_predictions_path = known.rejected[0]
    report.durations.update(life.durations())
    return report


def weaker(report: Report, confinement: dict) -> None:
    """A sandbox weaker than a container (the process sandbox) says in `limits` what it enforced and what not,
    and in `container` how it was confined; the verdict line names it (limits' `sandbox`)."""
    report.limits.update(backend=confinement["backend"], isolation=confinement["backend"], sandbox=confinement["words"],
                         network="none" if confinement["network_isolated"] else "not isolated",
                         memory="watched, not enforced by a cgroup", enforced=confinement["enforced"],
                         not_enforced=confinement["not_enforced"])
    report.container.update(backend=confinement["backend"], network=confinement["network"],
                            network_detail=confinement["network_detail"], rlimits=confinement["rlimits"],
                            user=confinement["user"])


def notes(known: Known, report: Report) -> list[str]:
    """The report's notes, in the order the run came upon them."""
    out = list(known.notes)
    out += known.chosen.notes if known.chosen is not None else []
    out += known.room
    out += known.ready.notes if known.ready is not None else []
    out += known.judged.notes if known.judged is not None else []
    out += [known.confirmed[1]] if known.confirmed is not None else []
    relaxed = known.request.limits.relaxed()
    if relaxed:
        out.append(f"limits above Numerai's ({', '.join(relaxed)}): a verdict under them is not Numerai's (1 CPU, "
                   "4 GB, 10 minutes)")
    if report.status is Status.SUCCESS and unchecked_names_note(report.data):
        out.append(unchecked_names_note(report.data).lstrip(" ·"))
    out += known.rejected[1] if known.rejected is not None else []
    out += [known.left] if known.left else []
    return out
