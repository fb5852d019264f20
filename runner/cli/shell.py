"""`numerai-sandbox shell MODEL.pkl`: an interactive Python inside the sandbox a run would use.

The same Pending as `run` (the Python read from the pickle, the image found or built
offline, the live data fitted to the pickle's column names) and the same container
(limits, no network, read-only root, non-root), with predict, live_features and
live_benchmark_models loaded, for poking at a model that fails.
"""

from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import click

from ..usecases.inputs import parse_duration
from .common import InputError, checked_inputs, converter

# run's own parameters that shell takes as they are, so choosing the image, the data and the limits
# works the same in both (and stays so when run's options change).
SHARED_PARAMETERS = ("model", "python", "force", "profile", "extra_requirements", "data", "data_version",
                     "benchmarks", "memory", "cpus")

SHELL_EXIT_HELP = """\b
Exit codes:
  0  the session ended from inside (exit(), Ctrl-D)
  1  a limit ended it (--timeout, out of memory) or the Python crashed; or the
     pickle's Python cannot load in the image asked for (see --force)
  2  usage - a bad option or input file, or stdin is not a terminal
  3  Error - the shell could not open (Docker, image, data), or was ended from
     outside (the terminal closed, SIGTERM)
"""


def shell_command(run: click.Command) -> click.Command:
    """The shell command, with run's model argument and image, data and limit options, and its own --timeout."""
    params = [copy.copy(p) for p in run.params if p.name in SHARED_PARAMETERS]
    params.append(click.Option(["--timeout"], metavar="DURATION", callback=converter(parse_duration),
                               help="End the session after this long (90, 90s, 20m, 1h); default: no timeout."))
    return click.Command("shell", callback=shell, params=params, help=shell.__doc__, epilog=SHELL_EXIT_HELP,
                         short_help="An interactive Python in the sandbox, with the model and the data loaded.")


def shell(model: Path, timeout: float | None, **options) -> None:
    """Open an interactive Python inside the sandbox a run of MODEL would use: the same image, limits,
    no network and read-only root, with predict, live_features and live_benchmark_models loaded
    (predict is None, and load_error the exception, when the pickle does not load).

    The session has no timeout unless --timeout is given. exit() or Ctrl-D ends it; Ctrl-C
    interrupts what runs inside. The container is removed when the shell ends, when this
    process is killed and when the terminal closes.
    """
    from .. import __version__
    from ..support.console import Console
    from ..support.units import human_bytes
    from ..usecases.shell import ending, open_shell, terminal as user_terminal
    from ..usecases.vocabulary import Limits, RunRequest, UsageError, summary_lines

    terminal = user_terminal()
    if not terminal.is_terminal():
        raise InputError("shell needs a terminal, and stdin is not one: run it in an interactive terminal "
                         "(for scripts and CI, `numerai-sandbox run` gives the verdict)")
    checked_inputs(model, options.get("data"), options.get("benchmarks"))
    limits = Limits(memory_bytes=options["memory"], cpus=options["cpus"],
                    timeout_seconds=timeout if timeout is not None else float("inf"))
    console = Console()
    console.line(f"numerai-sandbox {__version__} · shell · {model.name} ({human_bytes(model.stat().st_size)}) · "
                 f"Python {options['python']} · {options['profile']}")
    request = RunRequest(model=model, python=options["python"], profile=options["profile"], data=options.get("data"),
                         benchmarks=options.get("benchmarks"), data_version=options.get("data_version"),
                         limits=limits, extra_requirements=options.get("extra_requirements"),
                         force=options.get("force", False))
    try:
        report, session = open_shell(request, terminal, console)
    except UsageError as exc:
        raise InputError(str(exc)) from exc
    if report.status.terminal:  # it did not open, or was interrupted: a verdict like run's
        lines, code = summary_lines(report), report.exit_code
        if report.reason == "internal_error":  # shell has no --report to hold the traceback: show it to report
            lines.append(report.traceback.rstrip())
    else:
        line, code = ending(session, limits)
        lines = [line]
    for line in lines:
        console.line(line)
    if console.gone:  # the terminal closed: its streams cannot even be flushed at exit
        sys.stdout = sys.stderr = open(os.devnull, "w")
        code = 3
    sys.exit(code)
