"""The run report: one JSON object (stable field names; later versions only add) and its human summary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..console import human_bytes
from ..lifecycle import EXIT_CODES, Status

SCHEMA = 1


@dataclass
class Report:
    status: Status
    reason: str | None
    message: str
    action: str | None = None
    subcode: str | None = None
    phase: str | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    durations: dict[str, Any] = field(default_factory=dict)
    peak_memory_bytes: int | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    python: str | None = None
    python_full: str | None = None
    image: dict[str, Any] | None = None
    library_versions: dict[str, str] = field(default_factory=dict)
    n_predictions: int | None = None
    predictions_path: str | None = None
    logs_tail: str = ""
    logs_truncated: bool = False
    model: dict[str, Any] = field(default_factory=dict)
    pickle: dict[str, Any] = field(default_factory=dict)  # what static inspection read from it
    data: dict[str, Any] = field(default_factory=dict)
    container: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    traceback: str | None = None  # the model's full traceback, or ours for internal errors
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "tool": {"name": "numerai-sandbox", "version": __version__},
            "status": self.status.value,
            "reason": self.reason,
            "subcode": self.subcode,
            "message": self.message,
            "action": self.action,
            "exit_code": self.exit_code,
            "phase": self.phase,
            "checks": self.checks,
            "timeline": self.timeline,
            "durations": self.durations,
            "peak_memory_bytes": self.peak_memory_bytes,
            "limits": self.limits,
            "python": self.python,
            "python_full": self.python_full,
            "image": self.image,
            "library_versions": self.library_versions,
            "n_predictions": self.n_predictions,
            "predictions_path": self.predictions_path,
            "logs_tail": self.logs_tail,
            "logs_truncated": self.logs_truncated,
            "model": self.model,
            "pickle": self.pickle,
            "data": self.data,
            "container": self.container,
            "evidence": self.evidence,
            "traceback": self.traceback,
            "notes": self.notes,
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
                 f"predict {predict:.2f}s" if predict is not None else None,
                 f"peak memory {human_bytes(report.peak_memory_bytes)}" if report.peak_memory_bytes else None,
                 f"total {report.durations.get('total', 0):.1f}s"]
        lines.append("Success: " + " · ".join(e for e in extra if e))
        if report.predictions_path:
            lines.append(f"  predictions written to {report.predictions_path}")
    else:
        code = report.reason + (f"/{report.subcode}" if report.subcode else "")
        lines.append(f"{report.status.value} ({code}): {report.message}")
        if report.action:
            lines.append(f"  What to do: {report.action}")
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
            tail = crash or report.logs_tail.strip().splitlines()[-6:]
            if tail:
                lines.append("  Where it crashed (Python's fault handler):" if crash
                             else "  Last lines of the model's output:")
                lines += [f"    │ {line[:200]}" for line in tail]
    for note in report.notes:
        lines.append(f"  note: {note}")
    return lines


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
