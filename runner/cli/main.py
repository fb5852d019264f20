"""The numerai-sandbox command line (also `python -m runner`): the root group, `run`, `inspect`, `clean`.

Command groups live beside this module (images, data); each imports what it needs when it
runs, so `--help` loads nothing heavy.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import click

from .. import __version__
from ..console import Console
from ..images.pins import DEFAULT_PYTHON, PROFILES, SUPPORTED_PYTHONS
from ..sandbox.backend import Limits
from ..verdict.report import human_bytes, summary_lines
from .common import (EXIT_HELP, EngineCommand, InputError, connect_engine, converter, parse_duration, parse_memory,
                     positive_float)
from .data import data
from .images import images_group


# ---------------------------------------------------------------- the group

@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_HELP)
@click.version_option(__version__, prog_name="numerai-sandbox")
def cli() -> None:
    """Run a Numerai model pickle exactly the way Numerai's Model Upload runs it, and learn
    before uploading whether it will pass - and if not, why and what to do.
    """
    _sweep_leftovers()


cli.add_command(images_group)
cli.add_command(data)


def _sweep_leftovers() -> None:
    """Remove containers and temp dirs left by a numerai-sandbox process that was killed outright."""
    from ..sandbox import docker as engine

    try:
        client = engine.connect()
    except engine.EngineUnavailable:
        engine.sweep_temp_dirs()
        return
    try:
        engine.sweep(client)
    finally:
        client.close()


# ---------------------------------------------------------------- run

@cli.command(epilog=EXIT_HELP)
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--python", "python", type=click.Choice(("auto",) + SUPPORTED_PYTHONS), default="auto",
              show_default=True, help="Python version of the image; auto: the one that made the pickle "
              f"(read from it without running it), else Numerai's default {DEFAULT_PYTHON}.")
@click.option("--force", is_flag=True, help="Run even in an image whose Python cannot load the pickle's code.")
@click.option("--profile", type=click.Choice(PROFILES), default="auto", show_default=True,
              help="Image packages. auto: the standard image plus what the pickle needs from Numerai's image "
                   "(fetched once with `images fetch --for MODEL`); standard; full: Numerai's whole pin list.")
@click.option("--extra-requirements", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Extra pins layered on the profile (the image must have been fetched with them).")
@click.option("--data", metavar="PATH|DATASET",
              help="live.parquet: a local file, or a numerapi dataset like v5.2/live.parquet (downloads; "
                   "needs the network). Default: embedded synthetic live data.")
@click.option("--benchmarks", metavar="PATH|DATASET",
              help="live_benchmark_models.parquet for 2-argument models. Default: synthetic, matching the live ids.")
@click.option("--memory", default="4g", show_default=True, callback=converter(parse_memory),
              help="Memory limit, swap off (Numerai: 4 GB).")
@click.option("--cpus", type=float, default=1.0, show_default=True, callback=positive_float,
              help="CPU limit (Numerai: 1).")
@click.option("--timeout", default="10m", show_default=True, callback=converter(parse_duration),
              help="Wall-clock limit: 90, 90s, 20m, 1h (Numerai: 10 minutes).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the accepted predictions: CSV id,prediction like Numerai (.parquet for parquet).")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as one JSON object on stdout.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the JSON report to this file.")
@click.option("--debug", is_flag=True, help="Show the model's stdout/stderr live and the full traceback.")
@click.option("--keep", is_flag=True, help="Keep the container afterwards (remove with `numerai-sandbox clean`).")
def run(model: Path, python: str, force: bool, profile: str, extra_requirements: Path | None, data: str | None,
        benchmarks: str | None, memory: int, cpus: float, timeout: float, output: Path | None, as_json: bool,
        report_path: Path | None, debug: bool, keep: bool) -> None:
    """Run MODEL (a cloudpickled predict function) in Numerai's conditions and print the verdict.

    Statuses are printed as they are entered: Pending, Running, Validating, then
    Success, Failed (the model's fault) or Error (not the model's fault).
    """
    from ..runs import RunRequest, UsageError, execute

    _check_inputs(model, data, benchmarks, output, report_path)
    limits = Limits(memory_bytes=memory, cpus=cpus, timeout_seconds=timeout)
    console = Console(stream=sys.stderr if as_json else sys.stdout)
    console.line(f"numerai-sandbox {__version__} · {model.name} ({human_bytes(model.stat().st_size)}) · "
                 f"Python {python} · {profile}")
    request = RunRequest(model=model, python=python, profile=profile, data=data, benchmarks=benchmarks,
                         limits=limits, output=output, debug=debug, keep=keep,
                         extra_requirements=extra_requirements, force=force)
    try:
        report = execute(request, console)
    except UsageError as exc:
        raise InputError(str(exc)) from exc
    for line in summary_lines(report, debug):
        console.line(line)
    if debug and report.traceback:
        console.line(report.traceback.rstrip() if report.reason != "internal_error" else "")
    if report.reason == "internal_error":
        console.line("  (the traceback is in the JSON report: --json or --report PATH)")
    if keep and report.container.get("name"):
        console.line(f"  container kept: {report.container['name']} (docker logs/inspect it; "
                     "`numerai-sandbox clean` removes it)")
    if report_path is not None:
        report.write(report_path)
    if as_json:
        click.echo(report.to_json())
    sys.exit(report.exit_code)


def _check_model_file(model: Path) -> None:
    if not model.exists():
        raise InputError(f"model file {model} does not exist")
    if not model.is_file():
        raise InputError(f"{model} is not a file")
    try:
        with open(model, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"cannot read {model}: {exc.strerror}") from exc


def _check_inputs(model: Path, data: str | None, benchmarks: str | None, output: Path | None,
                  report_path: Path | None) -> None:
    """Every bad input is named before anything starts, and nothing the user gave is overwritten."""
    _check_model_file(model)
    from .. import data as live_data

    inputs = {model.resolve()}
    for value, option in ((data, "--data"), (benchmarks, "--benchmarks")):
        if value is None:
            continue
        path = Path(value).expanduser()
        if path.exists() or not live_data.DATASET_NAME.match(value):
            try:
                live_data.live_ids(path) if path.is_file() else None
            except live_data.DataError as exc:
                raise InputError(f"{option}: {exc}") from exc
            if not path.is_file():
                raise InputError(f"{option}: {value} is not a file (nor a numerapi dataset like v5.2/live.parquet)")
            inputs.add(path.resolve())
    for value, option in ((output, "--output"), (report_path, "--report")):
        if value is None:
            continue
        if value.resolve() in inputs:
            raise InputError(f"{option} {value} is one of the inputs; it would be overwritten")
        if not value.resolve().parent.is_dir():
            raise InputError(f"{option}: directory {value.parent} does not exist")
    if output is not None and report_path is not None and output.resolve() == report_path.resolve():
        raise InputError("--output and --report name the same file")


# ---------------------------------------------------------------- inspect

@cli.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the inspection as one JSON object.")
def inspect_command(model: Path, as_json: bool) -> None:
    """Read MODEL without running any of it: the Python that made it, the modules and library
    versions it needs and which images have them, the callable, and risky references.

    Exit code 0 when MODEL is a complete pickle, 1 when it is not (2: usage error).
    """
    from ..inspection.analysis import inspect_pickle, render

    _check_model_file(model)
    inspection = inspect_pickle(model)
    if as_json:
        click.echo(json.dumps(inspection.to_dict(), indent=2, default=str))
    else:
        click.echo("\n".join(render(inspection)))
    sys.exit(0 if inspection.is_pickle else 1)


# ---------------------------------------------------------------- clean

@cli.command(cls=EngineCommand)
def clean() -> None:
    """Remove every container of ours, kept ones included, and our temp dirs."""
    from ..sandbox import docker as engine

    client = connect_engine()
    removed = engine.remove_all(client)
    removed += engine.sweep_temp_dirs()
    click.echo("\n".join(f"removed {r}" for r in removed) or "nothing to remove")


# ---------------------------------------------------------------- entry point

def _interrupt(signum, frame):
    from ..runs import Interrupted

    raise Interrupted(signal.Signals(signum).name)


def main() -> None:
    # A shell starts background jobs with SIGINT ignored, and Python then leaves it ignored; but an
    # interrupt must always stop the run and remove its container, however we were started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    cli(prog_name="numerai-sandbox")
