"""The run history: every finished run kept under the cache, to list, show again and prune.

One directory per run, `<history>/<id>/`, holding `report.json` (the report exactly as `--json`
prints it, log tail included) and `entry.json` (a small index entry: what `runs list` shows,
read without parsing any report). An id is the UTC time the run was recorded, to a sixteenth of
a second (the first hex digit after the seconds), and three random hex digits: `20261201-210412-3f9a`.
Ids sort by time, and any unique prefix names a run.

Concurrent runs (check's workers, two terminals) record safely: a record is written whole in a
hidden directory and renamed into place, so nobody sees half of one, and a removal renames the
record away before deleting it. Recording never changes a verdict: whatever goes wrong (a full
disk, an unwritable cache) becomes a note in the report and a warning.

Kept: at most KEEP_RUNS runs, none older than KEEP_DAYS days; applied after each recording,
from the directory names alone.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from .. import __version__
from ..support.paths import cache_dir
from ..verdict.report import Report

KEEP_RUNS = 500
KEEP_DAYS = 30
ENV_OFF = "NUMERAI_SANDBOX_NO_HISTORY"  # 1/true/yes: record nothing
ENV_DIR = "NUMERAI_SANDBOX_HISTORY_DIR"  # where the history lives (default: <cache>/runs)
ENTRY_SCHEMA = 1
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{4}")
STALE_SECONDS = 3600  # a hidden temporary directory older than this was left by a killed process


class NotFound(LookupError):
    """No recorded run answers to what the user typed (or more than one does)."""


def history_dir() -> Path:
    explicit = os.environ.get(ENV_DIR)
    return Path(explicit).expanduser() if explicit else cache_dir() / "runs"


def disabled() -> bool:
    """NUMERAI_SANDBOX_NO_HISTORY turns recording off for every run of this environment."""
    return os.environ.get(ENV_OFF, "").strip().lower() in ("1", "true", "yes", "on")


def id_time(run_id: str) -> datetime:
    """When a run was recorded, read from its id (YYYYmmdd-HHMMSS-…); ValueError when it is no date.
    Parsed by hand: strptime costs the run's path ~10 ms over a full history."""
    s = run_id
    if len(s) < 15 or s[8] != "-" or not (s[:8] + s[9:15]).isdigit():
        raise ValueError(f"not a run id: {run_id!r}")
    return datetime(int(s[0:4]), int(s[4:6]), int(s[6:8]), int(s[9:11]), int(s[11:13]), int(s[13:15]),
                    tzinfo=timezone.utc)


# ---------------------------------------------------------------- recording

def record(report: Report, *, html: Path | None = None, batch: str | None = None,
           warn: Callable[[str], None] | None = None, when: datetime | None = None) -> str | None:
    """Keep a finished run; its id (also set as `report.history_id`), or None when not recorded.

    `html` is the HTML page written for it, `batch` the id `check` gives all the runs of one call.
    Never raises: a failure is appended to the report's notes and passed to `warn`.
    """
    if disabled():
        return None
    when = (when or datetime.now(timezone.utc)).astimezone(timezone.utc)
    try:
        run_id = _write(report, html, batch, when)
    except Exception as exc:  # noqa: BLE001 - keeping the record must never change the verdict
        report.history_id = None
        note = (f"this run was not recorded in the run history ({history_dir()}): "
                f"{type(exc).__name__}: {exc}")
        report.notes.append(note)
        if warn is not None:
            warn(note)
        return None
    try:
        prune()
    except Exception:  # noqa: BLE001 - housekeeping; the next recording tries again
        pass
    return run_id


def _write(report: Report, html: Path | None, batch: str | None, when: datetime) -> str:
    root = history_dir()
    root.mkdir(parents=True, exist_ok=True)
    for _ in range(10):
        run_id = f"{when:%Y%m%d-%H%M%S}-{when.microsecond * 16 // 1_000_000:x}{secrets.token_hex(2)[:3]}"
        report.history_id = run_id
        tmp = root / f".tmp-{run_id}-{os.getpid()}-{secrets.token_hex(4)}"
        tmp.mkdir()
        try:
            (tmp / "report.json").write_text(report.to_json() + "\n")
            (tmp / "entry.json").write_text(json.dumps(entry_for(report, run_id, when, html, batch), indent=1) + "\n")
            tmp.rename(root / run_id)  # fails when another record took this id in the meantime
            return run_id
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (root / run_id).exists():
                raise
    raise OSError("ten record ids in a row were taken")


def entry_for(report: Report, run_id: str, when: datetime, html: Path | None, batch: str | None) -> dict[str, Any]:
    """The index entry: what `runs list` shows and filters on, without reading the report."""
    model = report.model or {}
    path = Path(model["path"]).resolve() if model.get("path") else None
    return {
        "schema": ENTRY_SCHEMA,
        "id": run_id,
        "time": when.isoformat(timespec="milliseconds"),
        "started": report.timeline[0]["at"] if report.timeline else None,
        "model": {"path": str(path) if path else None, "name": path.name if path else None,
                  "size_bytes": model.get("size_bytes"), "sha256": model.get("sha256")},
        "python": report.python,
        "status": report.status.value,
        "reason": report.reason,
        "subcode": report.subcode,
        "exit_code": report.exit_code,
        "message": report.message[:300],
        "seconds": report.durations.get("total"),
        "predict_seconds": (report.durations.get("phases") or {}).get("predicting"),
        "peak_memory_bytes": report.peak_memory_bytes,
        "memory_limit_bytes": report.limits.get("memory_bytes"),
        "data": {"source": report.data.get("source"), "description": report.data.get("description")},
        "batch": batch,
        "predictions_path": report.predictions_path,
        "html_path": str(html.resolve()) if html else None,
        "tool_version": __version__,
        "upload": {k: report.upload.get(k) for k in ("outcome", "model", "upload_id", "numerai_filename",
                                                      "docker_image", "data_version")} if report.upload else None,
    }


# ---------------------------------------------------------------- reading

def ids() -> list[str]:
    """Every recorded run's id, newest first."""
    try:
        names = [e.name for e in os.scandir(history_dir()) if RUN_ID.fullmatch(e.name)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((n for n in names if _dated(n)), reverse=True)


def _dated(name: str) -> bool:
    try:
        id_time(name)
    except ValueError:
        return False
    return True


def entry(run_id: str) -> dict[str, Any] | None:
    """A run's index entry (None once removed); one that cannot be read says so rather than hiding."""
    try:
        found = json.loads((history_dir() / run_id / "entry.json").read_text())
        if isinstance(found, dict):
            return found
        problem = "not a JSON object"
    except FileNotFoundError:
        if not (history_dir() / run_id).is_dir():
            return None
        problem = "entry.json is missing"
    except (OSError, ValueError) as exc:
        problem = f"{type(exc).__name__}: {exc}"
    return {"id": run_id, "time": id_time(run_id).isoformat(), "status": "?", "unreadable": problem}


def entries(limit: int | None = None, statuses: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Index entries, newest first, of the given statuses (any case) if any are given."""
    wanted = {s.lower() for s in statuses}
    found = []
    for run_id in ids():
        item = entry(run_id)
        if item is None or (wanted and str(item.get("status", "")).lower() not in wanted):
            continue
        found.append(item)
        if limit and len(found) >= limit:
            break
    return found


def report_path(run_id: str) -> Path:
    return history_dir() / run_id / "report.json"


def load(run_id: str) -> Report:
    return Report.from_dict(json.loads(report_path(run_id).read_text()))


def resolve(ref: str) -> str:
    """The run a user means: `last`/`latest`, an id or a unique prefix of one, or a model file (its newest run)."""
    ref = ref.strip()
    known = ids()
    if not known:
        raise NotFound(f"no runs recorded yet (the history is kept in {history_dir()})")
    if ref.lower() in ("last", "latest"):
        return known[0]
    if ref in known:
        return ref
    matches = [i for i in known if i.startswith(ref)] if ref else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        shown = ", ".join(matches[:4]) + (", ..." if len(matches) > 4 else "")
        raise NotFound(f"{ref!r} matches {len(matches)} runs ({shown}); give more of the id")
    target = Path(ref).expanduser()
    path = str(target.resolve()) if target.is_file() else None
    models = [(item["id"], item.get("model") or {}) for item in entries()]
    by_path = [run_id for run_id, model in models if path and model.get("path") == path]
    by_name = [run_id for run_id, model in models if model.get("name") == target.name]  # it may have moved
    if by_path or by_name:
        return (by_path or by_name)[0]
    raise NotFound(f"no recorded run matches {ref!r}: neither `last`, an id such as {known[0]} (or its start), "
                   "nor the file name of a model that was run")


# ---------------------------------------------------------------- removing

def select(older_than: float | None = None, keep: int | None = None, now: datetime | None = None) -> list[str]:
    """The ids to remove (newest first): beyond the newest `keep`, or older than `older_than` seconds."""
    known = ids()
    chosen = set(known[keep:]) if keep is not None else set()
    if older_than is not None:
        cutoff = (now or datetime.now(timezone.utc)) - timedelta(seconds=older_than)
        chosen.update(i for i in known if id_time(i) < cutoff)
    return [i for i in known if i in chosen]


def remove(run_ids: Iterable[str]) -> list[str]:
    """Remove these runs; the ids actually removed (another process may have been first)."""
    root = history_dir()
    removed = []
    for run_id in run_ids:
        trash = root / f".trash-{run_id}-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            (root / run_id).rename(trash)
        except FileNotFoundError:
            continue
        shutil.rmtree(trash, ignore_errors=True)
        removed.append(run_id)
    return removed


def prune(keep: int | None = None, max_age_days: float | None = None) -> list[str]:
    """Apply the limits (KEEP_RUNS, KEEP_DAYS by default), and sweep what killed processes left half-written.

    Judged from the directory names alone, so it costs one directory listing."""
    days = KEEP_DAYS if max_age_days is None else max_age_days
    removed = remove(select(older_than=days * 86400, keep=KEEP_RUNS if keep is None else keep))
    root = history_dir()
    for leftover in [*root.glob(".tmp-*"), *root.glob(".trash-*")]:  # being written, being removed
        try:
            if time.time() - leftover.stat().st_mtime > STALE_SECONDS:
                shutil.rmtree(leftover, ignore_errors=True)
        except FileNotFoundError:
            continue
    return removed
