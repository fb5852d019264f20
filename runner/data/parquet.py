"""Parquet files that pandas reads back indexed by a column, written from Arrow without pandas.

Numerai's files are DataFrames indexed by `id`, and so are the ones we write for others to read
(benchmark predictions for a local live file, `run --output x.parquet`). pandas learns the index
from the "pandas" schema metadata, which `Table.from_pandas` would write but needs pandas, so the
host's run path writes it itself. Text columns are recorded as plain object strings, which every
pandas 2.x in the images reads (newer pandas' own string dtypes are unknown to older ones).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

FLOAT_NAMES = {"halffloat": "float16", "float": "float32", "double": "float64"}  # Arrow's names -> numpy's


def _pandas_type(kind: "pa.DataType") -> tuple[str, str]:
    """(pandas_type, numpy_type) of the metadata for an Arrow type."""
    import pyarrow as pa

    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "unicode", "object"
    if pa.types.is_null(kind):
        return "empty", "object"
    if pa.types.is_boolean(kind):
        return "bool", "bool"
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        name = FLOAT_NAMES.get(str(kind), str(kind))  # int8..uint64 are named alike
        return name, name
    return "object", "object"


def write_indexed(table: "pa.Table", path: Path, index: str = "id") -> None:
    """Write `table` so that pandas.read_parquet gives a DataFrame indexed by its `index` column."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fields = [pa.field(f.name, pa.string()) if pa.types.is_large_string(f.type) else f for f in table.schema]
    columns = [{"name": f.name, "field_name": f.name, "pandas_type": _pandas_type(f.type)[0],
                "numpy_type": _pandas_type(f.type)[1], "metadata": None} for f in fields]
    meta = {"index_columns": [index],
            "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                                "metadata": {"encoding": "UTF-8"}}],
            "columns": columns, "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__}}
    schema = pa.schema(fields, metadata={b"pandas": json.dumps(meta).encode()})
    pq.write_table(table.cast(schema), path, compression="snappy")
