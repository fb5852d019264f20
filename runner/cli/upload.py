"""`numerai-sandbox upload MODEL.pkl --model NAME` and `numerai-sandbox uploads`: send Numerai only what
passes, into the right image, and read back what Numerai made of it.

Thin commands: the judging is `run`'s (runner.usecases.run_one), the decisions are runner.usecases.upload's
and runner.usecases.uploads's, the talking to Numerai is runner.numerai_api's.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import click

from ..usecases.vocabulary import UsageError
from .common import InputError, ago, checked_inputs, fail
from .judging import judge, say_kept, warn

# run's own parameters that upload takes as they are: what picks the image and the data. Not the limits
# (an upload is judged under Numerai's, always), nor what would make the image or the run differ from
# Numerai's (--extra-requirements, --force), nor --output, --html, --keep.
SHARED_PARAMETERS = ("model", "python", "profile", "data", "data_version", "benchmarks", "isolation", "as_json",
                     "report_path", "debug", "quiet")

UPLOAD_EXIT_HELP = """\b
Exit codes:
  0  uploaded (--dry-run: everything checked, nothing sent)
  1  not uploaded: the verdict is Failed, Numerai has no current image for
     the Python it passed in, or the question was answered no
  2  usage - a bad option or input file, no API key, an unknown model name,
     a data version Numerai does not offer (nothing sent)
  3  Error - the verdict is Error, or Numerai could not be reached or refused
     (its message is shown; a refused transfer is never "uploaded")
"""

UPLOADS_EXIT_HELP = """\b
Exit codes:
  0  shown
  2  usage - no API key, an unknown model name
  3  Error - Numerai could not be reached or refused (its message is shown)
"""


def upload_command(run: click.Command) -> click.Command:
    """The upload command: run's model argument, image and data options, and its own."""
    params = [copy.copy(p) for p in run.params if p.name in SHARED_PARAMETERS]
    params += [
        click.Option(["--model", "model_name"], required=True, metavar="NAME",
                     help="Your Numerai model to upload to (its name, as on Numerai's site)."),
        click.Option(["--dry-run"], is_flag=True,
                     help="Judge it and check everything with Numerai (model, image, data version); send nothing."),
        click.Option(["--yes", "-y"], is_flag=True, help="Do not ask before sending (a terminal is asked)."),
    ]
    return click.Command("upload", callback=upload, params=params, help=upload.__doc__, epilog=UPLOAD_EXIT_HELP,
                         short_help="Judge a pickle as run does and upload it to Numerai only if it passes.")


def upload(model: Path, model_name: str, dry_run: bool, yes: bool, python: str, profile: str, data: str | None,
           data_version: str | None, benchmarks: str | None, isolation: str, as_json: bool,
           report_path: Path | None, debug: bool, quiet: bool) -> None:
    """Judge MODEL exactly as `run` does, under Numerai's limits (1 CPU, 4 GB, 10 minutes, a fresh
    sandbox), and upload it to your Numerai model NAME only when the verdict is Success: into Numerai's
    image for the Python it passed in ("Python 3.11"), with the data version it was judged on.

    Nothing is sent to Numerai unless the verdict is Success. Needs NUMERAI_PUBLIC_ID and
    NUMERAI_SECRET_KEY (NUMERAI_API_URL: another API endpoint). The upload id is printed and kept
    with the run in the run history (`runs show`); `uploads` shows what Numerai made of it.
    """
    from ..usecases.run_one import keep_report
    from ..usecases.upload import UPLOADED, preflight, upload_judged, upload_request

    checked_inputs(model, data, benchmarks, {"--report": report_path})
    try:
        preflight(model)
    except UsageError as exc:
        raise InputError(str(exc)) from exc
    request = upload_request(model, python=python, profile=profile, data=data, data_version=data_version,
                             benchmarks=benchmarks, isolation=isolation, debug=debug, live=not as_json)
    report, console = judge(request, as_json=as_json, quiet=quiet)

    def show(plan) -> None:
        for line in plan.lines():
            console.line(line)

    def ask(plan) -> bool:
        if yes or not sys.stdin.isatty():
            return True
        try:
            return click.confirm(f"Upload {plan.path.name} to {plan.model.name}?", default=False, err=as_json)
        except click.Abort:  # Ctrl-C or end of input at the question: a no, and the run is still recorded
            return False

    try:
        outcome = upload_judged(report, model, model_name, data_version=data_version, dry_run=dry_run,
                                on_plan=show, confirm=ask)
    except UsageError as exc:
        raise InputError(str(exc)) from exc
    console.line(outcome.message)
    if outcome.outcome == UPLOADED:
        console.line(f"  Numerai validates it now: `numerai-sandbox uploads --model {model_name}` shows what it says")
    say_kept(keep_report(report, report_path=report_path, warn=warn), report, console)
    if as_json:
        click.echo(report.to_json())
    sys.exit(outcome.exit_code)


# ---------------------------------------------------------------- uploads

@click.command("uploads", epilog=UPLOADS_EXIT_HELP)
@click.option("--model", "model_name", metavar="NAME", help="Only this model (default: every model of the account).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array, an object per model.")
def uploads(model_name: str | None, as_json: bool) -> None:
    """What Numerai says about each of your models' latest uploaded pickle — validation and trigger
    status, each status with its description and time — beside this machine's verdict on the same file
    (from the run history, matched by sha256 or file name), and what to do when they differ.

    Needs NUMERAI_PUBLIC_ID and NUMERAI_SECRET_KEY (NUMERAI_API_URL: another API endpoint).
    """
    from ..usecases.uploads import NumeraiError, latest_uploads

    try:
        comparisons = latest_uploads(model_name)
    except UsageError as exc:
        raise InputError(str(exc)) from exc
    except NumeraiError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps([c.to_dict() for c in comparisons], indent=2))
        return
    if not comparisons:
        click.echo("this account has no models in Numerai's tournament")
    for comparison in comparisons:
        click.echo("\n".join(comparison_lines(comparison)))


def comparison_lines(comparison) -> list[str]:
    """One model: Numerai's side, then this machine's, then what to do."""
    from ..usecases.uploads import latest_trigger, made_by, status_of

    upload, local = comparison.upload, comparison.local
    if upload is None:
        return [f"{comparison.model.name}: no pickle uploaded"] + [f"  what to do: {a}" for a in comparison.advice]
    facts = [upload.filename or "?", f"uploaded {upload.uploaded_at}" if upload.uploaded_at else None,
             f"image {upload.docker_image}" if upload.docker_image else None,
             f"data {upload.data_version}" if upload.data_version else None,
             f"upload {upload.id}" if upload.id else None]
    lines = [f"{comparison.model.name} · " + " · ".join(f for f in facts if f)]
    said = [f"validation {status_of(upload.validation_status) or '-'}",
            f"trigger {status_of(upload.trigger_status) or '-'}"]
    lines.append(f"  Numerai:      {comparison.numerai_status or 'no status yet'} ({', '.join(said)})")
    trigger = latest_trigger(upload)
    for change in sorted(trigger.statuses if trigger else (), key=lambda s: s.at or ""):
        lines.append(f"                {change.at or '?':<25} {status_of(change.status) or '?':<10} "
                     f"{change.description or ''}".rstrip())
    if local is None:
        lines.append("  this machine: no run of this file in the run history")
    else:
        report = local.report
        code = "/".join(c for c in (report.reason, report.subcode) if c)
        data = (report.data or {}).get("description") or (report.data or {}).get("source") or "?"
        lines.append(f"  this machine: {report.status.value}{f' ({code})' if code else ''} · run {local.run_id} "
                     f"({ago(report.timeline[-1]['at'] if report.timeline else None)}) · Python {report.python} "
                     f"(made by {made_by(report) or '?'}) · matched by {local.matched_by}"
                     + (": the run that uploaded these bytes" if local.matched_by == "sha256" else ""))
        lines.append(f"                data: {data}")
        if local.note:
            lines.append(f"                note: {local.note}")
    if comparison.agree:
        lines.append("  they agree")
    for advice in comparison.advice:
        lines.append(f"  {'they differ: ' if comparison.agree is False else 'what to do: '}{advice}")
    return lines
