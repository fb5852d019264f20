"""Host-side validation of the predictions, with Numerai's own rules.

Two sets of rules run, in the order Numerai applies them:
- numerai-predict's checks inside its image (None, not a DataFrame, empty, NaN,
  first column outside [0, 1]);
- numerai-tools' upload validation (headers, ids, values, non-constant), applied
  to the CSV exactly as Numerai receives it and reads it (`submission`).
Every rule is evaluated in full so the report can name each failing rule with a
count and example ids. These rules are the only judge at run time: numerai-tools
itself is not imported on the host (it pulls in scipy and scikit-learn, and its
pandas strings cost seconds and hundreds of MB at a million rows). tests/test_validate.py
holds them to numerai-tools' own `validate_submission_numerai`, case by case.

Everything is a column operation on Arrow arrays and numpy: no Python runs per row.

The model's process is never trusted: the host re-reads the CSV itself. What the
harness reports can only make a check fail (e.g. "the function returned None",
which a CSV cannot show), never pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..sandbox.protocol import Returned
from ..support import arrow
from .reasons import OUTPUT_RULES
from .submission import Submission, read_submission

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Check", "Validation", "in_image_checks", "read_submission", "summarize", "upload_checks", "validate"]

MAX_EXAMPLES = 5
HISTOGRAM_BINS = 50
LIVE_PART = 1 << 17  # live ids hashed at a time (a million in 8 parts: ~0.1 s more, ~50 MB less)
ID_COLUMNS = ["id"]
PREDICTION_COLUMNS = ["prediction", "probability"]
NAN_VALUES = "value(s) are NaN"  # how a values check that met NaN says so (numerai_log tells it by this)
UPLOAD_RULES = ("bad_headers", "nan_ids", "duplicate_ids", "missing_ids", "unknown_ids", "values_out_of_range",
                "constant")


@dataclass
class Check:
    rule: str
    passed: bool | None  # None: not evaluated (an earlier rule made it meaningless)
    count: int = 0
    examples: list[str] = field(default_factory=list)
    detail: str = ""
    rows: list[list[str]] = field(default_factory=list)  # [id, value] of the example rows, when it failed

    @property
    def source(self) -> str:
        return OUTPUT_RULES[self.rule].source

    @property
    def blocking(self) -> bool:
        return OUTPUT_RULES[self.rule].blocking

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "source": self.source, "passed": self.passed,
                "blocking": self.blocking, "count": self.count, "examples": self.examples,
                "detail": self.detail, "rows": self.rows}


@dataclass
class Validation:
    checks: list[Check]
    submission: Submission | None  # the CSV as Numerai reads it (id, prediction), with its bytes
    summary: dict[str, Any] | None = None  # what the predictions look like (summarize)
    notes: list[str] = field(default_factory=list)  # for the report (e.g. how pandas read an odd CSV)

    @property
    def failed(self) -> Check | None:
        """The first blocking rule that failed, in Numerai's order."""
        return next((c for c in self.checks if c.passed is False and c.blocking), None)

    @property
    def passed(self) -> bool:
        return self.failed is None


def _examples(values) -> list[str]:
    return [str(v) for v in list(values)[:MAX_EXAMPLES]]


def _skip(rule: str, why: str) -> Check:
    return Check(rule, None, detail=f"not checked: {why}")


# ---------------------------------------------------------------- columns as pandas sees them

def _is_number(column: "pa.ChunkedArray | pa.Array", rows: int) -> bool:
    """Whether pandas reads the column as numbers (or booleans) that compare with 0 and 1."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return True
    if pa.types.is_boolean(kind):
        return column.null_count == 0  # pandas reads booleans with NaN among them as objects
    return pa.types.is_null(kind) and rows > 0  # all NaN: float64 to pandas (no rows at all: object)


def _isna(column) -> np.ndarray:
    """pandas' isna(): NaN or missing."""
    import pyarrow.compute as pc

    return arrow.bools(pc.is_null(column, nan_is_null=True))


def _labels(table: "pa.Table", levels: int):
    """The ids of the rows (the CSV's index columns, joined by "/"; pandas' str() of each, "nan" for NaN),
    as an Arrow string array, for naming examples."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if levels <= 0:
        return pc.cast(arrow.from_numpy(np.arange(table.num_rows)), pa.string())
    parts = []
    for column in table.columns[:levels]:
        if pa.types.is_string(column.type):
            parts.append(pc.fill_null(arrow.single(column), arrow.scalar("nan")))
        else:  # pandas' own formatting of numbers and booleans (1.0, True), rare in an index: value by value
            parts.append(arrow.strings(["nan" if v is None else str(v) for v in column.to_pylist()]))
    return parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, arrow.scalar("/"))


def _labels_where(table: "pa.Table", levels: int, mask: np.ndarray) -> list[str]:
    """The ids of the first rows where `mask` holds (labels are made for those rows only)."""
    rows = np.flatnonzero(mask)[:MAX_EXAMPLES]
    return _examples(_labels(table.take(arrow.indices(rows)), levels).to_pylist()) if len(rows) else []


def _numeric_dtype_name(name: str | None) -> bool:
    """Whether the dtype the harness saw can be compared with 0 and 1 (the CSV turns "0.5" into 0.5).

    An `object` column counts when its values compared with 0 and 1 in the image (numerai-predict's
    own check ran there without error: numbers held as objects, which Numerai accepts); text such as
    "0.5" fails that comparison, which the harness reports as not_numeric."""
    if name is None or name == "object":
        return True
    return bool(re.match(r"^(u?int|float|bool|Int|UInt|Float|boolean)", name))


def prewarm() -> None:
    """Import what reading and judging the predictions needs (pyarrow's CSV reader and compute
    functions, about 0.1 s), so a run can do it while the model runs instead of after."""
    import importlib

    for module in ("pyarrow.compute", "pyarrow.csv"):
        importlib.import_module(module)


# ---------------------------------------------------------------- numerai-predict's in-image rules

def in_image_checks(facts: Returned, submission: Submission | None) -> list[Check]:
    """numerai-predict's checks, from the harness's facts about the returned object and the CSV.

    `submission` is the CSV as written by the image (index columns first). `facts` holds
    `returned_type`, `exact_dataframe`, `index_levels`, and the harness's own
    in-image verdict, which can only add failures.
    """
    returned = facts.returned_type
    claimed = facts.in_image_failed  # the harness's own first failing rule, if any
    checks = [Check("returned_none", returned != "NoneType",
                    detail="the function returned None" if returned == "NoneType" else "")]
    later = ("empty", "nan", "not_numeric", "out_of_range")
    if returned == "NoneType":
        return checks + [_skip(r, "nothing was returned") for r in ("not_dataframe", *later)]
    exact = facts.exact_dataframe
    checks.append(Check("not_dataframe", exact,
                        detail="" if exact else f"returned {returned} instead of pandas.DataFrame"))
    if not exact:
        return checks + [_skip(r, "the result is not a DataFrame") for r in later]
    if submission is None:  # a DataFrame, the harness said, and no CSV of it: the report channel was written over
        checks.append(Check("unreadable", False, detail="a DataFrame was returned but no predictions CSV came back "
                            "(something in the model's process wrote over the report channel)"))
        return checks + [_skip(r, "no predictions came back") for r in later]
    if submission.table is None:
        checks.append(Check("unreadable", False, detail=submission.error or ""))
        return checks + [_skip(r, "the CSV cannot be read") for r in later]

    table, levels = submission.table, _levels(facts)
    rows = submission.rows
    checks.append(Check("empty", rows > 0 and claimed != "empty",
                        detail="" if rows else "the DataFrame has 0 rows"))
    if rows == 0:
        return checks + [_skip(r, "no rows") for r in later[1:]]
    checks.append(_nan_check(submission, levels, claimed))
    values = table.columns[levels:]
    if not values:
        return checks + [Check("not_numeric", False, detail="the DataFrame has no columns"),
                         _skip("out_of_range", "no columns")]
    first, name = values[0], table.column_names[levels]
    numeric = _is_number(first, rows) and claimed != "not_numeric" \
        and _numeric_dtype_name(facts.first_column_dtype)
    checks.append(Check("not_numeric", numeric,
                        detail="" if numeric else f"first column {name!r} holds "
                        f"{facts.first_column_dtype or first.type} values, not numbers"))
    if not numeric:
        return checks + [_skip("out_of_range", "the first column is not numeric")]
    numbers = arrow.floats(first)
    with np.errstate(invalid="ignore"):
        outside = ~((numbers >= 0) & (numbers <= 1)) & ~np.isnan(numbers)
    range_ok = not outside.any() and claimed != "out_of_range"
    checks.append(Check("out_of_range", range_ok, int(outside.sum()), _labels_where(table, levels, outside),
                        "" if range_ok else f"{int(outside.sum())} value(s) outside [0, 1] "
                        "(min {!r}, max {!r})".format(*_range(numbers))))
    return checks


def _levels(facts: Returned) -> int:
    """How many of the CSV's first columns are the DataFrame's index (the harness writes it first)."""
    return max(facts.index_levels, 0) if facts.index_levels is not None else 1


def _nan_check(submission: Submission, levels: int, claimed: str | None) -> Check:
    """numerai-predict's `isna().any().any()` on the values (not the index): rows holding a NaN, with
    the rows pandas fills with NaN because they have too few fields."""
    table = submission.table
    values = table.columns[levels:]
    nan_rows = np.zeros(table.num_rows, dtype=bool)
    nan_values = 0
    for column in values:
        isna = _isna(column)
        nan_rows |= isna
        nan_values += int(isna.sum())
    short = sum(submission.short_rows.values()) if values else 0
    short_values = sum(submission.missing_in(p) for p in range(levels, table.num_columns))
    count = int(nan_rows.sum()) + short
    ok = count == 0 and claimed != "nan"
    examples = (_labels_where(table, levels, nan_rows) + (submission.short_labels if short else []))[:MAX_EXAMPLES]
    detail = "" if ok else f"{nan_values + short_values} NaN value(s) in {count} row(s)" + (
        f" ({short} row(s) of the CSV have fewer fields than its header, which pandas fills with NaN)"
        if short else "")
    return Check("nan", ok, count, examples, detail)


# ---------------------------------------------------------------- numerai-tools' upload rules

def upload_checks(submission: Submission, live) -> list[Check]:
    """numerai-tools' validate_submission_numerai, rule by rule (headers, then ids, then values), with counts
    and examples. `live` is the live ids (live_ids' Arrow string array, or any sequence of ids)."""
    table = submission.table
    columns = submission.columns
    headers_ok = len(columns) == 2 and columns[0] in ID_COLUMNS and columns[1] in PREDICTION_COLUMNS
    checks = [Check("bad_headers", headers_ok,
                    detail="" if headers_ok else f"columns are {columns}; expected ['id', 'prediction'] "
                    "(or 'probability')")]
    if not headers_ok:
        return checks + [_skip(r, "headers are invalid") for r in UPLOAD_RULES[1:]]
    ids = table.column(0)  # chunked as read: combining would copy it
    id_checks, kept = _id_checks(ids, _strings(live))
    checks += id_checks
    if kept is None or any(c.passed is False and c.blocking for c in checks):
        why = "some ids are NaN" if kept is None else "the ids are invalid"
        return checks + [_skip(r, why) for r in UPLOAD_RULES[len(checks):]]
    return checks + _value_checks(table.column(1), columns[1], ids, kept)


def _id_checks(ids: "pa.ChunkedArray", live: "pa.Array") -> tuple[list[Check], np.ndarray | None]:
    """numerai-tools' id rules: no NaN id; ids compared as strings; among live ids no duplicate; at least as many
    live rows as live ids. Rows with other ids are ignored (a warning). Hashing the live ids gives each
    submitted id the position of its live id; every rule is then integer arithmetic on those positions.
    Also returns which rows numerai-tools keeps (None when an id is NaN: it stops there)."""
    import pyarrow.compute as pc

    nan_ids = arrow.bools(ids.is_null())
    if nan_ids.any():
        lines = [f"CSV line {row + 2}" for row in np.flatnonzero(nan_ids)[:MAX_EXAMPLES]]
        return [Check("nan_ids", False, int(nan_ids.sum()), lines, f"{int(nan_ids.sum())} row(s) without an id")], None
    checks = [Check("nan_ids", True)]

    found = _live_positions(ids, live)  # each row's live id, as its first position among the live ids
    kept = found >= 0  # rows numerai-tools keeps: their id is a live id
    position = found[kept]
    del found
    counts = np.bincount(position, minlength=len(live))  # predictions per live id

    duplicated = _first_seen(position[(counts > 1)[position]])
    checks.append(Check("duplicate_ids", len(duplicated) == 0, len(duplicated),
                        _examples(live.take(arrow.indices(duplicated[:MAX_EXAMPLES])).to_pylist()),
                        f"{len(duplicated)} live id(s) appear more than once" if len(duplicated) else ""))
    missing = live.take(arrow.indices(_unpredicted(live, counts)))
    enough = len(position) >= len(live)
    first_missing = missing.take(pc.select_k_unstable(missing, k=MAX_EXAMPLES, sort_keys=[("", "ascending")])
                                 ).to_pylist() if len(missing) else []
    checks.append(Check("missing_ids", enough, len(missing), first_missing,
                        "" if enough else f"{len(missing)} of {len(live):,} live ids have no prediction"))
    unknown = pc.unique(ids.take(arrow.indices(np.flatnonzero(~kept)))) if not kept.all() else []
    checks.append(Check("unknown_ids", len(unknown) == 0, len(unknown),
                        _examples(unknown[:MAX_EXAMPLES].to_pylist()) if len(unknown) else [],
                        f"{len(unknown)} id(s) are not live ids; Numerai ignores those rows" if len(unknown) else ""))
    return checks, kept


def _unpredicted(live: "pa.Array", counts: np.ndarray) -> np.ndarray:
    """The positions of the live ids no row predicts, each id once. A repeated live id's later positions are
    never counted (rows find its first), so each position without a count is mapped to its id's first."""
    zero = np.flatnonzero(counts == 0)
    if len(zero) == 0:
        return zero
    first = _live_positions(live.take(arrow.indices(zero)), live)
    return np.unique(first[counts[first] == 0])


def _live_positions(ids, live: "pa.Array") -> np.ndarray:
    """For each id, the first position of the same id among the live ids, or -1: pc.index_in, against
    LIVE_PART live ids at a time (a hash table of all of a million would take ~55 MB, of a part ~7 MB)."""
    import pyarrow.compute as pc

    found = np.full(len(ids), -1, dtype=np.int32)
    for start in range(0, len(live), LIVE_PART):
        part = arrow.single(pc.index_in(ids, value_set=live.slice(start, LIVE_PART)))
        new = arrow.bools(part.is_valid()) & (found < 0)  # an earlier part holds the first position
        np.copyto(found, arrow.ints(part) + np.int32(start), where=new)
        del part, new
    return found


def _first_seen(codes: np.ndarray) -> np.ndarray:
    """The distinct codes, in the order they first appear (as pandas' unique and value_counts list them)."""
    _, first = np.unique(codes, return_index=True)
    return codes[np.sort(first)]


def _value_checks(column, name: str, ids: "pa.ChunkedArray", kept: np.ndarray) -> list[Check]:
    """numerai-tools' value rules on the rows it keeps: numbers, no NaN, within [0, 1] (an end may lie
    outside by floating tolerance), and a standard deviation not close to 0."""
    if not _is_number(column, len(column)):
        missing = int(_isna(column)[kept].sum())
        return [Check("values_out_of_range", False, detail=f"{name} values are not numbers"
                      + (f"; {missing:,} {NAN_VALUES}" if missing else "")),
                _skip("constant", "values are not numbers")]
    preds = arrow.floats(column)[kept]
    in_range = _values_in_range(preds)
    with np.errstate(invalid="ignore"):
        outside = (preds < 0) | (preds > 1) | np.isnan(preds)
    examples = [] if in_range else \
        _examples(ids.take(arrow.indices(np.flatnonzero(kept)[outside][:MAX_EXAMPLES])).to_pylist())
    nan = int(np.isnan(preds).sum())
    detail = "" if in_range else "values range from {!r} to {!r}".format(*_range(preds))
    if nan and not in_range:  # numerai-tools' own message then is its NaN one
        detail = f"{nan:,} {NAN_VALUES}; the others range from " + detail.removeprefix("values range from ")
    checks = [Check("values_out_of_range", in_range, 0 if in_range else int(outside.sum()), examples, detail)]
    std = _std(preds)
    constant = bool(np.isclose(0, std))
    checks.append(Check("constant", not constant, len(preds) if constant else 0,
                        detail=f"standard deviation is {float(std)!r}" if constant else ""))
    return checks


def _values_in_range(preds: np.ndarray) -> bool:
    """numerai-tools' range rule: no NaN, and within [0, 1] where the low end may be 0 and the high end 1
    within np.isclose's tolerance (its `or`s, in its order: min and max are only taken when needed)."""
    if np.isnan(preds).any():
        return False
    low_ok_all, high_ok_all = bool((preds >= 0).all()), bool((preds <= 1).all())
    if low_ok_all and high_ok_all:
        return True
    low_close, high_close = bool(np.isclose(preds.min(), 0)), bool(np.isclose(preds.max(), 1))
    return (low_close and high_ok_all) or (low_ok_all and high_close) or (low_close and high_close)


def _range(values: np.ndarray) -> tuple[float, float]:
    """pandas' min() and max(): NaN skipped, NaN when nothing is left."""
    present = values[~np.isnan(values)]
    return (float(present.min()), float(present.max())) if len(present) else (float("nan"), float("nan"))


def _std(values: np.ndarray) -> float:
    """pandas' Series.std(): NaN skipped, ddof=1, NaN for fewer than two values."""
    present = values[~np.isnan(values)]
    with np.errstate(invalid="ignore"):  # an infinity makes it NaN, as in pandas
        return float(present.std(ddof=1)) if len(present) > 1 else float("nan")


def _strings(values) -> "pa.Array":
    """Live ids as one Arrow string array, as numerai-tools' astype(str) sees them (None as "None"); from
    live_ids' array, or any sequence of ids (a list, a pandas Series)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        values = arrow.single(values)
    elif not isinstance(values, pa.Array):
        values = arrow.strings([str(v) for v in values])
    if values.type != pa.string():
        values = values.cast(pa.string())
    return pc.fill_null(values, arrow.scalar("None")) if values.null_count else values


# ---------------------------------------------------------------- the verdict

def validate(facts: Returned, payload: bytes | bytearray | Submission | None, live) -> Validation:
    """Both rule sets on the CSV the harness sent, as bytes or already read (None: nothing came back);
    `facts` what the harness said of the returned object, `live` the live ids."""
    submission = payload if isinstance(payload, Submission) or payload is None else read_submission(payload)
    checks = in_image_checks(facts, submission)
    in_image_failed = any(c.passed is False for c in checks)
    levels = _levels(facts)
    table = submission.table if submission is not None else None
    summary = summarize(table.column(levels), table.column_names[levels], submission.missing_in(levels)) \
        if table is not None and table.num_columns > levels else None
    notes = list(submission.notes) if submission is not None else []
    if table is None or in_image_failed:
        why = ("the CSV cannot be read" if submission is not None and table is None
               else "the image's own checks failed first" if in_image_failed else "no predictions came back")
        checks += [_skip(code, why) for code in UPLOAD_RULES]
        _show_rows(checks, table, levels)
        return Validation(checks, submission, summary, notes)
    upload = upload_checks(submission, live)
    _show_rows(checks + upload, table, levels)
    return Validation(checks + upload, submission, summary, notes)


# ---------------------------------------------------------------- what the predictions look like

def summarize(column, name: str, missing: int = 0) -> dict[str, Any]:
    """The first prediction column as a person wants to see it: count, NaN, range, ties, histogram.

    `column` is an Arrow array (or anything pyarrow turns into one); `missing` counts the rows pandas
    fills with NaN (too few fields). Ties count the rows whose value another row shares (Numerai ranks
    predictions, so a spike of equal values is worth seeing). The histogram has HISTOGRAM_BINS equal bins
    over [0, 1], widened to the values' range when they leave it; NaN and infinities stay out of it.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    column = column if isinstance(column, (pa.Array, pa.ChunkedArray)) else pa.array(column)  # (tests)
    rows = len(column) + missing
    out: dict[str, Any] = {"column": str(name)[:200], "count": rows, "nan": int(_isna(column).sum()) + missing,
                           "numeric": False}
    if not _is_number(column, rows):
        out["distinct"] = 0 if column.null_count == len(column) else \
            int(pc.count_distinct(column, mode="only_valid").as_py())
        return out
    numbers = arrow.floats(column)
    present = numbers[~np.isnan(numbers)]  # a copy, sorted in place: equal values side by side
    del numbers
    present.sort()
    finite = present[np.searchsorted(present, -np.inf, "right"):np.searchsorted(present, np.inf, "left")]
    same = present[1:] == present[:-1]  # equal to the next value
    tied = np.zeros(len(present), dtype=bool)
    tied[1:] |= same
    tied[:-1] |= same
    outside = np.searchsorted(present, 0.0, "left") + len(present) - np.searchsorted(present, 1.0, "right")
    out.update(numeric=True, infinite=int(len(present) - len(finite)), distinct=int(len(present) - same.sum()),
               tied_rows=int(tied.sum()), outside_0_1=int(outside))
    del same, tied
    if len(finite) == 0:
        return out
    low, high = float(finite[0]), float(finite[-1])
    counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS, range=(min(low, 0.0), max(high, 1.0)))
    out.update(min=low, max=high, mean=float(finite.mean()), std=float(finite.std(ddof=1)) if len(finite) > 1 else 0.0,
               histogram={"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]})
    return out


def _show_rows(checks: list[Check], table: "pa.Table | None", levels: int) -> None:
    """Attach the example rows (id and value) to each failed rule that names ids."""
    import pyarrow.compute as pc

    if table is None or table.num_columns <= levels or not any(c.passed is False and c.examples for c in checks):
        return
    labels = _labels(table, levels)
    values = table.column(levels)
    for check in checks:
        if check.passed is False and check.examples:
            shown = arrow.bools(pc.is_in(labels, value_set=arrow.strings(check.examples)))
            rows = arrow.indices(np.flatnonzero(shown)[:2 * MAX_EXAMPLES])
            check.rows = [[str(label)[:200], _shown(value)[:200]]
                          for label, value in zip(labels.take(rows).to_pylist(), values.take(rows).to_pylist())]


def _shown(value) -> str:
    """A value as pandas prints it (NaN for a missing one)."""
    return "NaN" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
