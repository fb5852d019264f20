"""The tool speaks with one voice: one way to write sizes, messages that explain their numbers, advice
that fits the case, and output that shows what the person asked for and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT
from runner.sandbox.protocol import FrameParser
from runner.sandbox.backend import Limits, Outcome
from runner.support.units import human_bytes
from runner.sandbox.protocol import ExceptionFacts, read_frames
from runner.verdict import diagnose
from runner.verdict.context import Context
from runner.verdict.exceptions import classify_model_exception

MIB = 1024**2


@pytest.mark.parametrize("n,text", [(None, "?"), (0, "0 B"), (1023, "1023 B"), (1024, "1 KiB"), (96 * 1024, "96 KiB"),
                                    (150 * MIB, "150 MiB"), (int(284.5 * MIB), "284 MiB"), (int(2.5 * 1024**3), "2.5 GiB"),
                                    (4 * 1024**3, "4 GiB"), (int(1.15 * 1024**3), "1.15 GiB")])
def test_sizes_read_the_same_everywhere(n, text):
    assert human_bytes(n) == text


def test_no_module_formats_sizes_on_its_own():
    """Every size shown goes through runner.support.units.human_bytes: no module divides by 1024 or 1e6 to print one."""
    pattern = re.compile(r"\{[^{}]*/\s*(1024(\s*\*\*\s*\d)?|1e[369]|2\s*\*\*\s*\d+)[^{}]*\}")
    offenders = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
                 for path in sorted((ROOT / "runner").rglob("*.py")) if path.name != "units.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, "\n".join(offenders)


def _context(**limits) -> Context:
    return Context("3.11", {}, Limits(**limits), Path("/nonexistent/model.pkl"))


def _parser(*frames: tuple[str, bytes]) -> FrameParser:
    parser = FrameParser(max_predictions=1 << 20)
    for kind, body in frames:
        parser.feed(f"NSBX1 {kind} {len(body)}\n".encode() + body)
    return parser


def test_out_of_memory_explains_that_the_peak_is_sampled():
    outcome = Outcome("c", exit_code=137, oom_killed=True, peak_memory_bytes=97 * MIB)
    verdict = diagnose.from_outcome(outcome, read_frames(_parser(("phase", b'{"phase": "predicting"}'))),
                                    _context(memory_bytes=150 * MIB))
    assert verdict.reason == "out_of_memory"
    assert "150 MiB memory limit while predicting" in verdict.message
    assert "the highest sample was 97 MiB" in verdict.message and "after the last sample" in verdict.message
    assert verdict.evidence["peak_is_sampled"] is True


def _exception(kind: str, module: str, message: str, **extra) -> ExceptionFacts:
    frames = [{"file": "/opt/numerai-sandbox/harness.py", "line": 283, "function": "run", "code": "model(live)"},
              {"file": "/work/notebook.py", "line": 7, "function": "predict", "code": "fetch()"}]
    return ExceptionFacts.parse({"type": kind, "module": module, "mro": [f"{module}.{kind}", "builtins.Exception"],
                                 "message": message, "frames": frames, **extra})


def test_model_exception_advice_mentions_the_network_only_when_the_network_failed():
    plain = classify_model_exception(_exception("ValueError", "builtins", "bad shape"), _context(), {})
    assert plain.reason == "model_exception" and "network" not in plain.action.lower()
    offline = classify_model_exception(
        _exception("gaierror", "socket", "[Errno -3] Temporary failure in name resolution", errno=-3), _context(), {})
    assert offline.reason == "model_exception" and "no network" in offline.action


def test_last_lines_are_the_models_own_not_the_harnesss():
    from runner.verdict.lifecycle import Status
    from runner.verdict.report import Report, summary_lines

    report = Report(Status.FAILED, "timeout", "The model ran past the limit.", action="Be faster.",
                    logs_tail="numerai-sandbox harness: Loading model /input/model.pkl\nepoch 1 of 900\n"
                              "numerai-sandbox harness: Predicting on 6720 rows of live features\nepoch 2 of 900")
    shown = [line for line in summary_lines(report) if "│" in line]
    assert [line.split("│ ")[1] for line in shown] == ["epoch 1 of 900", "epoch 2 of 900"]
    only_harness = Report(Status.FAILED, "timeout", "The model ran past the limit.", action="Be faster.",
                          logs_tail="numerai-sandbox harness: Predicting on 6720 rows of live features")
    assert not any("Last lines" in line for line in summary_lines(only_harness))


@pytest.mark.parametrize("content", [b"id,prediction\nn1,0.5\n", b"<html><body>Sign in</body></html>", b""])
def test_inspect_of_a_file_that_is_no_pickle_says_so_once(tmp_path, content):
    from conftest import run_cli

    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    result = run_cli("inspect", path)
    assert result.code == 1
    lines = result.stdout.splitlines()
    assert lines[0].endswith("not a pickle") and len(lines) == 3, result.stdout
    assert "ok?" not in result.stdout and "Python:" not in result.stdout and "Images" not in result.stdout


def test_debug_shows_the_traceback_once(models):
    from conftest import run_cli

    result = run_cli("run", models["raises"], "--debug")
    assert result.code == 1
    assert result.stdout.count("Traceback (most recent call last)") == 1, result.stdout
    assert "the model is broken on purpose" in result.stdout


@pytest.mark.parametrize("kind, docker_reason, cluster_reason", [
    ("unreachable", "docker_unavailable", "backend_unavailable"),
    ("isolation", "isolation_unavailable", "isolation_unavailable"),
    ("image_missing", "image_unavailable", "image_unavailable"),
    ("not_started", "backend_unavailable", "backend_unavailable"),
    ("stopped", "backend_unavailable", "backend_unavailable"),
])
def test_what_the_platform_could_not_do_is_one_verdict_whichever_backend_saw_it(kind, docker_reason, cluster_reason):
    """One vocabulary of platform failures, one path to the verdict: only reaching the engine itself names it."""
    from runner.sandbox.backend import PlatformFailure
    from runner.verdict.platform import from_failure

    for platform, expected in (("docker", docker_reason), ("kubernetes", cluster_reason)):
        failure = PlatformFailure(kind, "it could not", platform)
        verdict = from_failure(failure)
        assert (verdict.reason, verdict.blame.value, verdict.message) == (expected, "platform", "It could not.")
        outcome = Outcome("c", exit_code=None, failure=failure)  # the same fact on an Outcome: the same verdict
        assert diagnose.from_outcome(outcome, read_frames(_parser()), _context()).reason == expected
