"""`numerai-sandbox doctor`: check this machine for runs as Numerai makes them; every problem with its fix."""

from __future__ import annotations

import json
import sys

import click

from ..usecases.vocabulary import DEFAULT_PYTHON, SUPPORTED_PYTHONS

DOCTOR_EXIT_HELP = """\b
Exit codes:
  0  nothing is a problem (there may be warnings)
  1  at least one problem: runs fail, or would not be judged as Numerai judges them
  2  usage - a bad option
"""

LEVEL_COLOURS = {"ok": "green", "warning": "yellow", "problem": "red"}


@click.command(epilog=DOCTOR_EXIT_HELP)
@click.option("--python", "pythons", type=click.Choice(SUPPORTED_PYTHONS), multiple=True, metavar="PYTHON",
              help=f"A Python whose image must be usable: {', '.join(SUPPORTED_PYTHONS)} (repeatable; default "
                   f"{DEFAULT_PYTHON}, Numerai's default); the other Pythons' missing images are warnings.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as one JSON object.")
def doctor(pythons: tuple[str, ...], as_json: bool) -> None:
    """Check the Docker engine, the images per Python, the cache, disk, memory, CPUs and gVisor, and
    say how to fix each problem. Changes nothing: builds, fetches, removes and restarts nothing.
    """
    from ..usecases import doctor as checks

    result = checks.checkup(required=pythons or (DEFAULT_PYTHON,))
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
        sys.exit(result.exit_code)
    colour = sys.stdout.isatty()
    width = max(len(f.check) for f in result.findings)
    for finding in result.findings:
        level = f"{finding.level:<8}"
        click.echo(f"{click.style(level, fg=LEVEL_COLOURS[finding.level]) if colour else level} "
                   f"{finding.check:<{width}}  {finding.summary}")
        if finding.fix:
            click.echo(f"{'':<9}{'':<{width}}  fix: {finding.fix}")
    problems, warnings = result.count(checks.PROBLEM), result.count(checks.WARNING)
    click.echo(f"{problems} problem{'s' * (problems != 1)}, {warnings} warning{'s' * (warnings != 1)}"
               + (": runs work" if not problems else ""))
    sys.exit(result.exit_code)
