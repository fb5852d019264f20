"""Fuzzing: bytes an attacker or chance controls always get an ordinary verdict (see README, Reliability).

The seeded sample of the campaign (`make fuzz` runs 200,000 inputs and more, scripts/fuzz.py): each target
through the same hypothesis-driven mutators, derandomized so every run tries the same inputs. Then every
finding the campaigns made, with its input committed under tests/fuzz_findings/, and the forged report
channels through real containers and the real command line.
"""

from __future__ import annotations

import json

import pytest

import fuzz_campaign as campaign
import fuzz_targets as targets
from conftest import ROOT, make_pickles

# Inputs per target in `make test` (a few seconds each; the whole sample is about a minute).
SAMPLE = {"inspect": 400, "output": 300, "predictions": 120, "data": 300, "run": 120}


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    return campaign.Context(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def engine_context(client, image311, tmp_path_factory):
    return campaign.Context(tmp_path_factory.mktemp("fuzz-run"), client)


def _judged(tally: campaign.Tally) -> None:
    assert not tally.findings, json.dumps(tally.findings, indent=1)[:4000]
    assert tally.inputs >= SAMPLE[tally.target]
    assert sum(tally.exits.values()) == tally.inputs


@pytest.fixture(scope="module")
def tallies(context):
    """Each host-only target's sample, tried once for the tests that read its figures."""
    return {}


def _tally(target: str, context, tallies) -> campaign.Tally:
    if target not in tallies:
        tallies[target] = campaign.campaign(target, SAMPLE[target], context)
    return tallies[target]


@pytest.mark.parametrize("target", ["inspect", "output", "predictions", "data"])
def test_the_seeded_sample_gets_an_ordinary_verdict_for_every_input(target, context, tallies):
    _judged(_tally(target, context, tallies))


def test_the_seeded_sample_through_whole_runs(engine_context):
    """The container's output replayed into `runner.run.run.execute`: the report filled, printed, written."""
    _judged(campaign.campaign("run", SAMPLE["run"], engine_context))


def test_every_protocol_is_fuzzed(context, tallies):
    tally = _tally("inspect", context, tallies)
    assert {f"protocol {p}" for p in range(6)} <= set(tally.labels), tally.labels


FINDINGS = campaign.committed_findings()


@pytest.mark.parametrize("finding", [f for f in FINDINGS if f["target"] != "run"], ids=lambda f: f["input"])
def test_every_finding_now_gets_an_ordinary_verdict(finding, context):
    verdict = campaign.replay(finding, context)
    if "exit_code" in finding:
        assert verdict.exit_code == finding["exit_code"], verdict


@pytest.mark.parametrize("finding", [f for f in FINDINGS if f["target"] == "run"], ids=lambda f: f["input"])
def test_every_finding_in_a_whole_run_now_gets_an_ordinary_verdict(finding, engine_context):
    campaign.replay(finding, engine_context)


def test_the_command_line_gives_inspect_verdicts_without_a_traceback(context, tmp_path):
    """A sample of mutated pickles through `python -m runner inspect --json`, as a user runs it."""
    import random

    import fuzz_inputs

    for i in range(12):
        item = fuzz_inputs.mutate_pickle(random.Random(i), context.pickles)
        targets.cli_inspect(item.data, tmp_path)
    for finding in [f for f in FINDINGS if f["target"] == "inspect"]:
        targets.cli_inspect((campaign.FINDINGS / finding["input"]).read_bytes(), tmp_path)


@pytest.fixture(scope="module")
def forgers(client, image311, tmp_path_factory):
    return make_pickles(client, image311, ROOT / "tests" / "models" / "make_forgers.py",
                        tmp_path_factory.mktemp("forgers"))


def test_forged_report_channels_in_real_containers_get_ordinary_verdicts(forgers):
    """Models writing what the fuzzers found onto the real report channel, judged by `check` end to end."""
    code, out, err = targets.cli("check", *sorted(forgers.values()), "--json", "--jobs", "2", timeout=600)
    assert "Traceback" not in err, err[-3000:]
    reports = json.loads(out)["reports"]
    assert len(reports) == len(forgers)
    for report in reports:
        assert report["status"] in ("Failed", "Error") and report["reason"], report["model"]
        assert report["reason"] != "internal_error", (report["model"], report["message"], report["traceback"])
    assert code in (1, 3)
