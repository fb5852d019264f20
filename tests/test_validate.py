"""Host-side validation: every rule and reading edge judged as Numerai judges it.

At run time our rules alone decide (pyarrow and numpy; neither pandas nor numerai-tools is imported).
Here Numerai's own code judges the same bytes, and the rule must be the same:
- on a DataFrame a model returns: numerai-predict's checks on the object (the harness's copy of them),
  then pandas.read_csv of what to_csv wrote, then numerai-tools' validate_submission_numerai;
- on CSV bytes (what reaches the host, whoever wrote them): pandas.read_csv (an exception: unreadable),
  numerai-predict's checks on what it read (the host re-checks them on the CSV, never trusting the
  harness), then validate_submission_numerai;
- numerai-tools' upload rules alone against validate_submission_numerai alone, on every CSV pandas reads.
The few places where the rule differs (not the verdict) are listed in DIFFERENT, with why.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from numerai_tools.submissions import validate_submission_numerai

from runner.sandbox.harness import in_image_check, result_facts
from runner.sandbox.protocol import Returned
from runner.verdict import validate
from runner.verdict.submission import PANDAS_NA, pandas_names, read_submission

LIVE_IDS = [f"n{i:015x}" for i in range(200)]
LIVE = pa.array(LIVE_IDS)
DF = "pandas.core.frame.DataFrame"
RANKS = [(i + 0.5) / 200 for i in range(200)]
CSV_FACTS = {"returned_type": DF, "exact_dataframe": True, "index_levels": 1, "in_image_failed": None}


# ---------------------------------------------------------------- Numerai's verdict, by Numerai's code

TOOLS_MESSAGES = [("invalid_submission_headers", "bad_headers"), ("NaNs in the", "nan_ids"),
                  ("Duplicates detected", "duplicate_ids"), ("Not enough stocks", "missing_ids"),
                  ("invalid_submission_values: submission must not contain NaNs", "values_out_of_range"),
                  ("between 0 and 1", "values_out_of_range"), ("standard deviation", "constant")]


def tools_rule(frame: pd.DataFrame) -> str | None:
    """validate_submission_numerai's verdict, named as our rule; comparisons it cannot make (text values) raise."""
    try:
        validate_submission_numerai(pd.Series(LIVE_IDS).astype(str), frame.copy())
    except AssertionError as exc:
        return next(rule for prefix, rule in TOOLS_MESSAGES if prefix in str(exc))
    except (KeyError, TypeError, ValueError):
        return "values_out_of_range"  # ours: "prediction values are not numbers"
    return None


def pandas_reads(payload: bytes) -> pd.DataFrame | None:
    """What Numerai's upload reads: plain pandas.read_csv; None where it raises."""
    try:
        return pd.read_csv(io.BytesIO(payload))
    except ValueError:  # ParserError, EmptyDataError, UnicodeDecodeError
        return None


def numerai_on_bytes(payload: bytes, levels: int = 1) -> str | None:
    frame = pandas_reads(payload)
    if frame is None:
        return "unreadable"
    returned = frame.set_index(list(frame.columns[:levels])) if levels else frame
    rule, _ = in_image_check(pd, returned)
    return rule or tools_rule(frame)


def numerai_on_object(returned) -> str | None:
    rule, _ = in_image_check(pd, returned)
    if rule:
        return rule
    return tools_rule(pd.read_csv(io.BytesIO(returned.to_csv(index=True).encode())))


def ours(facts: dict, payload: bytes | None) -> str | None:
    failed = validate.validate(Returned.parse(facts), payload, LIVE).failed
    return failed.rule if failed else None


def ours_on_object(returned) -> str | None:
    facts = result_facts(pd, returned)
    payload = returned.to_csv(index=True).encode() if isinstance(returned, pd.DataFrame) else None
    return ours(facts, payload)


def upload_rule(payload: bytes) -> str | None:
    checks = validate.upload_checks(read_submission(payload), LIVE)
    return next((c.rule for c in checks if c.passed is False and c.blocking), None)


# ---------------------------------------------------------------- CSV bytes

def csv(values=RANKS, ids=LIVE_IDS, header: str = "id,prediction", extra: str = "", end: str = "\n") -> bytes:
    body = "".join(f"{i},{v}{end}" for i, v in zip(ids, values))
    return (header + end + body + extra).encode()


def with_value(value: str, row: int = 7) -> bytes:
    values = [repr(v) for v in RANKS]
    values[row] = value
    return csv(values)


def with_id(value: str, row: int = 7) -> bytes:
    ids = list(LIVE_IDS)
    ids[row] = value
    return csv(ids=ids)


UNKNOWN = "".join(f"x{i},0.5\n" for i in range(3))
BIG_TAIL = "".join(f"x{i:07d},0.25\n" for i in range(60_000))  # beyond the reader's first 1 MB block
INT_TAIL = "".join(f"x{i:07d},{i % 2}\n" for i in range(80_000))
BOOL_TAIL = "".join(f"x{i:07d},{bool(i % 2)}\n" for i in range(80_000))

CASES: dict[str, tuple[bytes, str | None]] = {
    # headers
    "valid": (csv(), None),
    "probability header": (csv(header="id,probability"), None),
    "quoted header": (csv(header='"id","prediction"'), None),
    "bad header": (csv(header="id,pred"), "bad_headers"),
    "upper-case header": (csv(header="ID,prediction"), "bad_headers"),
    "space in header": (csv(header="id, prediction"), "bad_headers"),
    "unnamed index (blank header)": (csv(header=",prediction"), "bad_headers"),
    "repeated header": (csv(header="id,id"), "bad_headers"),
    "three columns": (csv([f"{v},1.0" for v in RANKS], header="id,prediction,extra"), "bad_headers"),
    "repeated prediction columns": (csv([f"{v},{v}" for v in RANKS], header="id,prediction,prediction"),
                                    "bad_headers"),
    "one column": (("id\n" + "".join(f"{i}\n" for i in LIVE_IDS)).encode(), "not_numeric"),
    "byte order mark": (b"\xef\xbb\xbf" + csv(), None),
    "CRLF line ends": (csv(end="\r\n"), None),
    "blank lines": (csv(extra="\n\n"), None),
    "whitespace-only line": (csv(extra=" \t \n" + UNKNOWN), None),
    "header only": (b"id,prediction\n", "empty"),
    "empty file": (b"", "unreadable"),
    "only newlines": (b"\n\n\n", "unreadable"),
    # ids
    "duplicates": (csv(extra="".join(f"{i},0.3\n" for i in LIVE_IDS[:3])), "duplicate_ids"),
    "duplicate unknown ids": (csv(extra="zz,0.1\nzz,0.2\n"), None),
    "missing ids": (csv(RANKS[:150], LIVE_IDS[:150]), "missing_ids"),
    "wrong universe": (csv(ids=[f"x{i}" for i in range(200)]), "missing_ids"),
    "extra unknown ids": (csv(extra=UNKNOWN), None),
    "shuffled": (csv(RANKS[::-1], LIVE_IDS[::-1]), None),
    "quoted ids": (csv(ids=[f'"{i}"' for i in LIVE_IDS]), None),
    "id with a space": (with_id(" " + LIVE_IDS[7]), "missing_ids"),
    "lower-case none is an id": (with_id("none"), "missing_ids"),
    "non-ASCII unknown id": (csv(extra="né,0.5\n"), None),
    "quoted id with a newline": (csv(extra='"a\nb",0.5\n'), None),
    "numeric ids": (csv(ids=[str(i) for i in range(200)]), "missing_ids"),
    "zero-padded numeric ids": (csv(ids=[f"{i:03d}" for i in range(200)]), "missing_ids"),
    "float ids": (csv(ids=[f"{i}.50" for i in range(200)]), "missing_ids"),
    "huge numeric ids": (csv(ids=[str(10**30 + i) for i in range(200)]), "missing_ids"),
    "tiny numeric ids": (csv(ids=[f"{i + 1}e-300" for i in range(200)]), "missing_ids"),
    "boolean ids": (csv(ids=["True", "False"] * 100), "missing_ids"),
    "very long id": (with_id("n" * 5000), "missing_ids"),
    # values
    "exact ends": (csv(np.linspace(0, 1, 200).tolist()), None),
    "ends just outside": (csv([-1e-12, *np.linspace(0.01, 0.99, 198).tolist(), 1 + 1e-12]), "out_of_range"),
    "above one": (with_value("1.5"), "out_of_range"),
    "below zero": (with_value("-0.2"), "out_of_range"),
    "negative zero": (with_value("-0.0"), None),
    "infinity": (with_value("inf"), "out_of_range"),
    "minus infinity": (with_value("-inf"), "out_of_range"),
    "Infinity spelled out": (with_value("Infinity"), "out_of_range"),
    "constant": (csv([0.5] * 200), "constant"),
    "nearly constant": (csv([0.5 + i * 1e-12 for i in range(200)]), "constant"),
    "small but real spread": (csv([0.5 + i * 1e-6 for i in range(200)]), None),
    "tiny values (a tiny spread is constant)": (csv([f"{i + 1}e-300" for i in range(200)]), "constant"),
    "tiny values among others": (csv([*map(repr, RANKS[:100]), *(f"{i + 1}e-300" for i in range(100))]), None),
    "underflow to zero": (with_value("1e-400"), None),
    "leading plus": (with_value("+0.5"), None),
    "spaces around a number": (with_value(" 0.5 "), None),
    "quoted numbers": (csv([f'"{v}"' for v in RANKS]), None),
    "text": (with_value("abc"), "not_numeric"),
    "hex": (with_value("0x1"), "not_numeric"),
    "NAN upper-case (text to pandas)": (with_value("NAN"), "not_numeric"),
    "+nan (text to pandas)": (with_value("+nan"), "not_numeric"),
    "date": (with_value("2020-01-01"), "not_numeric"),
    "time": (with_value("12:00:00"), "not_numeric"),
    "text far down a big file": (csv(extra=BIG_TAIL + "x,abc\n"), "not_numeric"),
    "big file with unknown ids": (csv(extra=BIG_TAIL), None),
    "integers, then a float far down": (csv(["0", "1"] * 100, extra=INT_TAIL + "x,0.5\n"), None),
    "integers, then a huge one far down": (csv(["0", "1"] * 100, extra=INT_TAIL + "x,9999999999999999999\n"),
                                           "out_of_range"),
    "booleans, then a 0 far down": (csv(["True", "False"] * 100, extra=BOOL_TAIL + "x,0\n"), "not_numeric"),
    "NaN first, numbers far down": (csv([""] * 200, extra=BIG_TAIL), "nan"),
    "quoted text with a newline": (with_value('"a\nb"'), "not_numeric"),
    "huge integer": (with_value("99999999999999999999"), "out_of_range"),
    "integer beyond 64 bits among floats": (with_value("18446744073709551616"), "out_of_range"),
    # booleans and integers
    "booleans": (csv(["True", "False"] * 100), None),
    "booleans, lower and upper case": (csv(["true", "FALSE"] * 100), None),
    "booleans with NaN": (csv(["True", "False"] * 99 + ["True", ""]), "nan"),
    "0 and 1 are integers": (csv(["0", "1"] * 100), None),
    "0, 1 and True is text": (csv(["0", "1", "True", "False"] * 50), "not_numeric"),
    "yes and no": (csv(["yes", "no"] * 100), "not_numeric"),
    "all zero integers": (csv(["0"] * 200), "constant"),
    # ragged rows
    "short row": (csv(extra="x9\n"), "nan"),
    "short row of a live id": (csv(RANKS[:199], LIVE_IDS[:199], extra=f"{LIVE_IDS[199]}\n"), "nan"),
    "long row": (csv(extra="x9,0.5,1\n"), "unreadable"),
    "implicit index": (csv([f"{i},{v}" for i, v in zip(LIVE_IDS, RANKS)], [f"r{k}" for k in range(200)]), None),
    "implicit index then a short row": (csv([f"{i},{v}" for i, v in zip(LIVE_IDS, RANKS)],
                                            [f"r{k}" for k in range(200)], extra="r9,x\n"), "nan"),
    "trailing commas (pandas' implicit index)": (csv([f"{v}," for v in RANKS]), "nan"),
    "trailing comma in the header too": (csv([f"{v}," for v in RANKS], header="id,prediction,"), "nan"),
    "not UTF-8": (with_value("0.5\xff").replace("\xff".encode(), b"\xff"), "unreadable"),
    "header not UTF-8": (b"i\xffd,prediction\n" + csv()[14:], "unreadable"),
}
for na in PANDAS_NA:  # pandas' NA strings, in both columns, quoted or not
    CASES[f"NA {na!r} as an id"] = (with_id(na), "nan_ids")
    CASES[f"NA {na!r} as a value"] = (with_value(na), "nan")
CASES["quoted NA id"] = (with_id('"NA"'), "nan_ids")
CASES["quoted NA value"] = (with_value('"NA"'), "nan")

# Where the rule differs, (ours, Numerai's), for bytes to_csv never writes (a number is written without
# quotes or spaces, a string value fails numerai-predict's own check): ours is the stricter.
DIFFERENT = {
    # pandas stops at an unterminated quote; pyarrow reads it to the end of the file, as one field: here a
    # row with a single field, filled with NaN (a quote opened elsewhere swallows rows: text or short rows)
    "unterminated quote": ((csv(extra='"x9\n'), "nan"), "unreadable"),
    # pandas' number parser skips a newline around a quoted number; pyarrow's does not: text
    "a quoted number with a newline": ((with_value('"0.5\n"'), "not_numeric"), None),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rules_match_numerai_on_csv_bytes(name):
    payload, expected = CASES[name]
    assert numerai_on_bytes(payload) == expected, "the case itself: Numerai's code says otherwise"
    assert ours(CSV_FACTS, payload) == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_upload_rules_alone_match_numerai_tools(name):
    """numerai-tools' rules (ours) against validate_submission_numerai, on every CSV pandas reads (short rows
    aside: pandas keeps them with NaN; the NaN rule stops them before the upload rules ever run)."""
    payload, _ = CASES[name]
    frame = pandas_reads(payload)
    submission = read_submission(payload)
    if frame is None or submission.short_rows:
        assert frame is None or submission.short_rows and numerai_on_bytes(payload) == "nan"
        return
    assert upload_rule(payload) == tools_rule(frame)


@pytest.mark.parametrize("name", sorted(DIFFERENT))
def test_where_the_rule_differs_ours_is_the_stricter(name):
    (payload, mine), numerai = DIFFERENT[name]
    assert ours(CSV_FACTS, payload) == mine and numerai_on_bytes(payload) == numerai
    assert mine is not None


def test_upload_tolerance_at_0_and_1():
    """numerai-tools' range rule lets an end lie outside [0, 1] by np.isclose's tolerance; numerai-predict's
    check (before it) does not, so only the upload rules alone can show it."""
    inside = csv([-1e-12, *np.linspace(0.01, 0.99, 198).tolist(), 1 + 1e-12])
    beyond = csv([-1e-6, *np.linspace(0.01, 0.99, 198).tolist(), 1.0])
    for payload, expected in ((inside, None), (beyond, "values_out_of_range")):
        assert upload_rule(payload) == tools_rule(pandas_reads(payload)) == expected


@pytest.mark.parametrize("names", [["id", "id", "", "id.1", "prediction", ""], ["a", "a", "a.1", "a", "a.2"],
                                   ["", "Unnamed: 0", ""], ["x.1", "x", "x"], ["id", "prediction"]])
def test_pandas_names(names):
    frame = pd.read_csv(io.BytesIO((",".join(names) + "\n" + ",".join("1" * len(names)) + "\n").encode()))
    assert pandas_names(names) == list(frame.columns)


def test_pandas_names_random():
    rng = np.random.default_rng(0)
    for _ in range(200):
        names = [str(n) for n in rng.choice(["", "a", "a.1", "a.2", "b", "Unnamed: 1", "Unnamed: 2"], rng.integers(2, 7))]
        frame = pd.read_csv(io.BytesIO((",".join(names) + "\n" + ",".join("1" * len(names)) + "\n").encode()))
        assert pandas_names(names) == list(frame.columns), names


# ---------------------------------------------------------------- DataFrames a model returns

def indexed(values, ids=None, name="id", column="prediction") -> pd.DataFrame:
    return pd.DataFrame({column: values}, index=pd.Index(LIVE_IDS if ids is None else ids, name=name))


OBJECTS = {
    "valid": indexed(RANKS),
    "float32": indexed(np.array(RANKS, dtype=np.float32)),
    "nullable Float64": indexed(pd.array(RANKS, dtype="Float64")),
    "probability": indexed(RANKS, column="probability"),
    "booleans": indexed([True, False] * 100),
    "integers 0 and 1": indexed([0, 1] * 100),
    "unnamed index": indexed(RANKS, name=None),
    "index named otherwise": indexed(RANKS, name="ID"),
    "two columns": indexed(RANKS).assign(extra=0.5),
    "id as a column": indexed(RANKS).reset_index(),
    "multi-index": pd.DataFrame({"prediction": RANKS}, index=pd.MultiIndex.from_arrays(
        [LIVE_IDS, ["era"] * 200], names=["id", "era"])),
    "None in the index": indexed(RANKS, ids=[*LIVE_IDS[:-1], None]),
    "'NA' string in the index": indexed(RANKS, ids=[*LIVE_IDS[:-1], "NA"]),
    "'None' string in the index": indexed(RANKS, ids=[*LIVE_IDS[:-1], "None"]),
    "NaN": indexed([*RANKS[:-1], np.nan]),
    "pd.NA": indexed(pd.array([*RANKS[:-1], None], dtype="Float64")),
    "inf": indexed([*RANKS[:-1], np.inf]),
    "text": indexed(["0.5"] * 200),
    "numbers as a pandas string dtype": indexed(pd.array([str(v) for v in RANKS], dtype="string")),
    "categorical numbers": indexed(pd.Categorical(RANKS)),
    "nullable integers": indexed(pd.array([0, 1] * 100, dtype="Int64")),
    "nullable booleans": indexed(pd.array([True, False] * 100, dtype="boolean")),
    "float16": indexed(np.array(RANKS, dtype=np.float16)),
    "datetimes": indexed(pd.date_range("2020-01-01", periods=200)),
    "constant": indexed([0.5] * 200),
    "empty": indexed([], ids=[]),
    "second column NaN": indexed(RANKS).assign(extra=[np.nan] + [1.0] * 199),
    "duplicate ids": pd.concat([indexed(RANKS), indexed(RANKS[:2], ids=LIVE_IDS[:2])]),
    "unknown ids": pd.concat([indexed(RANKS), indexed([0.5], ids=["zz"])]),
}


@pytest.mark.parametrize("name", sorted(OBJECTS))
def test_rules_match_numerai_on_returned_frames(name):
    returned = OBJECTS[name]
    assert ours_on_object(returned) == numerai_on_object(returned)


def test_numbers_held_as_objects():
    """Numbers in an object column compare with 0 and 1 in the image: Numerai accepts them, and so do we."""
    returned = indexed(np.array(RANKS, dtype=object))
    assert ours_on_object(returned) == numerai_on_object(returned) is None


def test_text_held_as_objects_is_not_numeric():
    """Text that looks like numbers ("0.5") fails numerai-predict's comparison in the image, whatever the CSV shows."""
    returned = indexed(np.array([str(v) for v in RANKS], dtype=object))
    assert ours_on_object(returned) == numerai_on_object(returned) == "not_numeric"


@pytest.mark.parametrize("seed", range(60))
def test_random_predictions_parity(seed):
    """Randomly broken predictions: our rule equals numerai-predict's checks then numerai-tools'."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": LIVE_IDS, "prediction": RANKS})
    mutation = seed % 6
    if mutation == 0:
        frame.loc[rng.choice(200, 3), "prediction"] = rng.normal(0.5, 1, 3)
    elif mutation == 1:
        frame = frame.drop(index=rng.choice(200, rng.integers(1, 5), replace=False))
    elif mutation == 2:
        frame = pd.concat([frame, frame.sample(rng.integers(1, 4), random_state=seed)])
    elif mutation == 3:
        frame["prediction"] = rng.choice([0.0, 1.0], 200) if seed % 2 else 0.25
    elif mutation == 4:
        frame.loc[rng.integers(0, 200), "id"] = f"z{seed}"
    returned = frame.set_index("id")  # what the model returns: indexed by id
    assert ours_on_object(returned) == numerai_on_object(returned)


def test_large_submission_parity():
    """300,000 rows (beyond where numerai-tools itself once re-judged them): the same rule, all the way."""
    n = 300_000
    rng = np.random.default_rng(3)
    ids = np.char.add("n", np.char.zfill(np.arange(n).astype(str), 15))
    live = pa.array(ids)
    frame = pd.DataFrame({"prediction": rng.random(n)}, index=pd.Index(ids, name="id"))
    for broken in (frame, frame.iloc[1:], pd.concat([frame, frame.iloc[:1]])):
        payload = broken.to_csv().encode()
        failed = validate.validate(Returned.parse(result_facts(pd, broken)), payload, live).failed
        try:
            validate_submission_numerai(pd.Series(ids), pd.read_csv(io.BytesIO(payload)))
            expected = None
        except AssertionError as exc:
            expected = next(rule for prefix, rule in TOOLS_MESSAGES if prefix in str(exc))
        assert (failed.rule if failed else None) == expected


# ---------------------------------------------------------------- numerai-predict's checks, harness and host

IN_IMAGE = {
    "none": (None, "returned_none"),
    "series": (pd.Series([0.5, 0.4], index=pd.Index(["a", "b"], name="id")), "not_dataframe"),
    "ndarray": (np.array([0.5]), "not_dataframe"),
    "empty": (pd.DataFrame({"prediction": []}, index=pd.Index([], name="id")), "empty"),
    "nan": (pd.DataFrame({"prediction": [0.1, np.nan]}, index=pd.Index(["a", "b"], name="id")), "nan"),
    "nan second column": (pd.DataFrame({"prediction": [0.1, 0.2], "x": [1, np.nan]},
                                       index=pd.Index(["a", "b"], name="id")), "nan"),
    "range": (pd.DataFrame({"prediction": [0.1, 1.01]}, index=pd.Index(["a", "b"], name="id")), "out_of_range"),
    "negative zero ok": (pd.DataFrame({"prediction": [-0.0, 1.0]}, index=pd.Index(["a", "b"], name="id")), None),
    "strings": (pd.DataFrame({"prediction": ["0.1", "0.2"]}, index=pd.Index(["a", "b"], name="id")), "not_numeric"),
    "bools ok": (pd.DataFrame({"prediction": [True, False]}, index=pd.Index(["a", "b"], name="id")), None),
    "valid": (pd.DataFrame({"prediction": [0.1, 0.9]}, index=pd.Index(["a", "b"], name="id")), None),
}


@pytest.mark.parametrize("name", sorted(IN_IMAGE))
def test_in_image_checks_parity(name):
    """The harness's checks (numerai-predict's, on the object) and the host's (on the CSV) agree."""
    value, expected = IN_IMAGE[name]
    harness_rule, _ = in_image_check(pd, value)
    assert harness_rule == expected
    facts = result_facts(pd, value)
    facts["in_image_failed"] = None  # the host must find the rule without the harness's word for it
    payload = value.to_csv(index=True).encode() if isinstance(value, pd.DataFrame) else None
    host = validate.in_image_checks(Returned.parse(facts), read_submission(payload) if payload else None)
    host_rule = next((c.rule for c in host if c.passed is False), None)
    assert host_rule == expected


def test_harness_claims_can_only_fail():
    """A model that forges 'in_image_failed: None' cannot hide a NaN from the host."""
    frame = pd.DataFrame({"prediction": [0.1, np.nan]}, index=pd.Index(["a", "b"], name="id"))
    facts = {"returned_type": DF, "exact_dataframe": True, "index_levels": 1, "in_image_failed": None}
    checks = validate.in_image_checks(Returned.parse(facts), read_submission(frame.to_csv().encode()))
    assert next(c.rule for c in checks if c.passed is False) == "nan"


# ---------------------------------------------------------------- what the report says

def test_counts_and_examples():
    values = [repr(v) for v in RANKS]
    values[3:6] = ["", "", ""]
    result = validate.validate(Returned.parse({"returned_type": DF, "exact_dataframe": True, "index_levels": 0}),
                               csv(values), LIVE)
    nan = next(c for c in result.checks if c.rule == "nan")
    assert nan.count == 3 and nan.passed is False
    assert result.failed.rule == "nan"


def test_missing_ids_examples_named():
    check = next(c for c in validate.upload_checks(read_submission(csv(RANKS[:190], LIVE_IDS[:190])), LIVE)
                 if c.rule == "missing_ids")
    assert check.count == 10 and check.examples == sorted(LIVE_IDS[190:])[:5]


def test_duplicates_and_unknown_named_in_order_of_appearance():
    payload = csv(extra=f"zz2,0.1\n{LIVE_IDS[9]},0.2\nzz1,0.3\n{LIVE_IDS[4]},0.4\nzz2,0.5\n")
    checks = {c.rule: c for c in validate.validate(Returned.parse(CSV_FACTS), payload, LIVE).checks}
    assert checks["duplicate_ids"].examples == [LIVE_IDS[4], LIVE_IDS[9]] and checks["duplicate_ids"].count == 2
    assert checks["unknown_ids"].examples == ["zz2", "zz1"] and checks["unknown_ids"].count == 2
    assert checks["duplicate_ids"].rows == [[LIVE_IDS[4], repr(RANKS[4])], [LIVE_IDS[9], repr(RANKS[9])],
                                            [LIVE_IDS[9], "0.2"], [LIVE_IDS[4], "0.4"]]


def test_unknown_ids_are_a_warning():
    payload = csv(extra="n_unknown,0.3\n")
    checks = validate.upload_checks(read_submission(payload), LIVE)
    unknown = next(c for c in checks if c.rule == "unknown_ids")
    assert unknown.passed is False and not unknown.blocking and unknown.examples == ["n_unknown"]
    assert tools_rule(pandas_reads(payload)) is None


def test_unreadable_says_why_and_never_raises():
    for payload, why in ((b"", "no header"), (b"id,prediction\nn1,0.5\nn2,0.5,1\n", "line 3 has 3 fields"),
                         (b"id,prediction\nn1,\xff\n", "not UTF-8")):
        result = validate.validate(Returned.parse(CSV_FACTS), payload, LIVE)
        assert result.failed.rule == "unreadable" and why in result.failed.detail
        assert all(c.passed is None for c in result.checks if c.source == "numerai-tools")


def test_summary_of_a_csv():
    payload = csv(["0.5", "0.5", "", "1.5", "-inf", *map(repr, RANKS[5:])])
    summary = validate.validate(Returned.parse(CSV_FACTS), payload, LIVE).summary
    assert (summary["count"], summary["nan"], summary["infinite"], summary["tied_rows"]) == (200, 1, 1, 2)
    assert summary["outside_0_1"] == 2 and summary["max"] == 1.5
    assert json.loads(json.dumps(summary)) == summary


def test_read_submission_keeps_numerai_csv_shape():
    frame = pd.DataFrame({"prediction": [0.25]}, index=pd.Index(["n1"], name="id"))
    submission = read_submission(frame.to_csv().encode())
    assert submission.columns == ["id", "prediction"] and submission.rows == 1


def test_validation_imports_neither_pandas_nor_numerai_tools(tmp_path):
    """The run path's reading, validation and writing, in a fresh interpreter: pyarrow and numpy only (pyarrow
    itself imports pandas when Python objects cross into Arrow: runner.support.arrow keeps that from happening)."""
    code = f"""
import sys
from pathlib import Path
import pyarrow as pa, pyarrow.parquet as pq
from runner.support import arrow
from runner.data import live_ids
from runner.verdict import validate
from runner.sandbox.protocol import Returned
pq.write_table(pa.table({{"id": arrow.strings(["n1", "n2", "n3", "n4"])}}), "{tmp_path}/live.parquet")
ids = live_ids(Path("{tmp_path}/live.parquet"))
facts = {{"returned_type": "pandas.core.frame.DataFrame", "exact_dataframe": True, "index_levels": 1}}
for payload, rule in ((b"id,prediction\\nn1,0.1\\nn2,0.5\\nNone,0.9\\nn4,0.2\\n", "nan_ids"),
                      (b"id,prediction\\nn1,0.1\\nn2,0.5\\nn2,0.9\\nn4,1.5\\n", "out_of_range"),
                      (b"id,prediction\\nn1,0.1\\nn2,0.5\\nn3,0.9\\nn4,0.2\\nx,0.3\\n", None)):
    result = validate.validate(Returned.parse(facts), payload, ids)
    assert (result.failed.rule if result.failed else None) == rule, result.failed
result.submission.write(Path("{tmp_path}/out.parquet"), parquet=True)
result.submission.write(Path("{tmp_path}/out.csv"), parquet=False)
print(",".join(m for m in ("pandas", "numerai_tools", "scipy", "sklearn") if m in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    written = pd.read_parquet(tmp_path / "out.parquet")
    assert written.index.name == "id" and list(written.columns) == ["prediction"] and len(written) == 5
    assert (tmp_path / "out.csv").read_bytes().startswith(b"id,prediction\nn1,0.1\n")


# ---------------------------------------------------------------- Numerai's own words for each rule

def test_numerai_log_of_each_upload_rule_is_numerai_tools_own_message():
    """For every CSV whose upload numerai-tools refuses, the report's numerai_log is its assertion message,
    word for word; every upload rule is met at least once."""
    from runner.verdict import numerai_log

    seen = set()
    for name, (payload, _) in sorted(CASES.items()):
        frame = pandas_reads(payload)
        if frame is None or read_submission(payload).short_rows:
            continue
        try:
            validate_submission_numerai(pd.Series(LIVE_IDS).astype(str), frame.copy())
        except AssertionError as exc:
            failed = next(c for c in validate.upload_checks(read_submission(payload), LIVE)
                          if c.passed is False and c.blocking)
            assert numerai_log.after_validation(failed.rule, Returned(), failed.detail) == str(exc), name
            seen.add("values_nan" if "NaNs" in str(exc) else failed.rule)
        except (KeyError, TypeError, ValueError):
            continue
    assert seen >= set(numerai_log.UPLOAD_CHECKS) - {"nan_ids"}, seen
    frame = pd.DataFrame({"id": ["n1", None], "prediction": [0.2, 0.4]})
    with pytest.raises(AssertionError) as caught:
        validate_submission_numerai(pd.Series(["n1", "n2"]), frame)
    assert numerai_log.after_validation("nan_ids", Returned()) == str(caught.value)


@pytest.mark.parametrize("returned, rule", [
    (None, "returned_none"), (pd.Series([0.5]), "not_dataframe"), (np.array([0.5]), "not_dataframe"),
    (pd.DataFrame({"prediction": []}), "empty"), (pd.DataFrame({"prediction": [np.nan]}), "nan"),
    (pd.DataFrame({"prediction": [1.5]}), "out_of_range"), (pd.DataFrame({"prediction": ["a"]}), "not_numeric"),
])
def test_numerai_log_of_each_in_image_check_is_numerai_predicts_line(returned, rule):
    """The harness logs predict.py's line for the check that failed; the host's own wording of the same rule
    (used when only the host's re-check fails it) is the same, the returned type included."""
    from runner.verdict import numerai_log

    facts = result_facts(pd, returned)
    assert facts["in_image_failed"] == rule
    assert numerai_log.after_validation(rule, Returned.parse(facts)) == facts["in_image_log"]
    if rule != "not_numeric":
        assert numerai_log.after_validation(rule, Returned.parse({"returned_type": facts["returned_type"]})) == facts["in_image_log"]
    if rule == "not_numeric":  # predict.py's TypeError branch, with the comparison's own message
        assert facts["in_image_log"].startswith("Pickle function is invalid - ")
