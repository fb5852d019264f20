"""Live data for a run: the synthetic v5-shaped default, a local file, or a numerapi download.

The synthetic data mirrors the shape of a real v5.2 live era (see the contract
doc): string ids indexed as `id`, an `era` column, int8 feature bins 0-4,
all-NaN target columns, plus a matching live_benchmark_models.parquet and
features.json. It is deterministic by seed and generated once into the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .paths import TEMP_PREFIX, cache_dir, ensure_dir, file_lock

DEFAULT_ROWS = 6720  # a December 2025 live era
DEFAULT_FEATURES = 2748  # v5.2 "all" feature set
DEFAULT_SEED = 0
SMALL_SET, MEDIUM_SET = 42, 780
SYNTH_VERSION = 1  # bump when the generator's output changes

BENCHMARK_MODELS = [
    "v52_lgbm_ender20", "v52_lgbm_cyrusd20", "v52_lgbm_teager2b60", "v52_lgbm_jasper60",
    "v52_lgbm_agnes20", "v52_lgbm_claudia20", "v52_lgbm_ralph20", "v52_lgbm_victor20",
]
_TARGET_NAMES = [
    "cyrusd", "teager2b", "ender", "jasper", "agnes", "claudia", "ralph", "victor", "waldo",
    "xerxes", "sam", "caroline", "alpha", "bravo", "charlie", "delta", "echo", "jeremy", "tyler",
    "rowan",
]
DATASET_NAME = re.compile(r"^v\d+(\.\d+)*/[\w.-]+\.parquet$")

# Syllables for readable, stable feature names (feature_<a><b>_<c><d>_<e><f>).
_SYLLABLES = ["ba", "ce", "di", "fo", "gu", "ha", "je", "ki", "lo", "mu", "na", "pe", "qui",
              "ro", "su", "ta", "ve", "wi", "xo", "zu"]


class DataError(Exception):
    """The live data cannot be used; `usage` says whether it is the caller's input."""

    def __init__(self, message: str, usage: bool):
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class LiveData:
    live: Path
    benchmarks: Path
    source: str  # "synthetic", "local" or "numerapi"
    description: str
    features_json: Path | None = None


# ---------------------------------------------------------------- synthetic data

def feature_names(n: int) -> list[str]:
    """Deterministic, unique names that look like Numerai's (feature_<word>_<word>_<word>)."""
    k = len(_SYLLABLES)
    names = []
    for i in range(n):
        digits = [(i // k**p) % k for p in range(6)]
        words = ["".join(_SYLLABLES[(d * 7 + j * 3) % k] for j, d in enumerate(digits[w * 2:w * 2 + 2]))
                 for w in range(3)]
        names.append("feature_" + "_".join(words))
    return names


def target_names(n: int = 41) -> list[str]:
    names = ["target"]
    for horizon in (20, 60):
        for name in _TARGET_NAMES:
            names.append(f"target_{name}_{horizon}")
    return names[:n]


def synthesize(out_dir: Path, rows: int = DEFAULT_ROWS, n_features: int = DEFAULT_FEATURES,
               seed: int = DEFAULT_SEED) -> LiveData:
    """Write live.parquet, live_benchmark_models.parquet and features.json into out_dir."""
    if rows < 1 or n_features < 1:
        raise DataError("rows and features must be at least 1", usage=True)
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"n{v:015x}" for v in rng.choice(16**15, size=rows, replace=False)], name="id")
    names = feature_names(n_features)
    # Bins 0-4, mostly uniform; about 1% missing values set to the middle bin, as Numerai does.
    bins = rng.integers(0, 5, size=(rows, n_features), dtype=np.int8)
    bins[rng.random((rows, n_features)) < 0.01] = 2
    columns: dict[str, object] = {"era": np.array(["X"] * rows, dtype=object)}
    columns.update({name: bins[:, j] for j, name in enumerate(names)})
    targets = target_names()
    nan = np.full(rows, np.nan, dtype=np.float32)
    columns.update({t: nan for t in targets})
    live = pd.DataFrame(columns, index=ids)

    bench = pd.DataFrame({"era": np.array(["X"] * rows, dtype=object)}, index=ids)
    for name in BENCHMARK_MODELS:
        bench[name] = ((rng.permutation(rows) + 0.5) / rows).astype(np.float32)

    ensure_dir(out_dir)
    _write_parquet(live, out_dir / "live.parquet")
    _write_parquet(bench, out_dir / "live_benchmark_models.parquet")
    feature_sets = {"small": names[:SMALL_SET], "medium": names[:MEDIUM_SET], "all": names}
    (out_dir / "features.json").write_text(json.dumps(
        {"feature_sets": feature_sets, "targets": targets}, indent=1))
    return LiveData(out_dir / "live.parquet", out_dir / "live_benchmark_models.parquet",
                    "synthetic", f"synthetic v5-shaped live data ({rows:,} rows x {n_features:,} features, "
                    f"seed {seed})", out_dir / "features.json")


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write with pandas metadata any pandas 2.x in the images reads back as Numerai's files do.

    Newer pandas records string columns with dtypes older pandas does not know; we
    record them as plain object strings, like the pandas that writes Numerai's files.
    """
    table = pa.Table.from_pandas(frame, preserve_index=True)
    fields = [pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f
              for f in table.schema]
    meta = json.loads(table.schema.metadata[b"pandas"])
    for column in meta["columns"]:
        if column["pandas_type"] in ("unicode", "string", "object", "str") and column["numpy_type"] != "object":
            column.update(pandas_type="unicode", numpy_type="object", metadata=None)
    schema = pa.schema(fields, metadata={b"pandas": json.dumps(meta).encode()})
    pq.write_table(table.cast(schema), path, compression="snappy")


def synthetic_default(rows: int = DEFAULT_ROWS, n_features: int = DEFAULT_FEATURES,
                      seed: int = DEFAULT_SEED) -> LiveData:
    """The cached synthetic live data for these parameters, generated on first use."""
    key = f"synthetic-v{SYNTH_VERSION}-r{rows}-f{n_features}-s{seed}"
    final = cache_dir() / "data" / key
    with file_lock(f"data-{key}"):
        if not (final / "features.json").exists():
            ensure_dir(final.parent)
            staging = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + "data-", dir=final.parent))
            try:
                synthesize(staging, rows, n_features, seed)
                if final.exists():
                    shutil.rmtree(final)
                staging.rename(final)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return LiveData(final / "live.parquet", final / "live_benchmark_models.parquet", "synthetic",
                    f"synthetic v5-shaped live data ({rows:,} rows x {n_features:,} features, seed {seed})",
                    final / "features.json")


# ---------------------------------------------------------------- reading and resolving

def live_ids(path: Path) -> pd.Series:
    """The `id` values of a live (or benchmark) parquet file, read without the feature columns."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path} is not a readable parquet file: {exc}", usage=True) from exc
    if "id" not in schema.names:
        raise DataError(f"{path} has no `id` index or column; Numerai's live data is indexed by id",
                        usage=True)
    table = pq.read_table(path, columns=["id"])
    return pd.Series(table.column("id").to_pylist(), name="id", dtype=object)


def _check_parquet(path: Path, what: str) -> None:
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist", usage=True)
    if not os.access(path, os.R_OK):
        raise DataError(f"{what} {path} is not readable", usage=True)
    live_ids(path)


def synthesize_benchmarks_for(live: Path) -> Path:
    """Synthetic benchmark predictions matching a local live file's ids (cached by file identity)."""
    stat = live.stat()
    key = hashlib.sha256(f"{live.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    out = cache_dir() / "data" / f"benchmarks-for-{key}.parquet"
    with file_lock(f"bench-{key}"):
        if not out.exists():
            ids = pd.Index(live_ids(live).astype(str), name="id")
            rng = np.random.default_rng(int(key, 16) % 2**32)
            bench = pd.DataFrame({"era": np.array(["X"] * len(ids), dtype=object)}, index=ids)
            for name in BENCHMARK_MODELS:
                bench[name] = ((rng.permutation(len(ids)) + 0.5) / max(len(ids), 1)).astype(np.float32)
            ensure_dir(out.parent)
            tmp = out.with_suffix(f".{os.getpid()}.tmp")
            _write_parquet(bench, tmp)
            tmp.rename(out)
    return out


def download(dataset: str) -> Path:
    """Download a numerapi dataset (e.g. v5.2/live.parquet) into the cache, by round."""
    host = "api-tournament.numer.ai"
    try:
        socket.create_connection((host, 443), timeout=10).close()
    except OSError as exc:
        raise DataError(f"cannot download {dataset}: {host} is unreachable ({exc.strerror or exc}); "
                        "is this machine online? Use --data PATH for a local file.", usage=False) from exc
    logging.getLogger("numerapi").setLevel(logging.CRITICAL)  # its errors become ours, said once
    try:
        from numerapi import NumerAPI

        api = NumerAPI()
        round_number = api.get_current_round()
        out = cache_dir() / "numerai" / f"round-{round_number}" / dataset
        if not out.exists():
            ensure_dir(out.parent)
            tmp = out.with_name(out.name + f".{os.getpid()}.part")
            api.download_dataset(dataset, str(tmp))
            tmp.rename(out)
        return out
    except Exception as exc:  # numerapi raises many kinds; all mean "not obtainable now"
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot download {dataset} with numerapi ({first_line}); "
                        "is this machine online? Use --data PATH for a local file.",
                        usage=False) from exc


def resolve(data: str | None, benchmarks: str | None) -> LiveData:
    """Turn the --data/--benchmarks options into files on this machine."""
    if data is None:
        live = synthetic_default()
        if benchmarks is None:
            return live
        return LiveData(live.live, _resolve_one(benchmarks, "--benchmarks"), live.source,
                        live.description, live.features_json)
    live_path = _resolve_one(data, "--data")
    source = "numerapi" if _is_dataset(data) else "local"
    if benchmarks is not None:
        bench_path = _resolve_one(benchmarks, "--benchmarks")
    elif source == "numerapi":
        bench_path = _resolve_one(data.rsplit("/", 1)[0] + "/live_benchmark_models.parquet", "--benchmarks")
    else:
        bench_path = synthesize_benchmarks_for(live_path)
    return LiveData(live_path, bench_path, source, f"{source} {data}")


def _is_dataset(value: str) -> bool:
    return not Path(value).exists() and bool(DATASET_NAME.match(value))


def _resolve_one(value: str, option: str) -> Path:
    if _is_dataset(value):
        return download(value)
    path = Path(value).expanduser()
    _check_parquet(path, f"{option} file")
    return path.resolve()
