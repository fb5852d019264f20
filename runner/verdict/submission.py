"""The predictions CSV read the way Numerai reads it, without pandas, and written back out.

numerai-predict writes the model's DataFrame with `to_csv(index=True)`; Numerai's upload reads
those bytes with a plain `pandas.read_csv`. The host reads the same bytes with pyarrow's CSV
reader (a million rows in a tenth of a second, no Python object per value), set up so that
nothing that can change a verdict differs from pandas' defaults:

- NA strings: pandas' list, in every column, text columns too (pyarrow's own list lacks "None"
  and "<NA>", and leaves text alone); quoted or not, as pandas;
- booleans: True/TRUE/true and False/FALSE/false only ("0" and "1" stay numbers, as in pandas);
- types are inferred from all rows, like pandas (a later block widens a column's type where it
  needs to), and a column pandas keeps as text stays text: dates and times, and NaN spellings
  pandas' number parser refuses ("NAN", "+nan");
- the `id` column is text (the rules compare ids as strings, as numerai-tools does);
- column names as pandas makes them: a blank one is "Unnamed: i", a repeated one "name.1";
- rows: blank and whitespace-only lines are skipped; a row with fewer fields than the header is
  filled with NaN (it is counted, and counts as a row with NaN); a row with more is an error,
  except pandas' implicit index: when the first row has one field more than the header, that
  first field is an unnamed index numerai-tools never sees;
- what pandas cannot read at all (no header, bytes that are not UTF-8, a long row) sets `error`;
  the rules then report the CSV as unreadable.

Where exact parity is impossible, the verdict still is the same: pandas turns an all-numeric id
column into numbers ("01" becomes "1"), this reader keeps the text. Numerai's ids are never
numbers, so such a column holds no live id either way (missing_ids). Integers beyond 64 bits are
Python ints (or text) to pandas and huge floats here: outside [0, 1] either way. Two kinds of bytes
to_csv never writes are stricter here (tests/test_validate.py, DIFFERENT): an unterminated quote,
an error to pandas, swallows the rest of the file into one field, which then fails a rule (a short
row, or text where a number belongs); a quoted number with a newline in it is text here, a number
to pandas.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

# pandas.read_csv's default na_values (pandas._libs.parsers.STR_NA_VALUES).
PANDAS_NA = ("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
             "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null")
PANDAS_TRUE, PANDAS_FALSE = ("True", "TRUE", "true"), ("False", "FALSE", "false")
ID_COLUMN = "id"
IMPLICIT_INDEX = "\x00implicit index"  # the name pyarrow gives the first field in pandas' implicit-index case
BLOCK = 1 << 20  # what pyarrow parses at a time
EXAMPLES = 5
HEAD_BYTES = 1 << 20


@dataclass
class Submission:
    """The CSV's bytes (what Numerai uploads) and, when they read, its columns as pandas reads them."""

    payload: bytes | bytearray | None  # None once staged on disk or let go
    table: "pa.Table | None" = None  # columns named and typed as pandas.read_csv makes them
    error: str | None = None  # why pandas could not read it
    short_rows: Counter = field(default_factory=Counter)  # {fields present: rows} of rows pandas fills with NaN
    short_labels: list[str] = field(default_factory=list)  # the first field of the first few of them
    notes: list[str] = field(default_factory=list)
    staged: Path | None = None  # the bytes in a hidden file beside where they may be written (stage)

    @property
    def rows(self) -> int:
        """The rows pandas reads (short ones included)."""
        return (self.table.num_rows if self.table is not None else 0) + sum(self.short_rows.values())

    @property
    def columns(self) -> list[str]:
        return list(self.table.column_names) if self.table is not None else []

    def missing_in(self, position: int) -> int:
        """How many short rows lack the column at `position` (pandas' NaN there)."""
        return sum(n for present, n in self.short_rows.items() if present <= position)

    def stage(self, folder: Path | None) -> None:
        """Let go of the bytes in memory (~40 MB at a million rows); when a CSV may be written in `folder`,
        keep them there on disk first (where they stay in memory if the folder refuses a file)."""
        if folder is not None and self.payload is not None:
            try:
                handle, name = tempfile.mkstemp(prefix=".numerai-sandbox-", suffix=".csv.tmp", dir=folder)
                with os.fdopen(handle, "wb") as out:
                    out.write(self.payload)
            except OSError:
                return
            self.staged = Path(name)
        self.payload = None

    def discard(self) -> None:
        """Remove the staged bytes (the run is over)."""
        if self.staged is not None:
            self.staged.unlink(missing_ok=True)
            self.staged = None

    def write(self, path: Path, parquet: bool) -> None:
        """CSV: the bytes themselves, exactly what Numerai's image uploads. Parquet: the columns, indexed
        by the first (the id), as pandas reads a DataFrame written with to_parquet."""
        if not parquet:
            if self.payload is not None:
                path.write_bytes(self.payload)
            elif self.staged is not None:
                shutil.copyfile(self.staged, path)
            else:
                raise ValueError("the CSV's bytes were not kept")
            return
        if self.table is None:
            raise ValueError(f"the CSV cannot be read as a table ({self.error})")
        from ..data.parquet import write_indexed

        write_indexed(self.table, path, self.table.column_names[0])


def read_submission(payload: bytes | bytearray) -> Submission:
    """Read the CSV as pandas.read_csv(defaults) would; never raises on bad bytes (`error` says why)."""
    import pyarrow as pa

    submission = Submission(payload)
    try:
        _parse(payload, submission)
    finally:
        pa.default_memory_pool().release_unused()  # the parser's working memory, back to the system now
    return submission


def _parse(payload: bytes | bytearray, submission: Submission) -> None:
    import pyarrow as pa

    if not _is_utf8(payload):
        submission.error = "it is not UTF-8 text (pandas stops with a UnicodeDecodeError)"
        return
    header, first = _first_records(payload)
    if header is None:
        submission.error = "it has no header line (pandas: no columns to parse)"
        return
    implicit = first is not None and len(first) == len(header) + 1
    text = frozenset([ID_COLUMN]) if header.count(ID_COLUMN) == 1 else frozenset()  # a repeated id: bad headers
    names = header if implicit else None
    try:
        table = _read(payload, submission, names, text)
        more = _pandas_text_columns(table) - text
        if more:  # read again with those columns as text
            table = _read(payload, submission, names, text | more)
    except _LongRow as exc:
        submission.error = str(exc)
        return
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        submission.error = f"the CSV parser stops: {str(exc).splitlines()[0][:200]}"
        return
    if implicit:
        table = table.remove_column(0)
        submission.notes.append("the CSV's rows have one field more than its header; as pandas does, the first "
                                "field of each row was read as an unnamed index, not a column")
    submission.table = table.rename_columns(pandas_names(table.column_names))


class _LongRow(Exception):
    """A row with more fields than the header: pandas' C parser stops there."""


def _read(payload: bytes | bytearray, submission: Submission, implicit_header: list[str] | None,
          text_columns: frozenset[str]) -> "pa.Table":
    """One reading of the bytes, streamed a block of BLOCK bytes at a time: the parser's working memory
    stays small (pyarrow's read_csv would hold every parsed block at once, ~40 MB more at a million rows).
    Types come from the first block and widen where a later block needs it (int to float, to text);
    where the streaming reader cannot widen (booleans, then a number), read_csv, which types the
    columns from every row as pandas does, reads it again."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    long_rows: list[str] = []

    def invalid(row) -> str:
        if not row.text.strip(" \t\r\n"):
            return "skip"  # a whitespace-only line: pandas skips it as blank
        if row.actual_columns > row.expected_columns:
            long_rows.append(f"line {row.number} has {row.actual_columns} fields, the header "
                             f"{row.expected_columns} (pandas: Error tokenizing data)")
            return "error"
        submission.short_rows[row.actual_columns] += 1
        if len(submission.short_labels) < EXAMPLES:
            submission.short_labels.append(next(csv.reader([row.text]), [""])[0][:200])
        return "skip"

    names = [IMPLICIT_INDEX, *implicit_header] if implicit_header is not None else None
    options = dict(
        read_options=pcsv.ReadOptions(use_threads=False, block_size=BLOCK, column_names=names,
                                      skip_rows=1 if names else 0),
        parse_options=pcsv.ParseOptions(newlines_in_values=True, invalid_row_handler=invalid),
        convert_options=pcsv.ConvertOptions(
            column_types={name: pa.string() for name in text_columns}, null_values=list(PANDAS_NA),
            strings_can_be_null=True, quoted_strings_can_be_null=True, true_values=list(PANDAS_TRUE),
            false_values=list(PANDAS_FALSE), timestamp_parsers=[]))

    def attempt(read) -> "pa.Table":
        submission.short_rows.clear()
        submission.short_labels.clear()
        try:
            return read(pa.BufferReader(payload), **options)
        except pa.ArrowInvalid:
            if long_rows:
                raise _LongRow(long_rows[0]) from None
            raise

    try:
        return attempt(lambda source, **given: pcsv.open_csv(source, **given).read_all())
    except pa.ArrowInvalid as exc:
        if "conversion error" not in str(exc):
            raise
    return attempt(pcsv.read_csv)


def _is_utf8(payload: bytes | bytearray) -> bool:
    """Whether pandas can decode it: ASCII at once (Numerai's ids and numbers are), else piece by piece."""
    if payload.isascii():
        return True
    decoder, view = codecs.getincrementaldecoder("utf-8")(), memoryview(payload)
    try:
        for start in range(0, len(view), 1 << 20):
            decoder.decode(view[start:start + (1 << 20)])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _first_records(payload: bytes | bytearray) -> tuple[list[str] | None, list[str] | None]:
    """The header and the first row, blank lines skipped: what decides pandas' implicit index (read from
    the first MB; records longer than that decide nothing)."""
    records: list[list[str]] = []
    with memoryview(payload) as view:
        start = bytes(view[:HEAD_BYTES])
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(start), encoding="utf-8-sig", errors="replace", newline=""))
    try:
        for record in reader:
            if any(f.strip(" \t") for f in record) or len(record) > 1:
                records.append(record)
                if len(records) == 2:
                    break
    except csv.Error:  # a field beyond csv's size limit: no implicit index decided from it
        pass
    return (records[0] if records else None), (records[1] if len(records) > 1 else None)


def _pandas_text_columns(table: "pa.Table") -> frozenset[str]:
    """Columns pyarrow typed that pandas' parser keeps as text: dates and times, and a float column
    holding a NaN that is not one of pandas' NA strings (pyarrow accepts "NAN", "+nan", pandas does not)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = set()
    for name, column in zip(table.column_names, table.columns):
        kind = column.type
        if pa.types.is_floating(kind):
            if column.null_count < len(column) and pc.any(pc.is_nan(column)).as_py():
                text.add(name)
        elif not (pa.types.is_integer(kind) or pa.types.is_boolean(kind) or pa.types.is_null(kind)
                  or pa.types.is_string(kind)):
            text.add(name)
    return frozenset(text)


def pandas_names(names: list[str]) -> list[str]:
    """Header names as pandas' C parser makes them (its _get_header): a blank one is "Unnamed: i"; a repeat
    becomes "name.k", the first k no other header name takes; named columns are deduplicated first."""
    header = [name if name != "" else f"Unnamed: {i}" for i, name in enumerate(names)]
    unnamed = [i for i, name in enumerate(names) if name == ""]
    counts: dict[str, int] = {}
    for i in [i for i in range(len(header)) if i not in set(unnamed)] + unnamed:
        name = original = header[i]
        count = counts.get(name, 0)
        if count > 0:
            while count > 0:
                counts[original] = count + 1
                name = f"{original}.{count}"
                count = count + 1 if name in header else counts.get(name, 0)
            header[i] = name
        counts[name] = count + 1
    return header
