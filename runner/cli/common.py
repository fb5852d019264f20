"""What every command shares: exit codes, usage errors, option parsing, and talking to the engine."""

from __future__ import annotations

import os
import re
import sys

import click

from ..lifecycle import EXIT_USAGE
from ..paths import cache_dir
from ..units import human_bytes


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
  NUMERAI_SANDBOX_PYTHON, _PROFILE, _DATA, _MEMORY, _CPUS, _TIMEOUT
                         defaults for run's options (see run --help)
"""


class InputError(click.ClickException):
    """A bad input: a clear message and exit code 2, like a usage error."""

    exit_code = EXIT_USAGE

    def show(self, file=None) -> None:
        click.echo(f"numerai-sandbox: error: {self.format_message()}", err=True)


# ---------------------------------------------------------------- option parsing

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
          "g": 1024**3, "gb": 1024**3, "gib": 1024**3}
MIN_MEMORY = 64 * 1024**2


def parse_memory(text: str) -> int:
    """`4g`, `512m`, `4GiB`, `2.5g` or a number of bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if not match or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a memory size (examples: 4g, 512m, 2.5g)")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value < MIN_MEMORY:
        raise ValueError(f"{text!r} is below the 64m minimum a Python process with pandas needs")
    return value


def parse_duration(text: str) -> float:
    """`90`, `90s`, `20m`, `1h`, `1h30m`, `1.5m` as seconds."""
    cleaned = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", cleaned):
        seconds = float(cleaned)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", cleaned)
        if not parts or "".join(n + u for n, u in parts) != cleaned:
            raise ValueError(f"{text!r} is not a duration (examples: 90, 90s, 20m, 1h, 1h30m)")
        seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError("the timeout must be more than 0 seconds")
    return seconds


def parse_data_version(text: str) -> str:
    """A Numerai dataset version: v5.3, v5."""
    if not re.fullmatch(r"v\d+(\.\d+)?", text.strip()):
        raise ValueError(f"{text!r} is not a dataset version (examples: v5.2, v5.3)")
    return text.strip()


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
    cores = os.cpu_count() or 1
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



# ---------------------------------------------------------------- the engine

def connect_engine(sweep: bool = True):
    """The engine, for the commands that need it (only they reach it); with `sweep`, what a runner
    killed outright left behind goes first."""
    from ..sandbox import docker as engine

    try:
        client = engine.connect()
    except engine.EngineUnavailable as exc:
        fail(str(exc))
    if sweep:
        engine.sweep(client)
    return client


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
        from ..sandbox.docker import ENGINE_ERRORS, lost_engine

        try:
            return super().invoke(ctx)
        except ENGINE_ERRORS as exc:
            if lost_engine(exc):
                fail(f"lost the Docker engine ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
            fail(f"the Docker engine refused: {getattr(exc, 'explanation', None) or exc}")




def check_outputs(inputs: set, outputs: dict) -> None:
    """Files we are asked to write: never one of the inputs, in a directory that exists, each named once;
    and the HTML page only when its extra is installed."""
    written: dict = {}
    for option, value in outputs.items():
        if value is None:
            continue
        where = value.resolve()
        if where in inputs:
            raise InputError(f"{option} {value} is one of the inputs; it would be overwritten")
        if not where.parent.is_dir():
            raise InputError(f"{option}: directory {value.parent} does not exist")
        if where in written:
            raise InputError(f"{written[where]} and {option} name the same file")
        written[where] = option
    if outputs.get("--html") is not None:
        from ..verdict.html import HtmlUnavailable, check_available

        try:
            check_available()
        except HtmlUnavailable as exc:
            raise InputError(str(exc)) from exc
