"""The run report: one JSON object (stable field names; later versions only add) and its human summary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .. import __version__
from .lifecycle import EXIT_CODES, Status
from ..sandbox.protocol import LOG_PREFIX
from ..support.units import human_bytes
from . import numerai_log

SCHEMA = 1


@dataclass
class Report:
    status: Status
    reason: str | None
    message: str
    action: str | None = None
    subcode: str | None = None
    numerai_log: str | None = None  # Failed: the line Numerai's log would show (runner/verdict/numerai_log.py)
    phase: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    durations: dict[str, Any] = field(default_factory=dict)
    peak_memory_bytes: int | None = None
    memory_samples: list[list[float]] = field(default_factory=list)  # [seconds since start, bytes in use]
    phase_times: list[dict[str, Any]] = field(default_factory=list)  # {phase, start, end}, seconds since start
    limits: dict[str, Any] = field(default_factory=dict)
    python: str | None = None
    python_full: str | None = None
    image: dict[str, Any] | None = None
    library_versions: dict[str, str] = field(default_factory=dict)
    n_predictions: int | None = None
    predictions_summary: dict[str, Any] | None = None  # count, NaN, range, ties, histogram (see validate)
    predictions_path: str | None = None
    rejected_predictions_path: str | None = None  # --output-rejected, after invalid_output
    logs_tail: str = ""
    logs_truncated: bool = False
    model: dict[str, Any] = field(default_factory=dict)
    pickle: dict[str, Any] = field(default_factory=dict)  # what static inspection read from it
    data: dict[str, Any] = field(default_factory=dict)
    container: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    traceback: str | None = None  # the model's full traceback, or ours for internal errors
    notes: list[str] = field(default_factory=list)
    history_id: str | None = None  # the run's id in the run history (`runs show ID`), once recorded
    upload: dict[str, Any] | None = None  # `upload`: what was sent to Numerai (or why nothing was), its upload id

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def numerai_log_shown(self) -> str | None:
        """The line Numerai's log would show, as printed (a progress line says why nothing followed it)."""
        return numerai_log.shown(self.reason, self.numerai_log)

    @property
    def ok(self) -> bool:
        """Numerai would accept the predictions."""
        return self.status is Status.SUCCESS

    def __repr__(self) -> str:
        """One line for a notebook: the verdict and the model (the dataclass default would print every sample)."""
        model = Path(self.model["path"]).name if self.model.get("path") else "?"
        where = f"{model}, Python {self.python or '?'}" + (f", run {self.history_id}" if self.history_id else "")
        verdict = (summary_lines(self)[0].replace(unchecked_names_note(self.data), "") if self.status.terminal
                   else self.status.value)  # the note stays in str() and in notes
        return f"<Report {verdict if len(verdict) <= 160 else verdict[:159] + '…'} ({where})>"

    def __str__(self) -> str:
        """What the command line prints when the run ends."""
        return "\n".join(summary_lines(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Report":
        """A report read back from its JSON (the run history, a saved --report); unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["status"] = Status(data["status"])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "tool": {"name": "numerai-sandbox", "version": __version__},
            "status": self.status.value,
            "reason": self.reason,
            "subcode": self.subcode,
            "message": self.message,
            "action": self.action,
            "numerai_log": self.numerai_log,
            "exit_code": self.exit_code,
            "phase": self.phase,
            "checks": self.checks,
            "timeline": self.timeline,
            "durations": self.durations,
            "peak_memory_bytes": self.peak_memory_bytes,
            "memory_samples": self.memory_samples,
            "phase_times": self.phase_times,
            "limits": self.limits,
            "python": self.python,
            "python_full": self.python_full,
            "image": self.image,
            "library_versions": self.library_versions,
            "n_predictions": self.n_predictions,
            "predictions_summary": self.predictions_summary,
            "predictions_path": self.predictions_path,
            "rejected_predictions_path": self.rejected_predictions_path,
            "logs_tail": self.logs_tail,
            "logs_truncated": self.logs_truncated,
            "model": self.model,
            "pickle": self.pickle,
            "data": self.data,
            "container": self.container,
            "evidence": self.evidence,
            "traceback": self.traceback,
            "notes": self.notes,
            "history_id": self.history_id,
            "upload": self.upload,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str)

    def write(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(self.to_json() + "\n")
        tmp.replace(path)


def summary_lines(report: Report, debug: bool = False) -> list[str]:
    """The closing lines a person reads: verdict, why, what to do, and the evidence worth seeing."""
    lines = []
    if report.status is Status.SUCCESS:
        predict = (report.durations.get("phases") or {}).get("predicting")
        extra = [f"{report.n_predictions:,} predictions" if report.n_predictions is not None else None,
                 f"predict {predict:.2f}s" if predict is not None else None, *headroom(report),
                 f"total {report.durations.get('total', 0):.1f}s"]
        lines.append("Success: " + " · ".join(e for e in extra if e) + unchecked_names_note(report.data)
                     + relaxed_note(report.limits))
        lines += [f"  warning: {w}" for w in headroom_warnings(report)]
        if report.predictions_path:
            lines.append(f"  predictions written to {report.predictions_path}")
    else:
        code = report.reason + (f"/{report.subcode}" if report.subcode else "")
        lines.append(f"{report.status.value} ({code}): {report.message}" + relaxed_note(report.limits))
        if report.action:
            lines.append(f"  What to do: {report.action}")
        if report.numerai_log:
            lines.append(f"  Numerai's log: {report.numerai_log_shown}")
        if report.rejected_predictions_path:
            lines.append(f"  the rejected predictions are in {report.rejected_predictions_path}")
        failed = [c for c in report.checks if c.get("passed") is False]
        for check in failed[:6]:
            examples = f" e.g. {', '.join(check['examples'][:3])}" if check.get("examples") else ""
            lines.append(f"  ✗ {check['rule']} ({check['source']}): {check.get('detail', '')}{examples}")
        frames = (report.evidence or {}).get("traceback") or []
        if frames and not debug:
            own = [f for f in frames if not f.get("library")]
            shown = own[:4] or frames[:1]
            lines.append("  Where (your code first, innermost first):")
            for frame in shown:
                lines.append(f"    {frame['file']}:{frame['line']} in {frame['function']}"
                             + (f": {frame['code']}" if frame.get("code") else ""))
            libraries = sorted({f["library"] for f in frames if f.get("library")})
            if libraries:
                lines.append(f"    ... then {len(frames) - len(own)} frame(s) inside {', '.join(libraries)}")
            lines.append("  (--debug shows the full traceback and the model's output)")
        if report.logs_tail and not debug and report.reason in ("crashed", "no_output", "model_exception",
                                                                "out_of_memory", "timeout",
                                                                "python_version_mismatch"):
            crash = crash_lines(report.logs_tail)
            tail = crash or model_lines(report.logs_tail)[-6:]
            if tail:
                lines.append("  Where it crashed (Python's fault handler):" if crash
                             else "  Last lines of the model's output:")
                lines += [f"    │ {line[:200]}" for line in tail]
    shown = unchecked_names_note(report.data).lstrip(" ·") if report.status is Status.SUCCESS else None
    for note in report.notes:
        if note != shown and not note.startswith("limits above Numerai's"):  # those are on the verdict line
            lines.append(f"  note: {note}")
    return lines


WARN_FRACTION = 0.8


def _container_seconds(report: Report) -> float | None:
    seconds = report.durations.get("container_seconds")
    return float(seconds) if isinstance(seconds, (int, float)) else None


def headroom(report: Report) -> list[str]:
    """How close the model came to Numerai's limits: peak memory of the limit, time of the timeout."""
    out = []
    limit, peak = report.limits.get("memory_bytes"), report.peak_memory_bytes
    if peak:
        out.append(f"peak memory {human_bytes(peak)} of {human_bytes(limit)} ({peak / limit:.0%})" if limit
                   else f"peak memory {human_bytes(peak)}")
    seconds, timeout = _container_seconds(report), report.limits.get("timeout_seconds")
    if seconds is not None and timeout:
        out.append(f"{seconds:.1f}s of the {timeout:g}s limit")
    return out


def headroom_warnings(report: Report) -> list[str]:
    """Above 80% of a limit: it passes here, but a bigger live era or a slower machine may not."""
    out = []
    limit, peak = report.limits.get("memory_bytes"), report.peak_memory_bytes
    if peak and limit and peak > WARN_FRACTION * limit:
        out.append(f"peak memory reached {peak / limit:.0%} of the {human_bytes(limit)} limit; a larger live era "
                   "may not fit")
    seconds, timeout = _container_seconds(report), report.limits.get("timeout_seconds")
    if seconds is not None and timeout and seconds > WARN_FRACTION * timeout:
        out.append(f"the run took {seconds / timeout:.0%} of the {timeout:g}s limit; Numerai's machines may be slower")
    return out


def relaxed_note(limits: dict) -> str:
    """Limits above Numerai's, or a sandbox weaker than its container, never give a silent verdict: the line
    says which."""
    relaxed = limits.get("relaxed") or []
    weaker = f" · in a {limits['sandbox']}" if limits.get("sandbox") else ""
    if not relaxed:
        return weaker
    return f" · with limits above Numerai's ({', '.join(relaxed)}): not Numerai's verdict" + weaker


def unchecked_names_note(data: dict) -> str:
    """What a Success on synthetic data cannot prove: that the column names the model uses are Numerai's."""
    if data.get("source") != "synthetic" or data.get("names_checked") or not data.get("features_named_by_pickle"):
        return ""
    return (f" · column names not checked against Numerai's data ({data['features_named_by_pickle']:,} from the "
            "pickle) — `numerai-sandbox data fetch` once online checks them")


def model_lines(log: str) -> list[str]:
    """The model's own lines of its output: the harness's log lines left out."""
    return [line for line in log.strip().splitlines() if not line.startswith(LOG_PREFIX)]


def crash_lines(log: str, limit: int = 8) -> list[str]:
    """The fault handler's report of a native crash: the fatal error and the innermost frames."""
    lines = log.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Fatal Python error")), None)
    if start is None:
        return []
    picked = [lines[start]]
    for line in lines[start + 1:]:
        if line.startswith(("Current thread", "Thread 0x")) or line.strip().startswith("File "):
            picked.append(line)
        elif line.startswith("Extension modules") or (picked and not line.strip() and len(picked) > 2):
            break
    return picked[:limit]
