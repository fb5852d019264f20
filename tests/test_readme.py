"""The README's promises stay true: its reason tables are the registry's, its commands exist."""

from __future__ import annotations

import re

from conftest import ROOT
from runner.reasons import OUTPUT_RULES, REASONS, markdown_tables


def readme() -> str:
    return (ROOT / "README.md").read_text()


def test_reason_tables_match_the_registry():
    section = re.search(r"<!-- reasons:start -->\n(.*?)<!-- reasons:end -->", readme(), re.S).group(1)
    assert section.strip() == markdown_tables().strip(), "run scripts/update_readme.py"
    for code in list(REASONS) + list(OUTPUT_RULES):
        assert f"`{code}`" in section


def test_two_commands_and_make_targets_exist():
    text = readme()
    assert "make demo" in text and "make test" in text
    makefile = (ROOT / "Makefile").read_text()
    for target in ("demo:", "test:", "bench:", "bench-images:"):
        assert re.search(rf"^{target}", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def test_every_run_option_is_documented():
    from runner.cli.main import run

    for param in run.params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert f"`{opt}" in readme(), opt
