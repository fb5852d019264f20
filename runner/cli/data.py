"""`numerai-sandbox data`: the live data a run uses."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..support.units import human_bytes
from ..usecases.vocabulary import UsageError
from .common import InputError, fail

@click.group()
def data() -> None:
    """Live data: fetch Numerai's current round (online), or write synthetic data.

    \b
    A run without --data uses, in this order: the newest round `data fetch` cached,
    else synthetic v5-shaped data carrying the column names the pickle asks for.
    """


@data.command("synth")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              metavar="DIR",
              help="Directory for live.parquet, live_benchmark_models.parquet and features.json.")
@click.option("--rows", type=click.IntRange(min=1), default=6720, show_default=True, metavar="N",
              help="Rows (stocks) in the live era.")
@click.option("--features", type=click.IntRange(min=1), default=2748, show_default=True, metavar="N",
              help="Feature columns (v5.2's 'all' set has 2,748).")
@click.option("--seed", type=int, default=0, show_default=True, metavar="N",
              help="Random seed: the same seed makes the same files.")
@click.option("--force", is_flag=True, help="Overwrite existing files in --out.")
def data_synth(out: Path, rows: int, features: int, seed: int, force: bool) -> None:
    """Write synthetic live data shaped like a v5.2 live era (deterministic by seed)."""
    from ..usecases.data import synthesize

    started = time.monotonic()
    try:
        written = synthesize(out, rows, features, seed, force)
    except UsageError as exc:
        raise InputError(str(exc)) from exc
    click.echo(f"wrote synthetic v5-shaped live data ({rows:,} rows x {features:,} features, seed {seed}) to "
               f"{out} in {time.monotonic() - started:.1f}s:")
    for path in written:
        click.echo(f"  {path} ({human_bytes(path.stat().st_size)})")




@data.command("fetch")
@click.option("--dataset-version", metavar="VERSION",
              help="Numerai dataset version, e.g. v5.3 (default: the newest that numerapi lists).")
def data_fetch(dataset_version: str | None) -> None:
    """Download the current round's live.parquet, live_benchmark_models.parquet and features.json
    (the only data step that uses the network); runs without --data then use them."""
    from ..support.console import Console
    from ..usecases.data import FetchFailed, fetch_round

    console = Console(stream=click.get_text_stream("stderr"))
    started = time.monotonic()
    try:
        fetched, downloaded = fetch_round(dataset_version, console.progress)
    except UsageError as exc:
        raise InputError(str(exc)) from exc
    except FetchFailed as exc:
        fail(f"data_unavailable: {exc}")
    what = "fetched" if downloaded else "already cached:"
    click.echo(f"{what} {fetched.describe()} in {time.monotonic() - started:.1f}s")
    for path in (fetched.live, fetched.benchmarks, fetched.features):
        if path is not None:
            click.echo(f"  {path} ({human_bytes(path.stat().st_size)})")
