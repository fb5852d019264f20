"""What every command shares: exit codes, usage errors, option parsing, and talking to the engine."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from ..lifecycle import EXIT_USAGE


EXIT_HELP = """\b
Exit codes:
  0  Success  - Numerai would accept the predictions
  1  Failed   - the model's fault (see the reason and what to do)
  2  usage    - a bad option or input file
  3  Error    - not the model's fault (Docker, image, data, machine, interrupted, a bug)
"""


class InputError(click.ClickException):
    """A bad input: a clear message and exit code 2, like a usage error."""

    exit_code = EXIT_USAGE

    def show(self, file=None) -> None:
        click.echo(f"numerai-sandbox: error: {self.format_message()}", err=True)


def check_model_file(model: Path) -> None:
    if not model.exists():
        raise InputError(f"model file {model} does not exist")
    if not model.is_file():
        raise InputError(f"{model} is not a file")
    try:
        with open(model, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot read {model}: {exc.strerror}") from exc


def check_model_and_data(model: Path, data: str | None, benchmarks: str | None) -> set[Path]:
    """The model file and --data/--benchmarks checked before anything starts; the local inputs among them."""
    check_model_file(model)
    from .. import data as live_data

    inputs = {model.resolve()}
    for value, option in ((data, "--data"), (benchmarks, "--benchmarks")):
        if value is None:
            continue
        try:
            local = live_data.check_option(value, option)
        except live_data.DataError as exc:
            raise InputError(str(exc)) from exc
        if local is not None:
            inputs.add(local)
    return inputs


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


def positive_float(ctx, param, value):
    if value is not None and value <= 0:
        raise click.BadParameter("must be more than 0", ctx=ctx, param=param)
    return value



# ---------------------------------------------------------------- the engine

def connect_engine():
    from ..sandbox import docker as engine

    try:
        return engine.connect()
    except engine.EngineUnavailable as exc:
        fail(str(exc))


def fail(message: str) -> None:
    """An Error outside a run: one line on stderr, exit code 3."""
    click.echo(f"numerai-sandbox: error: {message}", err=True)
    sys.exit(3)


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


