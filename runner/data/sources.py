"""Which live data a run uses, and what the host knows about it.

In order: `--data` when given (a local file, a local directory holding live.parquet, or a
numerapi dataset name such as v5.2/live.parquet, downloaded); else the newest real round
that `data fetch` cached (of `--data-version`, when given); else synthetic data shaped to
fit the model (runner.data.synthetic). The host reads the ids (to validate against) and
the column names (to explain a missing column) from the files themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

DATASET_NAME = re.compile(r"^v\d+(\.\d+)*/[\w.-]+\.parquet$")
LIVE, BENCHMARKS, FEATURES = "live.parquet", "live_benchmark_models.parquet", "features.json"


class DataError(Exception):
    """The live data cannot be used; `usage` says whether it is the caller's input (exit 2) or not (Error)."""

    def __init__(self, message: str, usage: bool):
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class Wanted:
    """The column names a model asks for, as static inspection found them in the pickle."""

    features: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    benchmarks: tuple[str, ...] = ()


@dataclass(frozen=True)
class LiveData:
    live: Path
    benchmarks: Path
    source: str  # "synthetic", "round" (a fetched Numerai round), "local" or "numerapi"
    description: str
    features_json: Path | None = None
    names_checked: bool = True  # the column names are Numerai's (real data, or its features.json)
    from_pickle: int = 0  # columns invented because the pickle names them (synthetic only)
    named_by_pickle: int = 0  # Numerai-shaped feature names the pickle names
    details: dict = field(default_factory=dict)  # round, version, age, real_names...

    def to_report(self, rows: int) -> dict:
        return {"source": self.source, "description": self.description, "live": str(self.live),
                "benchmarks": str(self.benchmarks), "rows": rows, "names_checked": self.names_checked,
                "columns_from_pickle": self.from_pickle, "features_named_by_pickle": self.named_by_pickle,
                **self.details}


# ---------------------------------------------------------------- reading files

def _schema(path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_schema(path)
    except (OSError, ValueError, pa.ArrowException) as exc:  # ValueError: pyarrow's own, and names not UTF-8
        raise DataError(f"{path} is not a readable parquet file: {exc}", usage=True) from exc


def _schema_names(path: Path) -> list[str]:
    return list(_schema(path).names)


def _check_ids(path: Path):
    """The schema, once it is known to have an `id` column the rules can compare as strings."""
    import pyarrow as pa

    schema = _schema(path)
    if "id" not in schema.names:
        raise DataError(f"{path} has no `id` index or column; Numerai's live data is indexed by id", usage=True)
    kind = schema.field("id").type
    kind = kind.value_type if pa.types.is_dictionary(kind) else kind
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)):
        raise DataError(f"{path}: its `id` column holds {kind} values; Numerai's ids are strings", usage=True)
    return schema


def live_ids(path: Path):
    """The `id` values of a live (or benchmark) parquet file, read without the feature columns: one Arrow
    string array (a million ids are ~20 MB there, ~80 MB as Python strings)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _check_ids(path)
    try:  # ParquetFile.read, not read_table: read_table has pyarrow import pandas to ask about the file
        with pq.ParquetFile(path) as parquet:
            ids = parquet.read(columns=["id"]).column("id").combine_chunks()
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DataError(f"{path}: its `id` column cannot be read: {exc}", usage=True) from exc
    finally:
        pa.default_memory_pool().release_unused()  # parquet's decoding buffers, back to the system now
    return ids if ids.type == pa.string() else ids.cast(pa.string())


def live_columns(path: Path) -> list[str]:
    """The columns the model sees in live_features (the id index excluded)."""
    return [name for name in _schema_names(path) if name not in ("id", "__index_level_0__")]


def check_parquet(path: Path, what: str) -> None:
    import os

    if not path.is_file():
        raise DataError(f"{what} {path} does not exist", usage=True)
    if not os.access(path, os.R_OK):
        raise DataError(f"{what} {path} is not readable", usage=True)
    _check_ids(path)  # the footer and the id column's type; the ids themselves are read once, by the run


# ---------------------------------------------------------------- what --data names

def classify(value: str, option: str = "--data") -> str:
    """"dir", "file" or "dataset"; a usage error for a value that is none of them (e.g. a typo of a path)."""
    path = Path(value).expanduser()
    if path.is_dir():
        return "dir"
    if path.exists():
        return "file"
    pathlike = value.startswith(("./", "../", "/", "~")) or value.endswith(("/", "\\"))
    parent = path.parent
    if DATASET_NAME.match(value) and not pathlike and not (parent != Path(".") and parent.is_dir()):
        return "dataset"
    if parent != Path(".") and parent.is_dir():
        raise DataError(f"{option} {value}: no such file in the local directory {parent}/ (a numerapi dataset "
                        "name is used only when no local directory of that name exists)", usage=True)
    raise DataError(f"{option} {value}: no such file or directory (nor a numerapi dataset like "
                    "v5.2/live.parquet)", usage=True)


def check_option(value: str, option: str) -> Path | None:
    """Judge a --data/--benchmarks value before anything runs; the local path it names, if any."""
    kind = classify(value, option)
    if kind == "dataset":
        return None
    path = Path(value).expanduser()
    if kind == "dir":
        if option != "--data":
            raise DataError(f"{option} {value} is a directory; give the parquet file", usage=True)
        path = path / LIVE
    try:
        check_parquet(path, f"{option} file")
    except DataError as exc:
        raise DataError(f"{option}: {exc}", usage=True) from exc
    return path.resolve()


# ---------------------------------------------------------------- resolving

def resolve(data: str | None, benchmarks: str | None, data_version: str | None = None,
            wanted: Wanted | None = None) -> LiveData:
    """Turn the options into files on this machine (downloading only for a numerapi dataset name)."""
    from . import numerai

    wanted = wanted or Wanted()
    if data is not None:
        return _given(data, benchmarks, wanted)
    fetched = numerai.newest_round(data_version)
    if fetched is not None and fetched.damaged():
        raise DataError(f"{fetched.damaged()[0]} since `data fetch` downloaded it (round {fetched.number}, "
                        f"{fetched.version}): `numerai-sandbox data fetch` downloads the round again", usage=False)
    if fetched is not None:
        bench = _bench_option(benchmarks) or fetched.benchmarks or _synthetic_benchmarks(fetched.live, wanted)
        return LiveData(fetched.live, bench, "round", fetched.describe(), fetched.features, names_checked=True,
                        details={"round": fetched.number, "version": fetched.version, "fetched": fetched.age()})
    return _synthetic(benchmarks, data_version, wanted)


def _given(data: str, benchmarks: str | None, wanted: Wanted) -> LiveData:
    from . import numerai

    kind = classify(data, "--data")
    if kind == "dataset":
        try:
            live = numerai.download_dataset(data)
            bench = _bench_option(benchmarks) or numerai.download_dataset(
                data.rsplit("/", 1)[0] + "/" + BENCHMARKS)
        except numerai.FetchError as exc:
            raise DataError(str(exc), usage=False) from exc
        return LiveData(live, bench, "numerapi", f"numerapi {data} (current round)",
                        details={"version": data.split("/", 1)[0]})
    path = Path(data).expanduser().resolve()
    folder = path if kind == "dir" else None
    live = check_option(data, "--data")
    bench = _bench_option(benchmarks)
    if bench is None and folder is not None and (folder / BENCHMARKS).is_file():
        bench = check_option(str(folder / BENCHMARKS), "--benchmarks")
    features = folder / FEATURES if folder is not None and (folder / FEATURES).is_file() else None
    return LiveData(live, bench or _synthetic_benchmarks(live, wanted), "local", f"local {data}", features)


def _bench_option(value: str | None) -> Path | None:
    if value is None:
        return None
    from . import numerai

    if classify(value, "--benchmarks") == "dataset":
        try:
            return numerai.download_dataset(value)
        except numerai.FetchError as exc:
            raise DataError(str(exc), usage=False) from exc
    return check_option(value, "--benchmarks")


def _synthetic_benchmarks(live: Path, wanted: Wanted) -> Path:
    from . import synthetic

    names = tuple(dict.fromkeys([*synthetic.BENCHMARK_MODELS, *wanted.benchmarks]))
    return synthetic.benchmarks_for(live, live_ids, names)


def _synthetic(benchmarks: str | None, data_version: str | None, wanted: Wanted) -> LiveData:
    from . import numerai, synthetic

    known = numerai.newest_features(data_version)
    if known is not None:
        version, path = known
        try:
            base = synthetic.real_layout(numerai.read_features(path), version)
        except numerai.FetchError as exc:
            raise DataError(str(exc), usage=False) from exc
    else:
        base = synthetic.base_layout()
    layout = synthetic.fit_to_model(base, list(wanted.features), list(wanted.targets), list(wanted.benchmarks))
    folder = synthetic.cached(layout)
    rows, n = synthetic.DEFAULT_ROWS, len(layout.features)
    if layout.real_names:
        description = (f"synthetic live data with Numerai's {layout.real_names} feature names ({rows:,} rows x "
                       f"{n:,} features, from its cached features.json)")
    elif layout.named_by_pickle:
        description = (f"synthetic v5-shaped live data ({rows:,} rows x {n:,} features; "
                       f"{layout.named_by_pickle:,} feature names from the pickle"
                       + (f", {layout.from_pickle:,} of them new" if layout.from_pickle else "") + ")")
    else:
        description = f"synthetic v5-shaped live data ({rows:,} rows x {n:,} features, seed {synthetic.DEFAULT_SEED})"
    bench = _bench_option(benchmarks) or folder / BENCHMARKS
    return LiveData(folder / LIVE, bench, "synthetic", description, folder / FEATURES,
                    names_checked=bool(layout.real_names), from_pickle=layout.from_pickle,
                    named_by_pickle=layout.named_by_pickle,
                    details={"real_names": layout.real_names} if layout.real_names else {})
