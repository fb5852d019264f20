"""`data`: the live data runs use — Numerai's current round fetched (online), or synthetic data written out."""

from __future__ import annotations

from pathlib import Path

from ..run import UsageError

SYNTHETIC_FILES = ("live.parquet", "live_benchmark_models.parquet", "features.json")


def synthesize(out: Path, rows: int, features: int, seed: int, force: bool = False) -> list[Path]:
    """Synthetic live data shaped like a v5.2 live era (deterministic by seed) into `out`; the files written.
    UsageError when it would overwrite files and `force` is not given."""
    from ..data import synthetic

    existing = [n for n in SYNTHETIC_FILES if (out / n).exists()]
    if existing and not force:
        raise UsageError(f"{', '.join(existing)} already in {out}; pass --force to overwrite")
    synthetic.synthesize(out, rows, features, seed)
    return [out / name for name in SYNTHETIC_FILES]


class FetchFailed(Exception):
    """Numerai's round could not be fetched (offline, refused): Error/data_unavailable."""


def fetch_round(dataset_version: str | None, progress):
    """The current round's files (downloaded unless cached already): (the round, whether it was downloaded)."""
    from ..data import numerai

    if dataset_version is not None and not numerai.VERSION.match(dataset_version):
        raise UsageError(f"--dataset-version {dataset_version!r} is not a dataset version like v5.3")
    try:
        return numerai.fetch_round(dataset_version, progress)
    except numerai.FetchError as exc:
        raise FetchFailed(str(exc)) from exc
