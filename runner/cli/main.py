"""The numerai-sandbox command line (also `python -m runner`)."""

from __future__ import annotations

import json
import re
import signal
import sys
import time
from pathlib import Path

import click

from .. import __version__
from ..console import Console
from ..sandbox.backend import Limits
from ..lifecycle import EXIT_USAGE
from ..images.pins import DEFAULT_PYTHON, PROFILES, SUPPORTED_PYTHONS
from ..verdict.report import human_bytes, summary_lines

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


def _callback(parser):
    def convert(ctx, param, value):
        if value is None:
            return None
        try:
            return parser(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc
    return convert


def _positive_float(ctx, param, value):
    if value is not None and value <= 0:
        raise click.BadParameter("must be more than 0", ctx=ctx, param=param)
    return value


# ---------------------------------------------------------------- the group

@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_HELP)
@click.version_option(__version__, prog_name="numerai-sandbox")
def cli() -> None:
    """Run a Numerai model pickle exactly the way Numerai's Model Upload runs it, and learn
    before uploading whether it will pass - and if not, why and what to do.
    """
    _sweep_leftovers()


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
@click.option("--profile", type=click.Choice(PROFILES), default="standard", show_default=True,
              help="Image profile: standard packages, or Numerai's full pin list.")
@click.option("--extra-requirements", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Extra pins layered on the profile (the image must have been fetched with them).")
@click.option("--data", metavar="PATH|DATASET",
              help="live.parquet: a local file, or a numerapi dataset like v5.2/live.parquet (downloads; "
                   "needs the network). Default: embedded synthetic live data.")
@click.option("--benchmarks", metavar="PATH|DATASET",
              help="live_benchmark_models.parquet for 2-argument models. Default: synthetic, matching the live ids.")
@click.option("--memory", default="4g", show_default=True, callback=_callback(parse_memory),
              help="Memory limit, swap off (Numerai: 4 GB).")
@click.option("--cpus", type=float, default=1.0, show_default=True, callback=_positive_float,
              help="CPU limit (Numerai: 1).")
@click.option("--timeout", default="10m", show_default=True, callback=_callback(parse_duration),
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
    from ..images.pins import remembered_full_pins

    _check_model_file(model)
    inspection = inspect_pickle(model, full_pins=remembered_full_pins())
    if as_json:
        click.echo(json.dumps(inspection.to_dict(), indent=2, default=str))
    else:
        click.echo("\n".join(render(inspection)))
    sys.exit(0 if inspection.is_pickle else 1)


# ---------------------------------------------------------------- data

@cli.group()
def data() -> None:
    """Live data: make the synthetic v5-shaped default."""


@data.command("synth")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Directory for live.parquet, live_benchmark_models.parquet and features.json.")
@click.option("--rows", type=click.IntRange(min=1), default=6720, show_default=True,
              help="Rows (stocks) in the live era.")
@click.option("--features", type=click.IntRange(min=1), default=2748, show_default=True,
              help="Feature columns (v5.2's 'all' set has 2,748).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Overwrite existing files in --out.")
def data_synth(out: Path, rows: int, features: int, seed: int, force: bool) -> None:
    """Write synthetic live data shaped like a v5.2 live era (deterministic by seed)."""
    from .. import data as live_data

    names = ("live.parquet", "live_benchmark_models.parquet", "features.json")
    existing = [n for n in names if (out / n).exists()]
    if existing and not force:
        raise InputError(f"{', '.join(existing)} already in {out}; pass --force to overwrite")
    started = time.monotonic()
    made = live_data.synthesize(out, rows, features, seed)
    click.echo(f"wrote {made.description} to {out} in {time.monotonic() - started:.1f}s:")
    for name in names:
        click.echo(f"  {out / name} ({human_bytes((out / name).stat().st_size)})")


# ---------------------------------------------------------------- images

@cli.group("images")
def images_group() -> None:
    """Build, list and remove the per-Python images (the network is only used by `fetch`)."""


def _client():
    from ..sandbox import docker as engine

    try:
        return engine.connect()
    except engine.EngineUnavailable as exc:
        _fail(str(exc))


def _fail(message: str) -> None:
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
                _fail(f"lost the Docker engine ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
            _fail(f"the Docker engine refused: {getattr(exc, 'explanation', None) or exc}")


def _pins(python: str, profile: str, requirements: Path | None, extra: Path | None):
    from ..images.pins import PinError, pin_set

    try:
        return pin_set(python, profile, requirements, extra)
    except PinError as exc:
        raise InputError(str(exc)) from exc


python_option = click.option("--python", "python", type=click.Choice(SUPPORTED_PYTHONS), required=True,
                             help="Python version of the image.")
profile_option = click.option("--profile", type=click.Choice(PROFILES), default="standard", show_default=True)
extra_option = click.option("--extra-requirements", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                            help="Your own exact pins (name==version) layered on top of the profile.")


@images_group.command("fetch", cls=EngineCommand)
@python_option
@profile_option
@click.option("--requirements", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Numerai's full pin list as a file (default for --profile full: download it).")
@extra_option
@click.option("--python-home", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A local CPython installation for the offline base (pyenv, uv, python-build-standalone).")
@click.option("--no-pull", is_flag=True, help="Do not try a registry for python:X-slim.")
def images_fetch(python: str, profile: str, requirements: Path | None, extra_requirements: Path | None,
                 python_home: Path | None, no_pull: bool) -> None:
    """Download what an image needs into the local cache (the only step that uses the network)."""
    from ..images import bases, wheelhouse
    from ..images.pins import remember_full_pins

    pins = _pins(python, profile, requirements, extra_requirements)
    console = Console()
    client = _client()
    started = time.monotonic()
    try:
        base = bases.fetch(client, python, console.progress, python_home, allow_registry=not no_pull)
        console.line(f"base: {base.description}")
        if base.kind in ("local-image", "pulled"):
            bases.fetch_debs(python, console.progress)
        stock = wheelhouse.fetch(pins, console.progress)
        remember_full_pins(pins)
    except (bases.BaseError, wheelhouse.WheelhouseError) as exc:
        _fail(str(exc))
    if pins.skipped:
        console.line(f"left out (not for Linux): {', '.join(pins.skipped)}")
    size = sum(p.stat().st_size for p in stock.present.values())
    again = f"numerai-sandbox images build --python {python}"
    again += f" --profile {profile}" if profile != "standard" else ""
    again += f" --requirements {requirements}" if requirements else ""
    again += f" --extra-requirements {extra_requirements}" if extra_requirements else ""
    console.line(f"fetched Python {python} ({pins.tag_profile}): {len(stock.present)} wheels, "
                 f"{size / 1e6:,.0f} MB, in {time.monotonic() - started:.0f}s; now `{again}` works offline")


@images_group.command("build", cls=EngineCommand)
@python_option
@profile_option
@click.option("--requirements", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Numerai's full pin list as a file (for --profile full).")
@extra_option
@click.option("--force", is_flag=True, help="Rebuild even if an image with the same inputs exists.")
def images_build(python: str, profile: str, requirements: Path | None, extra_requirements: Path | None,
                 force: bool) -> None:
    """Build the image from the local cache, with the build's network disabled."""
    from ..images import store as images

    pins = _pins(python, profile, requirements, extra_requirements)
    console = Console()
    client = _client()
    started = time.monotonic()
    try:
        image = images.ensure(client, pins, console.progress, force=force)
    except (images.ImageUnavailable, images.HostResources) as exc:
        _fail(str(exc))
    console.line(f"{image.ref}: Python {image.python_full}, {image.profile}, {human_bytes(image.size)}, "
                 f"digest {image.digest[:12]} ({time.monotonic() - started:.1f}s)")


@images_group.command("list", cls=EngineCommand)
@click.option("--json", "as_json", is_flag=True)
def images_list(as_json: bool) -> None:
    """Our images: Python, profile, inputs digest, size and age."""
    from ..images import store as images

    found = images.list_images(_client())
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in found], indent=2))
        return
    if not found:
        click.echo("no numerai-sandbox images yet: `numerai-sandbox images fetch --python 3.11` then `images build`")
        return
    click.echo(f"{'IMAGE':<42} {'PYTHON':<8} {'PROFILE':<18} {'DIGEST':<13} {'SIZE':>10}  AGE")
    for image in found:
        click.echo(f"{image.ref:<42} {image.python_full:<8} {image.profile:<18} {image.digest[:12]:<13} "
                   f"{human_bytes(image.size):>10}  {_age(image.built)}")


def _age(iso: str) -> str:
    from datetime import datetime, timezone

    try:
        seconds = (datetime.now(timezone.utc) - datetime.fromisoformat(iso)).total_seconds()
    except ValueError:
        return "?"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


@images_group.command("rm", cls=EngineCommand)
@click.option("--python", "python", type=click.Choice(SUPPORTED_PYTHONS), help="Only this Python's images.")
@click.option("--profile", help="Only this profile's images.")
@click.option("--all", "everything", is_flag=True, help="Also the environment and base layers.")
def images_rm(python: str | None, profile: str | None, everything: bool) -> None:
    """Remove our images (never anyone else's)."""
    from ..images import store as images

    removed = images.remove(_client(), python, profile, everything)
    click.echo("\n".join(f"removed {r}" for r in removed) or "nothing to remove")


# ---------------------------------------------------------------- clean

@cli.command(cls=EngineCommand)
def clean() -> None:
    """Remove every container of ours, kept ones included, and our temp dirs."""
    from ..sandbox import docker as engine

    client = _client()
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
