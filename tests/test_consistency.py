"""The tool speaks with one voice: one way to write sizes, messages that explain their numbers, advice
that fits the case, and output that shows what the person asked for and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT
from runner.protocol import FrameParser
from runner.sandbox.backend import Limits, Outcome
from runner.units import human_bytes
from runner.verdict import diagnose

MIB = 1024**2


@pytest.mark.parametrize("n,text", [(None, "?"), (0, "0 B"), (1023, "1023 B"), (1024, "1 KiB"), (96 * 1024, "96 KiB"),
                                    (150 * MIB, "150 MiB"), (int(284.5 * MIB), "284 MiB"), (int(2.5 * 1024**3), "2.5 GiB"),
                                    (4 * 1024**3, "4 GiB"), (int(1.15 * 1024**3), "1.15 GiB")])
def test_sizes_read_the_same_everywhere(n, text):
    assert human_bytes(n) == text


def test_no_module_formats_sizes_on_its_own():
    """Every size shown goes through runner.units.human_bytes: no module divides by 1024 or 1e6 to print one."""
    pattern = re.compile(r"\{[^{}]*/\s*(1024(\s*\*\*\s*\d)?|1e[369]|2\s*\*\*\s*\d+)[^{}]*\}")
    offenders = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
                 for path in sorted((ROOT / "runner").rglob("*.py")) if path.name != "units.py"
                 for number, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, "\n".join(offenders)


def _context(**limits) -> diagnose.Context:
    return diagnose.Context("3.11", {}, Limits(**limits), Path("/nonexistent/model.pkl"))


def _parser(*frames: tuple[str, bytes]) -> FrameParser:
    parser = FrameParser(max_predictions=1 << 20)
    for kind, body in frames:
        parser.feed(f"NSBX1 {kind} {len(body)}\n".encode() + body)
    return parser


def test_out_of_memory_explains_that_the_peak_is_sampled():
    outcome = Outcome("c", exit_code=137, oom_killed=True, peak_memory_bytes=97 * MIB)
    verdict = diagnose.from_engine(outcome, _parser(("phase", b'{"phase": "predicting"}')),
                                   _context(memory_bytes=150 * MIB))
    assert verdict.reason == "out_of_memory"
    assert "150 MiB memory limit while predicting" in verdict.message
    assert "the highest sample was 97 MiB" in verdict.message and "after the last sample" in verdict.message
    assert verdict.evidence["peak_is_sampled"] is True
