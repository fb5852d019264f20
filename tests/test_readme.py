"""The README's promises stay true: its reason tables are the registry's, its commands exist."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT
from runner.verdict.reasons import OUTPUT_RULES, REASONS, markdown_tables


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


def _section(title: str) -> str:
    text = readme()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def test_json_field_list_is_the_reports_keys():
    from runner.verdict.lifecycle import Status
    from runner.verdict.report import Report

    documented = re.findall(r"^\| `([a-z_]+)` \|", _section("The JSON report"), re.M)
    actual = list(Report(Status.SUCCESS, None, "").to_dict())
    assert sorted(documented) == sorted(actual), "README's JSON report table and Report.to_dict differ"
    assert len(documented) == len(set(documented))


def _command_rows() -> dict[str, str]:
    """{"images build": its README row} for every command in the Options section's command table."""
    rows = {}
    for line in _section("Options").splitlines():
        match = re.match(r"\| `((?:images |data )?[a-z]+)\b", line)
        if match:
            rows[match.group(1)] = line
    return rows


def test_every_commands_options_are_in_its_readme_row():
    import click

    from runner.cli.main import cli

    rows = _command_rows()
    for name in ("inspect", "data synth", "images fetch", "images build", "images list", "images rm", "clean", "upload",
                 "uploads"):
        assert name in rows, f"README's command table has no row for {name}"
        command = cli
        for word in name.split():
            command = command.commands[word]
        for param in command.params:
            if isinstance(param, click.Option) and param.name != "help":
                assert any(opt in rows[name] for opt in param.opts if opt.startswith("--")), (name, param.opts)


def test_data_synth_defaults_are_the_readmes():
    from runner.cli.main import cli

    row = _command_rows()["data synth"]
    defaults = {p.name: p.default for p in cli.commands["data"].commands["synth"].params}
    assert f"{defaults['rows']:,} rows" in row and f"{defaults['features']:,} features" in row
    assert f"seed {defaults['seed']}" in row and str(defaults["out"]) == "." and "current directory" in row


@pytest.mark.parametrize("code", [0, 1, 2, 3])
def test_ci_recipe_tells_failed_from_error(tmp_path, code):
    """The README's CI recipe, run with a stand-in numerai-sandbox that exits with `code`: Failed and Error
    end the job differently."""
    import os
    import subprocess

    recipe = re.search(r"A CI job.*?```sh\n(.*?)```", readme(), re.S).group(1)
    stand_in = tmp_path / "numerai-sandbox"
    stand_in.write_text(f"#!/bin/sh\nexit {code}\n")
    stand_in.chmod(0o755)
    result = subprocess.run(["bash", "-c", recipe], capture_output=True, text=True, cwd=tmp_path,
                            env=dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}"))
    assert result.returncode == code, result.stdout + result.stderr
    assert {0: "would accept", 1: "Failed", 2: "usage", 3: "Error"}[code] in result.stdout
