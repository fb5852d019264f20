"""Host-side validation: rule by rule, and the same pass/fail as numerai-tools and numerai-predict."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from numerai_tools.submissions import validate_submission_numerai

from runner.verdict import validate
from runner.sandbox.harness import in_image_check, result_facts

LIVE = pd.Series([f"n{i:015x}" for i in range(200)], name="id")
DF = "pandas.core.frame.DataFrame"


def submission(values, ids=None, columns=("id", "prediction")) -> pd.DataFrame:
    ids = list(LIVE) if ids is None else ids
    return pd.DataFrame({columns[0]: ids, columns[1]: values})


def ranked(n=200) -> np.ndarray:
    return (np.arange(n) + 0.5) / n


def tools_accepts(frame: pd.DataFrame) -> bool:
    try:
        validate_submission_numerai(LIVE.astype(str), frame.copy())
        return True
    except (AssertionError, KeyError, TypeError, ValueError):
        return False


# Each case: a submission CSV as Numerai would receive it, and the rule we must name.
CASES = {
    "valid": (submission(ranked()), None),
    "probability header": (submission(ranked(), columns=("id", "probability")), None),
    "exact ends": (submission(np.linspace(0, 1, 200)), None),
    "ends within tolerance": (submission(np.r_[-1e-12, np.linspace(0.01, 0.99, 198), 1 + 1e-12]), None),
    "extra unknown ids": (pd.concat([submission(ranked()), submission([0.5], ids=["nope"])]), None),
    "shuffled": (submission(ranked()).sample(frac=1, random_state=1), None),
    "bad header": (submission(ranked(), columns=("id", "pred")), "bad_headers"),
    "index header": (submission(ranked(), columns=("Unnamed: 0", "prediction")), "bad_headers"),
    "three columns": (submission(ranked()).assign(extra=1.0), "bad_headers"),
    "nan ids": (submission(ranked(), ids=list(LIVE[:-1]) + [np.nan]), "nan_ids"),
    "duplicates": (pd.concat([submission(ranked()), submission(ranked()).iloc[:3]]), "duplicate_ids"),
    "missing ids": (submission(ranked(150), ids=list(LIVE[:150])), "missing_ids"),
    "wrong universe": (submission(ranked(), ids=[f"x{i}" for i in range(200)]), "missing_ids"),
    "above one": (submission(np.r_[ranked(199), 1.5]), "values_out_of_range"),
    "below zero": (submission(np.r_[-0.2, ranked(199)]), "values_out_of_range"),
    "both ends out": (submission(np.linspace(-0.1, 1.1, 200)), "values_out_of_range"),
    "constant": (submission(np.full(200, 0.5)), "constant"),
    "nearly constant": (submission(0.5 + np.arange(200) * 1e-12), "constant"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_upload_rules_match_numerai_tools(name):
    frame, expected_rule = CASES[name]
    checks = validate.upload_checks(frame, LIVE)
    failed = next((c.rule for c in checks if c.passed is False and c.blocking), None)
    assert failed == expected_rule
    assert (failed is None) == tools_accepts(frame), "parity with numerai-tools broken"


@pytest.mark.parametrize("seed", range(60))
def test_random_predictions_parity(seed):
    """Randomly broken predictions: our verdict equals numerai-predict's checks then numerai-tools'."""
    rng = np.random.default_rng(seed)
    frame = submission(ranked())
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
    facts = result_facts(pd, returned)
    payload = returned.to_csv(index=True).encode()  # what numerai-predict writes
    result = validate.validate(facts, payload, LIVE)
    numerai = facts["in_image_failed"] is None and tools_accepts(validate.read_submission(payload))
    assert result.passed == numerai


def frame_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=True).encode()


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
    payload = frame_csv(value) if isinstance(value, pd.DataFrame) else None
    host = validate.in_image_checks(facts, validate.read_submission(payload) if payload else None)
    host_rule = next((c.rule for c in host if c.passed is False), None)
    assert host_rule == expected


def test_harness_claims_can_only_fail():
    """A model that forges 'in_image_failed: None' cannot hide a NaN from the host."""
    frame = pd.DataFrame({"prediction": [0.1, np.nan]}, index=pd.Index(["a", "b"], name="id"))
    facts = {"returned_type": DF, "exact_dataframe": True, "index_levels": 1, "in_image_failed": None}
    checks = validate.in_image_checks(facts, validate.read_submission(frame_csv(frame)))
    assert next(c.rule for c in checks if c.passed is False) == "nan"


def test_counts_and_examples():
    frame = submission(ranked())
    frame.loc[[3, 4, 5], "prediction"] = np.nan
    result = validate.validate({"returned_type": DF, "exact_dataframe": True, "index_levels": 0},
                               frame.to_csv(index=False).encode(), LIVE)
    nan = next(c for c in result.checks if c.rule == "nan")
    assert nan.count == 3 and nan.passed is False
    assert result.failed.rule == "nan"


def test_missing_ids_examples_named():
    frame = submission(ranked(190), ids=list(LIVE[:190]))
    check = next(c for c in validate.upload_checks(frame, LIVE) if c.rule == "missing_ids")
    assert check.count == 10 and check.examples == sorted(LIVE[190:])[:5]


def test_unknown_ids_are_a_warning():
    frame = pd.concat([submission(ranked()), submission([0.3], ids=["n_unknown"])])
    checks = validate.upload_checks(frame, LIVE)
    unknown = next(c for c in checks if c.rule == "unknown_ids")
    assert unknown.passed is False and not unknown.blocking and unknown.examples == ["n_unknown"]
    assert tools_accepts(frame)


def test_read_submission_keeps_numerai_csv_shape():
    frame = pd.DataFrame({"prediction": [0.25]}, index=pd.Index(["n1"], name="id"))
    assert list(validate.read_submission(io.BytesIO(frame.to_csv().encode()).getvalue()).columns) == ["id", "prediction"]
