"""`numerai-sandbox runs`: the run history — list the last runs, show one again, remove them."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import click

from ..usecases.inputs import parse_age
from ..support.units import human_bytes
from .common import InputError, ago, confirm, converter

STATUS_COLOURS = {"Success": "green", "Failed": "red", "Error": "magenta"}
# The model wrote its output and its exception's text: shown escaped, they cannot drive the terminal.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
MODEL_WIDTH = 32


@click.group("runs")
def runs_group() -> None:
    """The run history: each run's report, the model's last output and where its files went.

    Kept in $NUMERAI_SANDBOX_HISTORY_DIR (default: the cache's runs/): the last 500 runs of
    the last 30 days. Nothing is recorded with NUMERAI_SANDBOX_NO_HISTORY=1, nor for a run
    given --no-history.
    """


def _resolve(ref: str) -> str:
    from ..usecases import history

    try:
        return history.resolve(ref)
    except history.NotFound as exc:
        raise InputError(str(exc)) from exc


def _verdict(entry: dict) -> str:
    code = "/".join(c for c in (entry.get("reason"), entry.get("subcode")) if c)
    return f"{entry.get('status', '?')} {code}".strip()


def _model_name(entry: dict, width: int | None = None) -> str:
    name = (entry.get("model") or {}).get("name") or "?"
    return name if width is None or len(name) <= width else name[:width - 1] + "…"


# ---------------------------------------------------------------- list

@runs_group.command("list")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True, metavar="N",
              help="Show the newest N runs (0: all of them).")
@click.option("--status", "statuses", type=click.Choice(("success", "failed", "error"), case_sensitive=False),
              multiple=True, help="Only runs that ended so (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the index entries as one JSON array.")
def runs_list(limit: int, statuses: tuple[str, ...], as_json: bool) -> None:
    """The recorded runs, newest first: id, when, model, Python, verdict, predict time, peak memory."""
    import json

    from ..usecases import history

    found = history.entries(statuses=statuses)
    shown = found[:limit] if limit else found
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    if not shown:
        what = f"no {'/'.join(statuses)} runs" if statuses and history.ids() else "no runs"
        click.echo(f"{what} recorded in {history.history_dir()}")
        return
    rows = [(e["id"], ago(e.get("time")), _model_name(e, MODEL_WIDTH), e.get("python") or "?", _verdict(e),
             f"{e['predict_seconds']:.2f}s" if isinstance(e.get("predict_seconds"), (int, float)) else "-",
             human_bytes(e["peak_memory_bytes"]) if e.get("peak_memory_bytes") else "-", e.get("status"))
            for e in shown]
    header = ("ID", "WHEN", "MODEL", "PYTHON", "VERDICT", "PREDICT", "PEAK MEMORY")
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    right = {5, 6}

    def cells(row) -> list[str]:
        return [str(v).rjust(w) if i in right else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths))]

    click.echo("  ".join(cells(header)).rstrip())
    for row in rows:
        texts = cells(row[:-1])
        texts[4] = click.style(texts[4], fg=STATUS_COLOURS.get(row[-1]))
        click.echo("  ".join(texts).rstrip())
    if len(shown) < len(found):
        click.echo(f"({len(shown)} of {len(found)} shown; --limit 0 shows all)")


# ---------------------------------------------------------------- show

@runs_group.command("show")
@click.argument("ref", metavar="[ID]", default="last")
@click.option("--json", "as_json", is_flag=True, help="Print the stored JSON report exactly.")
def runs_show(ref: str, as_json: bool) -> None:
    """One recorded run again: the verdict, the traceback, the model's last output, where its files are.

    ID: `last` (the default), an id or any unique start of one, or a model file name (its newest run).
    """
    import json

    from ..usecases import history
    from ..usecases.vocabulary import Report

    run_id = _resolve(ref)
    path = history.report_path(run_id)
    try:
        text = path.read_text()
        report = None if as_json else Report.from_dict(json.loads(text))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"run {run_id}: its report {path} cannot be read ({type(exc).__name__}: {exc})") from exc
    if as_json:
        click.echo(text, nl=False)
        return
    entry = history.entry(run_id) or {}
    for line in _show_lines(run_id, entry, report, path):
        click.echo(CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", line))


def _show_lines(run_id: str, entry: dict, report, path: Path) -> list[str]:
    from ..usecases.vocabulary import summary_lines

    when = datetime.fromisoformat(entry["time"]).astimezone() if entry.get("time") else None
    lines = [f"run {run_id}" + (f" · {when:%Y-%m-%d %H:%M:%S %Z} ({ago(entry['time'])})" if when else "")]
    model = report.model or {}
    facts = [("model", f"{model.get('path', '?')} ({human_bytes(model.get('size_bytes'))}, "
                       f"sha256 {(model.get('sha256') or '?')[:12]})"),
             ("python", " · ".join(filter(None, [report.python_full or report.python,
                                                  (report.image or {}).get("ref")])) or "?"),
             ("data", (report.data or {}).get("description")),
             ("limits", _limits(report.limits)),
             ("check batch", entry.get("batch")),
             ("upload", _upload(report.upload))]
    lines += [f"  {name:<12} {value}" for name, value in facts if value]
    lines += summary_lines(report, debug=True)
    if report.traceback:
        lines += ["  " + line for line in report.traceback.rstrip().splitlines()]
    if report.logs_tail.strip():
        tail = report.logs_tail.rstrip().splitlines()
        lines.append(f"The model's output, last {len(tail)} lines" + (" (cut in the middle)" if report.logs_truncated
                                                                      else "") + ":")
        lines += [f"  │ {line}" for line in tail]
    lines.append("Files:")
    files = [("report", str(path)), ("predictions", report.predictions_path), ("html", entry.get("html_path"))]
    for name, where in files:
        if where:
            gone = "" if Path(where).exists() else "  (no longer there)"
            lines.append(f"  {name:<12} {where}{gone}")
    return lines


def _upload(upload: dict | None) -> str | None:
    """What `upload` did with the run: the upload id Numerai gave, or why nothing was sent."""
    if not upload:
        return None
    where = " · ".join(f for f in (f"model {upload.get('model')}", upload.get("docker_image"),
                                   f"data {upload['data_version']}" if upload.get("data_version") else None) if f)
    if upload.get("upload_id"):
        return f"uploaded to Numerai: upload id {upload['upload_id']} · {where} · {upload.get('at', '')}".rstrip(" ·")
    return f"{upload.get('message') or upload.get('outcome')} ({where})"


def _limits(limits: dict) -> str | None:
    if not limits:
        return None
    return (f"{limits.get('cpus', '?'):g} CPU · {human_bytes(limits.get('memory_bytes'))} · "
            f"timeout {limits.get('timeout_seconds', 0):g}s")


# ---------------------------------------------------------------- rm

@runs_group.command("rm")
@click.argument("refs", nargs=-1, metavar="[ID]...")
@click.option("--older-than", metavar="AGE", callback=converter(parse_age),
              help="Runs recorded longer ago than AGE: 7d, 12h, 2w.")
@click.option("--keep", type=click.IntRange(min=0), metavar="N", help="All but the newest N runs.")
@click.option("--all", "everything", is_flag=True, help="Every recorded run (asks first).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (needed for --all where no terminal can answer).")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def runs_rm(refs: tuple[str, ...], older_than: float | None, keep: int | None, everything: bool, yes: bool,
            dry_run: bool) -> None:
    """Remove recorded runs: IDs (as for show), --older-than AGE, --keep N or --all.

    Only the history's own records go; predictions and HTML pages written elsewhere stay.
    """
    from ..usecases import history

    if not (refs or older_than is not None or keep is not None or everything):
        raise InputError("say which runs to remove: IDs, --older-than AGE, --keep N or --all")
    named = {_resolve(ref) for ref in refs}  # every ID must be known before anything goes
    chosen = set(history.ids()) if everything else named | set(history.select(older_than, keep))
    doomed = [e for e in history.entries() if e["id"] in chosen]
    if not doomed:
        click.echo("nothing to remove")
        return
    lines = [f"{e['id']}  {_model_name(e)}  {_verdict(e)}" for e in doomed]
    if dry_run:
        click.echo("\n".join(f"would remove {line}" for line in lines))
        return
    if everything:
        confirm(f"Remove all {len(doomed)} recorded runs from {history.history_dir()}?", yes,
                f"--all removes all {len(doomed)} recorded runs")
    removed = set(history.remove(e["id"] for e in doomed))
    click.echo("\n".join(f"removed {line}" for line, e in zip(lines, doomed) if e["id"] in removed))
    click.echo(f"{len(removed)} removed, {len(history.ids())} kept")
