"""What every command shares: exit codes, usage errors, option parsing, and talking to the engine."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..support.machine import local_cores
from ..support.paths import cache_dir
from ..support.units import human_bytes
from ..usecases.inputs import parse_memory
from ..usecases.vocabulary import EXIT_USAGE


EXIT_HELP = """\b
Exit codes:
  0  Success  - Numerai would accept the predictions
  1  Failed   - the model's fault (see the reason and what to do)
  2  usage    - a bad option or input file
  3  Error    - not the model's fault (Docker, image, data, machine, interrupted, a bug)
"""

ENVIRONMENT_HELP = f"""
\b
Environment:
  NUMERAI_SANDBOX_CACHE  wheels, base root filesystems and synthetic data
                         (default ~/.cache/numerai-sandbox; here: {cache_dir()})
  DOCKER_HOST            the Docker engine (default: the local socket)
  NUMERAI_SANDBOX_NAMESPACE
                         keeps these images and sandboxes apart from others on a
                         shared engine (default numerai-sandbox: the image names)
  NUMERAI_SANDBOX_PYTHON, _PROFILE, _DATA, _MEMORY, _CPUS, _TIMEOUT
                         defaults for run's options (see run --help)
  NUMERAI_SANDBOX_WARM   pre-started sandboxes: unset, `run` leaves one on a terminal
                         outside CI after a second run in an image; 1 everywhere; 0 never
  NUMERAI_SANDBOX_WARM_MAX
                         idle pre-started sandboxes per image (default 1; 0: none)
  NUMERAI_PUBLIC_ID, NUMERAI_SECRET_KEY
                         your Numerai API key (upload, uploads)
  NUMERAI_API_URL        the Numerai API every Numerai call goes to (upload,
                         uploads, data fetch; default: numerapi's, Numerai's own)
"""


class InputError(click.ClickException):
    """A bad input: a clear message and exit code 2, like a usage error."""

    exit_code = EXIT_USAGE

    def show(self, file=None) -> None:
        click.echo(f"numerai-sandbox: error: {self.format_message()}", err=True)


def checked_inputs(model: Path, data: str | None, benchmarks: str | None,
                   outputs: dict[str, Path | None] | None = None) -> None:
    """runner.usecases.inputs' checks of the model, the data options and the files to write, as usage errors."""
    from ..usecases.inputs import BadInput, check_inputs

    try:
        check_inputs(model, data, benchmarks, outputs or {})
    except BadInput as exc:
        raise InputError(str(exc)) from exc


# ---------------------------------------------------------------- option parsing
# (the parsers themselves are in runner/inputs.py, shared with the Python API)

def converter(parser):
    def convert(ctx, param, value):
        if value is None:
            return None
        try:
            return parser(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc
    return convert


MIN_CPUS = 0.01  # the smallest CPU quota the engine accepts


def cpu_limit(ctx, param, value):
    """--cpus within what the engine can grant: 0.01 up to this machine's cores."""
    cores = local_cores()
    if value is not None and not MIN_CPUS <= value <= cores:
        raise click.BadParameter(f"{value:g} is out of range: from {MIN_CPUS:g} to {cores} (the cores of this "
                                 "machine)", ctx=ctx, param=param)
    return value


def memory_limit(ctx, param, value):
    """--memory as bytes; a limit the user chose that this machine cannot give is a usage error.

    (The default, Numerai's 4 GB, on a smaller machine is the machine's problem: Error/host_resources.)"""
    size = converter(parse_memory)(ctx, param, value)
    if size is not None and ctx.get_parameter_source(param.name) is not click.core.ParameterSource.DEFAULT:
        import psutil

        total = psutil.virtual_memory().total
        if size > total:
            raise click.BadParameter(f"{value} is more than this machine's memory ({human_bytes(total)})",
                                     ctx=ctx, param=param)
    return size



def warm_settings() -> None:
    """NUMERAI_SANDBOX_WARM and NUMERAI_SANDBOX_WARM_MAX, checked before a run or check starts (usage errors)."""
    from ..usecases.run_one import check_settings
    from ..usecases.vocabulary import UsageError

    try:
        check_settings()
    except UsageError as exc:
        raise InputError(str(exc)) from exc


# ---------------------------------------------------------------- showing and asking

def ago(iso: str | None) -> str:
    """How long ago an ISO 8601 time was, in the largest whole unit: 3d ago, 5h ago, 40s ago."""
    from datetime import datetime, timezone

    try:
        seconds = (datetime.now(timezone.utc) - datetime.fromisoformat(iso)).total_seconds()
    except (TypeError, ValueError):
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{max(seconds, 0):.0f}s ago"


def confirm(question: str, yes: bool, refusal: str) -> None:
    """Before destroying much: --yes, or a yes typed at the terminal; `refusal` is the usage error without one."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError(f"{refusal}; add --yes (there is no terminal to ask on)")
    if not click.confirm(question, default=False):
        click.echo("nothing removed")
        sys.exit(1)


# ---------------------------------------------------------------- the engine

def connect_engine(sweep: bool = True):
    """The engine, for the commands that need it (only they reach it); with `sweep`, what a runner
    killed outright left behind goes first."""
    from ..usecases import engine

    try:
        return engine.connect_engine(sweep)
    except engine.EngineUnavailable as exc:
        fail(str(exc))


def engine_if_any(sweep: bool = True):
    """The engine when it answers, else None: for the commands that also serve the process sandbox."""
    from ..usecases import engine

    try:
        return engine.connect_engine(sweep)
    except engine.EngineUnavailable:
        return None


def fail(message: str) -> None:
    """An Error outside a run: one line on stderr (and the JSON object --json promises), exit code 3."""
    if json_requested():
        echo_error_object(message, 3)
    click.echo(f"numerai-sandbox: error: {message}", err=True)
    sys.exit(3)


def json_requested() -> bool:
    """Whether --json is on the command line (before any `--`): then stdout holds one JSON object, whatever happens."""
    args = sys.argv[1:]
    return "--json" in (args[:args.index("--")] if "--" in args else args)


def echo_error_object(message: str, exit_code: int) -> None:
    """What --json prints when there is no report to print (a usage error, an Error outside a run)."""
    import json

    click.echo(json.dumps({"status": None, "reason": None, "exit_code": exit_code, "message": message}))


class EngineCommand(click.Command):
    """A command that talks to the engine: losing it mid-way is one line and exit 3, not a traceback."""

    def invoke(self, ctx):
        from ..usecases.engine import ENGINE_ERRORS, lost_engine

        try:
            return super().invoke(ctx)
        except ENGINE_ERRORS as exc:
            if lost_engine(exc):
                fail(f"lost the Docker engine ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
            fail(f"the Docker engine refused: {getattr(exc, 'explanation', None) or exc}")
