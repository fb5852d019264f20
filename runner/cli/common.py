"""What every command shares: exit codes, usage errors, option parsing, and talking to the engine."""

from __future__ import annotations

import sys

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


def positive_float(ctx, param, value):
    if value is not None and value <= 0:
        raise click.BadParameter("must be more than 0", ctx=ctx, param=param)
    return value



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


