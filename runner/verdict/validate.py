"""Host-side validation of the predictions, with Numerai's own rules.

Two sets of rules run, in the order Numerai applies them:
- numerai-predict's checks inside its image (None, not a DataFrame, empty, NaN,
  first column outside [0, 1]);
- numerai-tools' upload validation (headers, ids, values, non-constant), applied
  to the CSV exactly as Numerai receives it.
Every rule is evaluated in full so the report can name each failing rule with a
count and example ids; numerai-tools itself is also run as the final word, so a
rule we misread can never turn Numerai's "no" into our "yes".

The model's process is never trusted: the host re-reads the CSV itself. What the
harness reports can only make a check fail (e.g. "the function returned None",
which a CSV cannot show), never pass.
"""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..reasons import OUTPUT_RULES

MAX_EXAMPLES = 5
# numerai-tools itself re-judges submissions up to this size (a live era is ~7k rows); it sorts and
# hashes strings in Python-heavy ways, so beyond it our vectorised rules, shown equal to its own by
# the parity tests, decide alone and the report says so.
TOOLS_CROSS_CHECK_ROWS = 250_000
HISTOGRAM_BINS = 50
ID_COLUMNS = ["id"]
PREDICTION_COLUMNS = ["prediction", "probability"]


@dataclass
class Check:
    rule: str
    passed: bool | None  # None: not evaluated (an earlier rule made it meaningless)
    count: int = 0
    examples: list[str] = field(default_factory=list)
    detail: str = ""
    overridden: bool = False  # numerai-tools accepted what this rule rejects: a warning only
    rows: list[list[str]] = field(default_factory=list)  # [id, value] of the example rows, when it failed

    @property
    def source(self) -> str:
        return OUTPUT_RULES[self.rule].source

    @property
    def blocking(self) -> bool:
        return OUTPUT_RULES[self.rule].blocking and not self.overridden

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "source": self.source, "passed": self.passed,
                "blocking": self.blocking, "count": self.count, "examples": self.examples,
                "detail": self.detail, "rows": self.rows}


@dataclass
class Validation:
    checks: list[Check]
    frame: pd.DataFrame | None  # the submission as Numerai reads it (id, prediction)
    numerai_tools_error: str | None = None  # numerai-tools' own message when it rejects
    summary: dict[str, Any] | None = None  # what the predictions look like (summarize)
    notes: list[str] = field(default_factory=list)  # for the report (e.g. numerai-tools not re-run)

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


# ---------------------------------------------------------------- numerai-predict's in-image rules

def in_image_checks(facts: dict[str, Any], frame: pd.DataFrame | None) -> list[Check]:
    """numerai-predict's checks, from the harness's facts about the returned object and the CSV.

    `frame` is the CSV as written by the image (index columns first). `facts` holds
    `returned_type`, `exact_dataframe`, `index_levels`, and the harness's own
    in-image verdict, which can only add failures.
    """
    returned = facts.get("returned_type")
    claimed = facts.get("in_image_failed")  # the harness's own first failing rule, if any
    checks = [Check("returned_none", returned != "NoneType",
                    detail="the function returned None" if returned == "NoneType" else "")]
    if returned == "NoneType":
        return checks + [_skip(r, "nothing was returned")
                         for r in ("not_dataframe", "empty", "nan", "not_numeric", "out_of_range")]
    exact = bool(facts.get("exact_dataframe"))
    checks.append(Check("not_dataframe", exact,
                        detail="" if exact else f"returned {returned} instead of pandas.DataFrame"))
    if not exact or frame is None:
        why = "the result is not a DataFrame" if not exact else "no predictions came back"
        return checks + [_skip(r, why) for r in ("empty", "nan", "not_numeric", "out_of_range")]

    levels = int(facts.get("index_levels", 1))
    values = frame.iloc[:, levels:]
    rows = len(values)
    checks.append(Check("empty", rows > 0 and claimed != "empty",
                        detail="" if rows else "the DataFrame has 0 rows"))
    if rows == 0:
        return checks + [_skip(r, "no rows") for r in ("nan", "not_numeric", "out_of_range")]

    nan_rows = values.isna().any(axis=1)
    nan_ok = not nan_rows.any() and claimed != "nan"
    checks.append(Check("nan", nan_ok, int(nan_rows.sum()), _labels_where(frame, levels, nan_rows),
                        "" if nan_ok else f"{int(values.isna().sum().sum())} NaN value(s) in "
                        f"{int(nan_rows.sum())} row(s)"))
    if values.shape[1] == 0:
        return checks + [Check("not_numeric", False, detail="the DataFrame has no columns"),
                         _skip("out_of_range", "no columns")]
    first = values.iloc[:, 0]
    numeric = (pd.api.types.is_numeric_dtype(first) or pd.api.types.is_bool_dtype(first)) \
        and claimed != "not_numeric" and _numeric_dtype_name(facts.get("first_column_dtype"))
    checks.append(Check("not_numeric", numeric,
                        detail="" if numeric else f"first column {values.columns[0]!r} holds "
                        f"{facts.get('first_column_dtype') or first.dtype} values, not numbers"))
    if not numeric:
        return checks + [_skip("out_of_range", "the first column is not numeric")]
    outside = ~first.between(0, 1) & first.notna()
    range_ok = not outside.any() and claimed != "out_of_range"
    checks.append(Check("out_of_range", range_ok, int(outside.sum()), _labels_where(frame, levels, outside),
                        "" if range_ok else f"{int(outside.sum())} value(s) outside [0, 1] "
                        f"(min {float(first.min())!r}, max {float(first.max())!r})"))
    return checks


def _labels_where(frame: pd.DataFrame, levels: int, mask: pd.Series) -> list[str]:
    """The ids of the first rows where `mask` holds (labels are made for those rows only)."""
    if not mask.any():
        return []
    return _examples(_row_labels(frame[mask.to_numpy()].head(MAX_EXAMPLES), levels))


def _row_labels(frame: pd.DataFrame, levels: int) -> pd.Series:
    """The ids of the rows (the CSV's index columns), for naming examples."""
    if levels <= 0:
        return pd.Series(frame.index.astype(str), index=frame.index)
    labels = frame.iloc[:, 0].astype(str)
    for position in range(1, levels):
        labels = labels + "/" + frame.iloc[:, position].astype(str)
    return labels


def _numeric_dtype_name(name: str | None) -> bool:
    """Whether the dtype the harness saw can be compared with 0 and 1 (the CSV turns "0.5" into 0.5)."""
    if name is None:
        return True
    return bool(re.match(r"^(u?int|float|bool|Int|UInt|Float|boolean)", name))


# ---------------------------------------------------------------- numerai-tools' upload rules

def upload_checks(submission: pd.DataFrame, live: pd.Series) -> list[Check]:
    """numerai-tools' validate_submission_numerai, rule by rule, with counts and examples."""
    columns = list(submission.columns)
    headers_ok = len(columns) == 2 and columns[0] in ID_COLUMNS and columns[1] in PREDICTION_COLUMNS
    checks = [Check("bad_headers", headers_ok,
                    detail="" if headers_ok else f"columns are {columns}; expected ['id', 'prediction'] "
                    "(or 'probability')")]
    later = ("nan_ids", "duplicate_ids", "missing_ids", "unknown_ids", "values_out_of_range", "constant")
    if not headers_ok:
        return checks + [_skip(r, "headers are invalid") for r in later]
    id_col, pred_col = columns

    nan_ids = submission[id_col].isna()
    checks.append(Check("nan_ids", not nan_ids.any(), int(nan_ids.sum()),
                        _examples((nan_ids[nan_ids].index + 2).map(lambda r: f"CSV line {r}")),
                        f"{int(nan_ids.sum())} row(s) without an id" if nan_ids.any() else ""))
    if nan_ids.any():
        return checks + [_skip(r, "some ids are NaN") for r in later[1:]]

    import pyarrow.compute as pc

    ids, live_ids = _strings(submission[id_col]), _strings(live)
    in_live = pc.is_in(ids, value_set=live_ids)
    sub_live_ids = pc.filter(ids, in_live)
    counts = pc.value_counts(sub_live_ids)
    dup_ids = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1)).to_pylist()
    checks.append(Check("duplicate_ids", len(dup_ids) == 0, len(dup_ids), _examples(dup_ids),
                        f"{len(dup_ids)} live id(s) appear more than once" if len(dup_ids) else ""))
    missing = pc.unique(pc.filter(live_ids, pc.invert(pc.is_in(live_ids, value_set=sub_live_ids))))
    enough = len(sub_live_ids) >= len(live_ids)
    first_missing = pc.take(missing, pc.sort_indices(missing)[:MAX_EXAMPLES]).to_pylist() if len(missing) else []
    checks.append(Check("missing_ids", enough, len(missing), first_missing,
                        "" if enough else f"{len(missing)} of {len(live_ids):,} live ids have no prediction"))
    unknown = pc.unique(pc.filter(ids, pc.invert(in_live)))
    checks.append(Check("unknown_ids", len(unknown) == 0, len(unknown), _examples(unknown[:MAX_EXAMPLES].to_pylist()),
                        f"{len(unknown)} id(s) are not live ids; Numerai ignores those rows" if len(unknown) else ""))
    if len(dup_ids) or not enough:
        return checks + [_skip(r, "the ids are invalid") for r in later[4:]]

    kept = in_live.to_numpy(zero_copy_only=False)
    preds = submission[pred_col][kept]
    if not (pd.api.types.is_numeric_dtype(preds) or pd.api.types.is_bool_dtype(preds)):
        checks.append(Check("values_out_of_range", False, detail=f"{pred_col} values are not numbers"))
        return checks + [_skip("constant", "values are not numbers")]
    preds = preds.astype(float)
    in_range = _values_in_range(preds)
    outside = (preds < 0) | (preds > 1) | preds.isna()
    checks.append(Check("values_out_of_range", in_range, 0 if in_range else int(outside.sum()),
                        [] if in_range else _examples(submission[id_col][kept][outside].astype(str)),
                        "" if in_range else f"values range from {float(preds.min())!r} to {float(preds.max())!r}"))
    std = preds.std()
    constant = bool(np.isclose(0, std))
    checks.append(Check("constant", not constant, len(preds) if constant else 0,
                        detail=f"standard deviation is {float(std)!r}" if constant else ""))
    return checks


def _strings(values: pd.Series):
    """pandas' astype(str) of a column, as an Arrow array: what the id rules compare, hashed in C++
    (a million ids in milliseconds, whichever pandas the host has)."""
    import pyarrow as pa

    strings = values.astype(str)
    try:
        return pa.array(strings, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(strings.to_numpy(dtype=object), type=pa.string())


def _values_in_range(preds: pd.Series) -> bool:
    """numerai-tools' range rule: within [0, 1], ends allowed to be 0 or 1 within tolerance, no NaN."""
    if preds.isna().any():
        return False
    low_ok = bool(np.isclose(preds.min(), 0))
    high_ok = bool(np.isclose(preds.max(), 1))
    return bool(preds.between(0, 1).all() or (low_ok and preds.le(1).all())
                or (preds.ge(0).all() and high_ok) or (low_ok and high_ok))


def prewarm() -> None:
    """Import numerai-tools ahead of time (it pulls in scipy.stats, ~1.5 s)."""
    import numerai_tools.submissions  # noqa: F401


def numerai_tools_verdict(submission: pd.DataFrame, live: pd.Series) -> str | None:
    """Run numerai-tools itself; its assertion message when it rejects, else None."""
    from numerai_tools.submissions import validate_submission_numerai

    try:
        with _plain_strings():
            validate_submission_numerai(live.astype(str), submission.copy())
    except AssertionError as exc:
        return str(exc) or "rejected"
    except (KeyError, TypeError, ValueError) as exc:  # malformed beyond what its asserts expect
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def _plain_strings():
    """pandas 3 makes astype(str) Arrow-backed, whose isin loops in Python over every value (seconds for
    numerai-tools on a large submission); inside numerai-tools keep the object strings pandas 2 used."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            context = pd.option_context("future.infer_string", False)
        except (KeyError, pd.errors.OptionError):  # a pandas without the option
            context = contextlib.nullcontext()
        with context:
            yield


def read_submission(payload: bytes) -> pd.DataFrame:
    """The CSV as Numerai's upload reads it (plain read_csv: columns id, prediction)."""
    return pd.read_csv(io.BytesIO(payload))


def validate(facts: dict[str, Any], payload: bytes | None, live: pd.Series) -> Validation:
    frame = read_submission(payload) if payload is not None else None
    checks = in_image_checks(facts, frame)
    in_image_failed = any(c.passed is False for c in checks)
    levels = int(facts.get("index_levels", 1)) if isinstance(facts.get("index_levels"), int) else 1
    summary = summarize(frame.iloc[:, levels]) if frame is not None and frame.shape[1] > levels else None
    if frame is None or in_image_failed:
        why = "the image's own checks failed first" if in_image_failed else "no predictions came back"
        checks += [_skip(code, why) for code, rule in OUTPUT_RULES.items() if rule.source == "numerai-tools"]
        _show_rows(checks, frame, levels)
        return Validation(checks, frame, summary=summary)
    upload = upload_checks(frame, live)
    notes: list[str] = []
    if len(frame) <= TOOLS_CROSS_CHECK_ROWS:
        verdict = numerai_tools_verdict(frame, live)
        _defer_to_numerai_tools(upload, verdict)
    else:
        verdict = None
        notes.append(f"numerai-tools itself was not run on {len(frame):,} rows (it is, up to "
                     f"{TOOLS_CROSS_CHECK_ROWS:,}); its rules, as ours implement them, decided")
    _show_rows(checks + upload, frame, levels)
    return Validation(checks + upload, frame, verdict, summary, notes)


# ---------------------------------------------------------------- what the predictions look like

def summarize(values: pd.Series) -> dict[str, Any]:
    """The first prediction column as a person wants to see it: count, NaN, range, ties, histogram.

    Ties count the rows whose value another row shares (Numerai ranks predictions, so a
    spike of equal values is worth seeing). The histogram has HISTOGRAM_BINS equal bins over
    [0, 1], widened to the values' range when they leave it; NaN and infinities stay out of it.
    """
    out: dict[str, Any] = {"column": str(values.name)[:200], "count": int(len(values)),
                           "nan": int(values.isna().sum()), "numeric": False}
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        out["distinct"] = int(values.nunique())
        return out
    numbers = values.astype(float).to_numpy()
    finite = numbers[np.isfinite(numbers)]
    present = numbers[~np.isnan(numbers)]
    out.update(numeric=True, infinite=int(len(present) - len(finite)),
               distinct=int(len(np.unique(present))),
               tied_rows=int(pd.Series(present).duplicated(keep=False).sum()),
               outside_0_1=int(((present < 0) | (present > 1)).sum()))
    if len(finite) == 0:
        return out
    low, high = float(finite.min()), float(finite.max())
    counts, edges = np.histogram(finite, bins=HISTOGRAM_BINS, range=(min(low, 0.0), max(high, 1.0)))
    out.update(min=low, max=high, mean=float(finite.mean()), std=float(finite.std(ddof=1)) if len(finite) > 1 else 0.0,
               histogram={"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]})
    return out


def _show_rows(checks: list[Check], frame: pd.DataFrame | None, levels: int) -> None:
    """Attach the example rows (id and value) to each failed rule that names ids."""
    if frame is None or frame.shape[1] <= levels or not any(c.passed is False and c.examples for c in checks):
        return
    labels = _row_labels(frame, levels)
    values = frame.iloc[:, levels]
    for check in checks:
        if check.passed is False and check.examples:
            wanted = labels.isin(check.examples).to_numpy()
            check.rows = [[label[:200], "NaN" if pd.isna(value) else str(value)[:200]]
                          for label, value in zip(labels[wanted][:2 * MAX_EXAMPLES], values[wanted][:2 * MAX_EXAMPLES])]


_TOOLS_PREFIXES = {"invalid_submission_headers": "bad_headers", "invalid_submission_ids": "missing_ids",
                   "invalid_submission_values": "values_out_of_range"}


def _defer_to_numerai_tools(upload: list[Check], verdict: str | None) -> None:
    """numerai-tools has the final word on the upload rules.

    Our rule-by-rule reading exists to explain; should it ever disagree with
    numerai-tools (the parity tests say it does not), Numerai's verdict stands.
    """
    ours_failed = [c for c in upload if c.passed is False and c.blocking]
    if verdict is None:
        for check in ours_failed:
            check.overridden = True
            check.detail += " (numerai-tools accepts this; reported as a warning)"
    elif not ours_failed:
        rule = next((r for p, r in _TOOLS_PREFIXES.items() if verdict.startswith(p)), "bad_headers")
        upload.append(Check(rule, False, detail=f"numerai-tools rejects the submission: {verdict}"))
