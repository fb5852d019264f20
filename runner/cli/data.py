"""`numerai-sandbox data`: the live data a run uses."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..units import human_bytes
from .common import InputError

@click.group()
def data() -> None:
    """Live data: make the synthetic v5-shaped default."""


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


