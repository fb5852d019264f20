"""The numerai-sandbox command line (also `python -m runner`): the root group, `run`, `inspect`, `clean`.

Commands and groups live beside this module (images, data, shell, doctor); each imports what it needs when it
runs, so `--help` loads nothing heavy.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import click

from .. import __version__
from ..support.memory import return_memory_promptly
from ..usecases.inputs import parse_data_version, parse_duration
from ..usecases.vocabulary import BACKENDS, DEFAULT_PYTHON, ISOLATIONS, PROFILES, SUPPORTED_PYTHONS, Limits, RunRequest
from .check import SHARED_RUN_OPTIONS, check
from .common import (ENVIRONMENT_HELP, EXIT_HELP, EngineCommand, InputError, checked_inputs, connect_engine,
                     converter, engine_if_any, cpu_limit, echo_error_object, json_requested, memory_limit, warm_settings)
from .data import data
from .history import runs_group
from .images import images_group
from .judging import judge, say_kept, warn


# ---------------------------------------------------------------- the group

@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_HELP + ENVIRONMENT_HELP)
@click.version_option(__version__, prog_name="numerai-sandbox")
def cli() -> None:
    """Run a Numerai model pickle exactly the way Numerai's Model Upload runs it, and learn
    before uploading whether it will pass - and if not, why and what to do.
    """
    from ..support.paths import BadNamespace, namespace

    try:
        namespace()  # every command names images after it: a bad one is a usage error before anything runs
    except BadNamespace as exc:
        raise InputError(str(exc)) from exc


cli.add_command(images_group)
cli.add_command(data)
cli.add_command(check)
cli.add_command(runs_group)


# ---------------------------------------------------------------- run

@cli.command(epilog=EXIT_HELP)
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--python", "python", type=click.Choice(("auto",) + SUPPORTED_PYTHONS), default="auto",
              metavar="PYTHON", envvar="NUMERAI_SANDBOX_PYTHON", show_envvar=True, show_default=True,
              help=f"Python version of the image: {', '.join(('auto',) + SUPPORTED_PYTHONS)}; auto: the one that "
              f"made the pickle (read from it without running it), else Numerai's default {DEFAULT_PYTHON}. "
              "3.14 is experimental, as Numerai marks it.")
@click.option("--force", is_flag=True, help="Run even in an image whose Python cannot load the pickle's code.")
@click.option("--profile", type=click.Choice(PROFILES), default="auto", show_default=True, metavar="PROFILE",
              envvar="NUMERAI_SANDBOX_PROFILE", show_envvar=True,
              help="Image packages: auto, standard, full. auto: the standard image plus what the pickle needs from "
                   "Numerai's image (fetched once with `images fetch --for MODEL`); standard: Numerai's versions of "
                   "the usual packages; full: Numerai's whole pin list.")
@click.option("--extra-requirements", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE",
              help="Extra pins layered on the profile (the image must have been fetched with them).")
@click.option("--data", metavar="PATH|DIR|DATASET", envvar="NUMERAI_SANDBOX_DATA", show_envvar=True,
              help="live.parquet: a local file, a directory holding it, or a numerapi dataset like "
                   "v5.2/live.parquet (downloads; needs the network). Default: the newest round `data fetch` "
                   "cached, else synthetic live data carrying the columns the pickle names.")
@click.option("--data-version", metavar="VERSION", callback=converter(parse_data_version),
              help="Numerai dataset version (e.g. v5.3), as on Numerai's upload form: which cached round or "
                   "features.json a run without --data uses.")
@click.option("--benchmarks", metavar="PATH|DATASET",
              help="live_benchmark_models.parquet for 2-argument models. Default: synthetic, matching the live ids.")
@click.option("--memory", default="4g", show_default=True, callback=memory_limit, metavar="SIZE",
              envvar="NUMERAI_SANDBOX_MEMORY", show_envvar=True,
              help="Memory limit, swap off: 512m, 4g, 2.5g (Numerai: 4 GB).")
@click.option("--cpus", type=float, default=1.0, show_default=True, callback=cpu_limit, metavar="N",
              envvar="NUMERAI_SANDBOX_CPUS", show_envvar=True,
              help="CPU limit, from 0.01 to this machine's cores (Numerai: 1).")
@click.option("--timeout", default="10m", show_default=True, callback=converter(parse_duration), metavar="DURATION",
              envvar="NUMERAI_SANDBOX_TIMEOUT", show_envvar=True,
              help="Wall-clock limit: 90, 90s, 20m, 1h (Numerai: 10 minutes).")
@click.option("--isolation", type=click.Choice(ISOLATIONS), default="runc", show_default=True, metavar="ISOLATION",
              envvar="NUMERAI_SANDBOX_ISOLATION", show_envvar=True,
              help="runc: the host's kernel, as Numerai's containers (and its memory accounting); gvisor: "
              "gVisor's runsc answers the model's system calls (stronger, slower; needs `make gvisor` once).")
@click.option("--backend", type=click.Choice(BACKENDS), default="docker", show_default=True, metavar="BACKEND",
              envvar="NUMERAI_SANDBOX_BACKEND", show_envvar=True,
              help="docker: a container of the Docker engine, as Numerai runs it; process: a confined child process "
              "(no engine needed: Colab, Kaggle; weaker than a container, the report says how); auto: the engine "
              "when it answers, else process.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the accepted predictions: CSV id,prediction like Numerai (.parquet for parquet).")
@click.option("--output-rejected", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Write the predictions of a run that Failed validation (invalid_output), same format as --output.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as one JSON object on stdout.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also write the JSON report to this file.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
              help="Also write a one-file HTML report: verdict, memory and time chart, predictions "
                   "(needs pip install 'numerai-sandbox[html]').")
@click.option("--debug", is_flag=True, help="Show the model's stdout/stderr live and the full traceback.")
@click.option("--keep", is_flag=True, help="Keep the container afterwards (remove with `numerai-sandbox clean`).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the verdict (no statuses, progress or details).")
@click.option("--no-history", is_flag=True, help="Do not record this run in the run history (`numerai-sandbox runs`).")
def run(model: Path, python: str, force: bool, profile: str, extra_requirements: Path | None, data: str | None,
        data_version: str | None, benchmarks: str | None, memory: int, cpus: float, timeout: float,
        isolation: str, backend: str, output: Path | None, output_rejected: Path | None, as_json: bool,
        report_path: Path | None, html_path: Path | None, debug: bool, keep: bool, quiet: bool, no_history: bool) -> None:
    """Run MODEL (a cloudpickled predict function) in Numerai's conditions and print the verdict.

    Statuses are printed as they are entered: Pending, Running, Validating, then
    Success, Failed (the model's fault) or Error (not the model's fault).
    """
    from ..usecases.run_one import keep_report

    checked_inputs(model, data, benchmarks, {"--output": output, "--output-rejected": output_rejected,
                                             "--report": report_path, "--html": html_path})
    warm_settings()
    limits = Limits(memory_bytes=memory, cpus=cpus, timeout_seconds=timeout, isolation=isolation)
    request = RunRequest(model=model, python=python, profile=profile, data=data, data_version=data_version,
                         benchmarks=benchmarks, limits=limits, output=output, output_rejected=output_rejected,
                         debug=debug, keep=keep, extra_requirements=extra_requirements, force=force,
                         live=not as_json, leave_prestarted=True, backend=backend)
    report, console = judge(request, as_json=as_json, quiet=quiet)
    code = say_kept(keep_report(report, html=html_path, report_path=report_path, history_on=not no_history, warn=warn),
                    report, console)
    if as_json:
        click.echo(report.to_json())
    sys.exit(code)


# `check` takes every option of `run` that shapes a single run, defined once (here, on `run`).
check.params.extend(p for p in run.params if p.name in SHARED_RUN_OPTIONS)


# ---------------------------------------------------------------- inspect

@cli.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the inspection as one JSON object.")
def inspect_command(model: Path, as_json: bool) -> None:
    """Read MODEL without running any of it: the Python that made it, the modules and library
    versions it needs and which images have them, the callable, and risky references.

    Exit code 0 when MODEL is a complete pickle, 1 when it is not (2: usage error).
    """
    from ..usecases.inspect import inspect_file

    checked_inputs(model, None, None)
    inspected = inspect_file(model)
    if as_json:
        click.echo(json.dumps(inspected.facts, indent=2, default=str))
    else:
        click.echo("\n".join(inspected.lines))
    sys.exit(0 if inspected.is_pickle else 1)


# ---------------------------------------------------------------- shell, upload and doctor (own modules)

from .doctor import doctor  # noqa: E402 - after run, whose options shell and upload take
from .shell import shell_command  # noqa: E402
from .upload import upload_command, uploads  # noqa: E402

cli.add_command(shell_command(run))
cli.add_command(upload_command(run))
cli.add_command(uploads)
cli.add_command(doctor)


# ---------------------------------------------------------------- clean

@cli.command(cls=EngineCommand)
@click.option("--all", "everything", is_flag=True,
              help="Also runs still going in other processes and other users' containers.")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
def clean(everything: bool, dry_run: bool) -> None:
    """Remove what numerai-sandbox left behind: containers whose process is gone, your containers
    kept with --keep, your idle pre-started sandboxes, the local tags of a killed `images push`, and our
    temp dirs. Runs still going elsewhere are left alone (unless --all, which also removes everyone's
    pre-started sandboxes), and so is another NUMERAI_SANDBOX_NAMESPACE's work. The process sandbox's
    environments a killed build left, or whose Python is gone, go too (--all: every environment), with
    or without an engine.
    """
    from ..usecases.engine import clean as clean_up

    client = engine_if_any(sweep=False)  # clean sweeps itself, and says what went
    if client is None:
        click.echo("no Docker engine answers: only the process sandbox's environments are cleaned")
    try:
        removed, left = clean_up(client, everything, dry_run)
    finally:
        if client is not None:
            client.close()
    verb = "would remove" if dry_run else "removed"
    click.echo("\n".join(f"{verb} {r}" for r in removed) or "nothing to remove")
    for reason in left:
        click.echo(f"left {reason}")
    if left:
        click.echo("(`numerai-sandbox clean --all` removes those too)")


# ---------------------------------------------------------------- entry point

def _interrupt(signum, frame):
    from ..usecases.vocabulary import Interrupted

    raise Interrupted(signal.Signals(signum).name)


def main() -> None:
    return_memory_promptly()  # the peak memory of a run is what it holds, not what its allocators keep
    # A shell starts background jobs with SIGINT ignored, and Python then leaves it ignored; but an
    # interrupt must always stop the run and remove its container, however we were started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    if hasattr(signal, "SIGHUP"):  # not on Windows
        signal.signal(signal.SIGHUP, _interrupt)
    try:
        outcome = cli.main(prog_name="numerai-sandbox", standalone_mode=False)
    except click.ClickException as exc:  # a usage error, click's own or ours: --json still gets its object
        if json_requested():
            echo_error_object(exc.format_message(), exc.exit_code)
        exc.show()
        _exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted!", err=True)
        _exit(1)
    except SystemExit as exc:  # every command ends this way
        _exit(exc.code)
    except OSError as exc:  # a full disk (images fetch, data fetch, ...): the machine's error, said in one line
        _exit(disk_full(exc))
    _exit(outcome if isinstance(outcome, int) else 0)


def disk_full(exc: OSError) -> int:
    """Error/host_resources for a disk that refused a write: one line (and --json's object), exit code 3."""
    from ..support.disk import disk_failure

    message = disk_failure(exc)
    if message is None:
        raise exc
    if json_requested():
        echo_error_object(f"host_resources: {message}", 3)
    click.echo(f"numerai-sandbox: error: host_resources: {message}", err=True)
    return 3


def _exit(code) -> None:
    """Exit without tearing the interpreter down module by module (0.05-0.2 s with pyarrow and the
    Docker SDK loaded, paid by every command): our own threads are joined and atexit handlers run,
    the output is flushed, then the process ends. Everything of ours is already closed by then."""
    import atexit
    import threading

    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    if code is None:
        code = 0
    elif not isinstance(code, int):  # sys.exit("message"): printed, exit 1, as Python does
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)
