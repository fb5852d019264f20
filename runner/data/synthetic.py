"""Synthetic live data: v5-shaped, deterministic by seed, and shaped to fit the model it is made for.

The base mirrors a real v5.2 live era (see the contract doc): string ids indexed as
`id`, an `era` column, int8 feature bins 0-4 (1% missing values set to the middle bin),
all-NaN target columns, plus a matching live_benchmark_models.parquet and features.json.

A model selects its columns by name, so the data for a run carries the names the pickle
asks for (read statically, runner.inspection.columns): Numerai-shaped feature names take
the place of base names, keeping the v5.2 count of 2,748 features so that a model
selecting columns by position or prefix still sees Numerai's shape; targets and
benchmark columns it names are added. When Numerai's real features.json is cached,
its real names are the base and nothing is invented: a name Numerai does not have
stays missing, as it would be on Numerai. Each shape is generated once, cached by its names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from ..support.disk import refused_write
from ..support.paths import TEMP_PREFIX, cache_dir, changed, ensure_dir, file_lock, fingerprint

if TYPE_CHECKING:  # the generator imports them when it generates: a cached shape needs none of them
    import pandas as pd

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

# Syllables for readable, stable feature names (feature_<a><b>_<c><d>_<e><f>).
_SYLLABLES = ["ba", "ce", "di", "fo", "gu", "ha", "je", "ki", "lo", "mu", "na", "pe", "qui",
              "ro", "su", "ta", "ve", "wi", "xo", "zu"]


def feature_names(n: int) -> list[str]:
    """Deterministic, unique names that look like Numerai's (feature_<word>_<word>_<word>): name i spells
    its base-400 digits, each digit one two-syllable word."""
    k = len(_SYLLABLES)
    words = [_SYLLABLES[(d % k * 7) % k] + _SYLLABLES[(d // k * 7 + 3) % k] for d in range(k * k)]
    w = k * k
    return [f"feature_{words[i % w]}_{words[i // w % w]}_{words[i // (w * w) % w]}" for i in range(n)]


def target_names(n: int = 41) -> list[str]:
    names = ["target"]
    for horizon in (20, 60):
        for name in _TARGET_NAMES:
            names.append(f"target_{name}_{horizon}")
    return names[:n]


@dataclass(frozen=True)
class Layout:
    """The columns one synthetic dataset has, and where their names came from."""

    features: tuple[str, ...]
    targets: tuple[str, ...]
    benchmarks: tuple[str, ...]
    feature_sets: dict  # name -> list, as features.json writes them
    from_pickle: int = 0  # feature/target/benchmark names invented because the pickle asks for them
    named_by_pickle: int = 0  # Numerai-shaped feature names the pickle names (present in the data or not)
    real_names: str | None = None  # "v5.3": the base names are Numerai's real ones, from its features.json

    def key(self, rows: int, seed: int) -> str:
        text = json.dumps([SYNTH_VERSION, rows, seed, self.features, self.targets, self.benchmarks])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def base_layout(n_features: int = DEFAULT_FEATURES) -> Layout:
    names = feature_names(n_features)
    return Layout(tuple(names), tuple(target_names()), tuple(BENCHMARK_MODELS),
                  {"small": names[:SMALL_SET], "medium": names[:MEDIUM_SET], "all": names})


def real_layout(features_json: dict, version: str) -> Layout:
    """Numerai's real names and sets (its features.json), with the base targets when it lists none."""
    sets = {k: list(v) for k, v in features_json["feature_sets"].items() if isinstance(v, list)}
    names = sets.get("all") or sorted({n for v in sets.values() for n in v})
    targets = [t for t in features_json.get("targets", []) if isinstance(t, str)] or target_names()
    return Layout(tuple(names), tuple(targets), tuple(BENCHMARK_MODELS), sets, real_names=version)


def fit_to_model(base: Layout, features: list[str], targets: list[str], benchmarks: list[str]) -> Layout:
    """The base, carrying the names the model asks for.

    Real names (a cached features.json) are never extended: what Numerai lacks stays missing.
    Otherwise the pickle's feature names that the base lacks replace base names from the end
    (the count stays the same; names the model uses keep their place), and its targets and
    benchmark columns are added.
    """
    named = len(features)
    if base.real_names:
        return Layout(base.features, base.targets, tuple(dict.fromkeys([*base.benchmarks, *benchmarks])),
                      base.feature_sets, from_pickle=len([b for b in benchmarks if b not in base.benchmarks]),
                      named_by_pickle=named, real_names=base.real_names)
    have = set(base.features)
    new = [f for f in dict.fromkeys(features) if f not in have]
    if not new and all(t in base.targets for t in targets) and all(b in base.benchmarks for b in benchmarks):
        return Layout(base.features, base.targets, base.benchmarks, base.feature_sets, named_by_pickle=named)
    wanted = set(features)
    unused_from_the_end = [n for n in reversed(base.features) if n not in wanted]
    dropped = set(unused_from_the_end[:len(new)])
    names = [n for n in base.features if n not in dropped] + new
    new_targets = [t for t in dict.fromkeys(targets) if t not in base.targets]
    new_benchmarks = [b for b in dict.fromkeys(benchmarks) if b not in base.benchmarks]
    sets = {"small": names[:SMALL_SET], "medium": names[:MEDIUM_SET], "all": names}
    return Layout(tuple(names), (*base.targets, *new_targets), (*base.benchmarks, *new_benchmarks), sets,
                  from_pickle=len(new) + len(new_targets) + len(new_benchmarks), named_by_pickle=named)


def synthesize(out_dir: Path, rows: int = DEFAULT_ROWS, n_features: int = DEFAULT_FEATURES,
               seed: int = DEFAULT_SEED, layout: Layout | None = None) -> Path:
    """Write live.parquet, live_benchmark_models.parquet and features.json into out_dir."""
    import numpy as np
    import pandas as pd

    if rows < 1 or n_features < 1:
        raise ValueError("rows and features must be at least 1")
    layout = layout or base_layout(n_features)
    rng = np.random.default_rng(seed)
    ids = pd.Index([f"n{v:015x}" for v in rng.choice(16**15, size=rows, replace=False)], name="id")
    n = len(layout.features)
    # Bins 0-4, mostly uniform; about 1% missing values set to the middle bin, as Numerai does.
    bins = rng.integers(0, 5, size=(rows, n), dtype=np.int8)
    bins[rng.random((rows, n)) < 0.01] = 2
    columns: dict[str, object] = {"era": np.array(["X"] * rows, dtype=object)}
    columns.update({name: bins[:, j] for j, name in enumerate(layout.features)})
    nan = np.full(rows, np.nan, dtype=np.float32)
    columns.update({t: nan for t in layout.targets})
    live = pd.DataFrame(columns, index=ids)

    bench = pd.DataFrame({"era": np.array(["X"] * rows, dtype=object)}, index=ids)
    for name in layout.benchmarks:
        bench[name] = ((rng.permutation(rows) + 0.5) / rows).astype(np.float32)

    ensure_dir(out_dir)
    write_parquet(live, out_dir / "live.parquet")
    write_parquet(bench, out_dir / "live_benchmark_models.parquet")
    (out_dir / "features.json").write_text(json.dumps(
        {"feature_sets": layout.feature_sets, "targets": list(layout.targets)}, indent=1))
    return out_dir


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Write with pandas metadata any pandas 2.x in the images reads back as Numerai's files do.

    Newer pandas records string columns with dtypes older pandas does not know; we
    record them as plain object strings, like the pandas that writes Numerai's files.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=True)
    fields = [pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f
              for f in table.schema]
    meta = json.loads(table.schema.metadata[b"pandas"])
    for column in meta["columns"]:
        if column["pandas_type"] in ("unicode", "string", "object", "str") and column["numpy_type"] != "object":
            column.update(pandas_type="unicode", numpy_type="object", metadata=None)
    schema = pa.schema(fields, metadata={b"pandas": json.dumps(meta).encode()})
    pq.write_table(table.cast(schema), path, compression="snappy")


def cached(layout: Layout, rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED) -> Path:
    """The directory holding this layout's data, generated on first use (once, whoever asks first), whole
    (made in a staging folder, renamed into place) and with its files' fingerprints; made again when a file
    was truncated or altered since (see `damaged`)."""
    key = f"synthetic-v{SYNTH_VERSION}-{layout.key(rows, seed)}"
    final = cache_dir() / "data" / key
    if (final / FINGERPRINTS).exists() and not damaged(final):
        return final  # the common case, without the lock: a stat per file
    with file_lock(f"data-{key}"):
        if not (final / "features.json").exists() or damaged(final):
            ensure_dir(final.parent)
            staging = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + "data-", dir=final.parent))
            try:
                synthesize(staging, rows, len(layout.features), seed, layout)
                _fingerprint(staging)
                if final.exists():
                    shutil.rmtree(final)
                staging.rename(final)
            except OSError as exc:
                refused = refused_write(exc)
                if refused is None or refused.filename:
                    raise
                raise OSError(refused.errno, refused.strerror, str(final)) from exc  # pyarrow names no file
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        elif not (final / FINGERPRINTS).exists():  # made before fingerprints were kept, and it reads: keep it
            with contextlib.suppress(OSError):  # a full or read-only cache: judged by reading it next time too
                _fingerprint(final)
    return final


FINGERPRINTS = "files.json"  # {file name: runner.support.paths.fingerprint} of the data in a cached folder
DATA_FILES = ("live.parquet", "live_benchmark_models.parquet", "features.json")


def _fingerprint(folder: Path) -> None:
    partial = folder / f".{FINGERPRINTS}.{os.getpid()}"
    try:
        partial.write_text(json.dumps({name: fingerprint(folder / name) for name in DATA_FILES}))
        partial.replace(folder / FINGERPRINTS)
    finally:
        partial.unlink(missing_ok=True)


def damaged(folder: Path) -> list[str]:
    """The files of a cached folder that are not what was made (truncated, altered, missing), as words; a
    folder made before fingerprints were kept is judged by whether its parquet files read."""
    try:
        recorded = json.loads((folder / FINGERPRINTS).read_text())
    except FileNotFoundError:
        return _unreadable(folder)
    except (OSError, ValueError):
        return [f"{folder / FINGERPRINTS} cannot be read"]
    found = []
    for name in DATA_FILES:
        why = changed(folder / name, recorded.get(name) or {}) if isinstance(recorded, dict) else "is not recorded"
        if why is not None:
            found.append(f"{folder / name} {why}")
    return found


def _unreadable(folder: Path) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    found = []
    for name in DATA_FILES[:2]:
        try:
            pq.read_schema(folder / name)
        except (OSError, ValueError, pa.ArrowException) as exc:
            found.append(f"{folder / name} cannot be read ({exc})")
    return found


def default_dir() -> Path:
    """The base synthetic data (what `make demo` and the test models are trained on)."""
    return cached(base_layout())


def benchmarks_for(live: Path, read_ids, names: tuple[str, ...] = tuple(BENCHMARK_MODELS)) -> Path:
    """Synthetic benchmark predictions for a live file's ids (cached by the file's identity and the names);
    `read_ids(live)` reads the ids, only when they are not cached yet."""
    stat = live.stat()
    key = hashlib.sha256(f"{live.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{','.join(names)}".encode()
                         ).hexdigest()[:16]
    out = cache_dir() / "data" / f"benchmarks-for-{key}.parquet"
    with file_lock(f"bench-{key}"):
        if not out.exists():
            import numpy as np
            import pyarrow as pa

            from ..support import arrow
            from .parquet import write_indexed

            ids = read_ids(live)  # Arrow strings; the table is built without pandas (this is on `run`'s path)
            rng = np.random.default_rng(int(key, 16) % 2**32)
            columns = {"id": ids, "era": arrow.repeated("X", len(ids))}
            for name in names:
                columns[name] = arrow.from_numpy(((rng.permutation(len(ids)) + 0.5) / max(len(ids), 1)
                                                  ).astype(np.float32))
            ensure_dir(out.parent)
            tmp = out.with_suffix(f".{os.getpid()}.tmp")
            write_indexed(pa.table(columns), tmp)
            tmp.rename(out)
    return out
